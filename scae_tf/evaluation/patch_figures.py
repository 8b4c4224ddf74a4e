"""Patch-level figures in the reference work's form (patch accuracy and patch confusion matrix).

A patch of the canonical crop is truly defective when it overlaps the ground-truth defect mask
warped into the crop with the image's pose; it is predicted defective when the post-processor
flagged it. Counts are summed over all object patches of all test images (good images contribute
only true negatives and false positives).
"""

from __future__ import annotations

import numpy as np

from scae_tf.metrics import ConfusionMatrix, confusion_matrix
from scae_tf.pose import Pose, warp_to_crop


def patch_truth(boxes: np.ndarray, crop_defect_mask: np.ndarray, min_overlap_pixels: int = 1) -> np.ndarray:
    """(N,) bool: patch box (x0, y0, x1, y1; x1/y1 exclusive) holds >= ``min_overlap_pixels`` defect pixels."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    mask = np.asarray(crop_defect_mask, bool)
    height, width = mask.shape
    integral = np.zeros((height + 1, width + 1), np.int64)
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 3], 0, height)
    counts = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return counts >= min_overlap_pixels


def defect_mask_in_crop(defect_mask_work: np.ndarray, pose: Pose) -> np.ndarray:
    """Ground-truth defect mask (work-image size) in canonical-crop pixels."""
    return warp_to_crop(np.asarray(defect_mask_work, bool), pose)


class PatchCounter:
    """Accumulates patch truth and predictions over images."""

    def __init__(self) -> None:
        self.all = ConfusionMatrix(0, 0, 0, 0)
        self.candidates = ConfusionMatrix(0, 0, 0, 0)
        self.images_with_defect_patches = 0

    def add(self, patches, defect_mask_work: np.ndarray | None, pose: Pose) -> None:
        boxes = np.asarray(patches.boxes)
        flagged = np.asarray(patches.flagged, bool)
        if defect_mask_work is None or not np.any(defect_mask_work):
            truth = np.zeros(len(flagged), bool)
        else:
            truth = patch_truth(boxes, defect_mask_in_crop(defect_mask_work, pose))
            self.images_with_defect_patches += int(truth.any())
        self.all = _add(self.all, confusion_matrix(truth, flagged))
        candidate = np.asarray(patches.candidate, bool)
        self.candidates = _add(self.candidates, confusion_matrix(truth[candidate], flagged[candidate]))

    def summary(self) -> dict:
        """Counts and scores; accuracy is shown next to the all-good answer's and the balanced accuracy,
        because defective patches are rare and calling every patch good already scores high."""
        return {
            "definition": "object patches of the canonical crop; defective = overlaps the ground-truth mask "
            "warped into the crop; predicted defective = flagged",
            "n_patches": self.all.total,
            "n_defective_patches": self.all.tp + self.all.fn,
            **self.all.summary(),
            **_chance_figures(self.all),
            "candidates_only": {
                "n_patches": self.candidates.total,
                **self.candidates.summary(),
                **_chance_figures(self.candidates),
            },
        }


def _chance_figures(cm: ConfusionMatrix) -> dict[str, float]:
    negatives, positives = cm.tn + cm.fp, cm.tp + cm.fn
    specificity = cm.tn / negatives if negatives else float("nan")
    sensitivity = cm.tp / positives if positives else float("nan")
    return {
        "all_good_accuracy": negatives / cm.total if cm.total else float("nan"),
        "balanced_accuracy": (specificity + sensitivity) / 2,
    }


def _add(a: ConfusionMatrix, b: ConfusionMatrix) -> ConfusionMatrix:
    return ConfusionMatrix(a.tn + b.tn, a.fp + b.fp, a.fn + b.fn, a.tp + b.tp)
