"""Baselines evaluated in the same run as the method: same models, same crops, same data.

Each baseline turns an inspection result (canonical crop, its mask, the CAE residual) into an
image score and a crop-space anomaly map, and gets its own threshold calibrated on good
calibration images. They answer "does the segmentation-guided patch logic add anything?":

* ``whole_image_error``: mean residual over the whole crop, no mask (the traditional
  reconstruction-error thresholding the reference work argues against);
* ``object_residual_max``: the maximum of the smoothed residual inside the object mask (the
  object, but no patches, no neighbours, no per-zone statistics);
* ``object_residual_zmax``: the residual z-scored per position against the good calibration crops,
  maximum on the object: the method's per-position statistics without patches, neighbour
  deviation or zone sigma, so the gap to the method is what the patch logic adds;
* ``edge_energy``: no CAE at all: Sobel gradient magnitude of the canonical crop compared per
  position with the good calibration crops (|z-score|, smoothed, maximum on the object).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

SMOOTH_SIGMA = 2.0  # crop pixels; removes single-pixel noise no real defect has
STD_FLOOR_FRACTION = 0.25  # per-position std >= this fraction of the median object std


def smooth(image: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    size = int(2 * round(3 * sigma) + 1)
    return cv2.GaussianBlur(np.asarray(image, np.float32), (size, size), sigma, borderType=cv2.BORDER_REFLECT)


def masked_max(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].max()) if mask.any() else 0.0


class Baseline(Protocol):
    name: str
    description: str

    def fit(self, calibration: list[Any]) -> None:
        """Learn what the baseline needs from good calibration results (may do nothing)."""

    def score_map(self, result: Any) -> tuple[float, np.ndarray]:
        """(image score, crop-space anomaly map) of one inspection result."""


class WholeImageError:
    name = "whole_image_error"
    description = "mean reconstruction residual over the whole crop, no mask (traditional thresholding)"

    def fit(self, calibration: list[Any]) -> None:
        pass

    def score_map(self, result: Any) -> tuple[float, np.ndarray]:
        residual = np.asarray(result.residual, np.float32)
        return float(residual.mean()), residual


class ObjectResidualMax:
    name = "object_residual_max"
    description = "max of the smoothed residual inside the object mask (no patch/neighbour logic)"

    def fit(self, calibration: list[Any]) -> None:
        pass

    def score_map(self, result: Any) -> tuple[float, np.ndarray]:
        mask = np.asarray(result.crop_mask, bool)
        smoothed = smooth(result.residual) * mask
        return masked_max(smoothed, mask), smoothed


class PositionZScore:
    """|feature - mean| / std per crop position, from good calibration crops; smoothed max on the object.

    Canonical crops are aligned, so each position has its own normal range: thread flanks and
    edges vary a lot on good parts, flat shank areas very little.
    """

    def __init__(self, name: str, description: str, feature: Callable[[Any], np.ndarray]) -> None:
        self.name = name
        self.description = description
        self.feature = feature
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, calibration: list[Any]) -> None:
        if len(calibration) < 2:
            raise ValueError(f"the {self.name} baseline needs at least 2 good calibration images")
        features = np.stack([self.feature(result) for result in calibration]).astype(np.float64)
        union = np.any(np.stack([np.asarray(r.crop_mask, bool) for r in calibration]), axis=0)
        self._n = len(calibration)
        self._sum = features.sum(axis=0)
        self._squares = (features * features).sum(axis=0)
        self.mean = (self._sum / self._n).astype(np.float32)
        std = np.sqrt(np.maximum(self._squares / self._n - self.mean.astype(np.float64) ** 2, 0.0))
        self._floor = max(STD_FLOOR_FRACTION * float(np.median(std[union])) if union.any() else 0.0, 1e-6)
        self.std = np.maximum(std, self._floor).astype(np.float32)
        self._features = features

    def _z_map(self, feature: np.ndarray, mean: np.ndarray, std: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        z = smooth(np.abs(feature - mean) / std) * mask
        return masked_max(z, mask), z

    def score_map(self, result: Any) -> tuple[float, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError(f"{type(self).__name__}.fit() must run before score_map()")
        return self._z_map(self.feature(result), self.mean, self.std, np.asarray(result.crop_mask, bool))

    def calibration_scores(self, calibration: list[Any]) -> list[float]:
        """Leave-one-out scores of the calibration images (the images ``fit`` saw, in the same order).

        Scoring an image against statistics that include it caps its |z| (at sqrt(n - 1)) and would
        set the threshold too low; like the method's calibration, each image is scored against the
        mean and std of the others.
        """
        if self.mean is None or len(calibration) != self._n:
            raise RuntimeError("calibration_scores() needs the calibration list given to fit()")
        scores = []
        for index, result in enumerate(calibration):
            feature = self._features[index]
            rest = self._n - 1
            mean = (self._sum - feature) / rest
            var = np.maximum((self._squares - feature * feature) / rest - mean * mean, 0.0)
            std = np.maximum(np.sqrt(var), self._floor)
            scores.append(self._z_map(feature.astype(np.float32), mean.astype(np.float32), std.astype(np.float32),
                                      np.asarray(result.crop_mask, bool))[0])
        return scores


def calibration_scores(baseline: Baseline, calibration: list[Any]) -> list[float]:
    """Good calibration images' scores for the threshold: leave-one-out when the baseline fitted statistics."""
    own = getattr(baseline, "calibration_scores", None)
    if own is not None:
        return list(own(calibration))
    return [baseline.score_map(result)[0] for result in calibration]


def edge_energy(crop: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude, lightly smoothed so a one-pixel shift of an edge is not a defect."""
    crop = np.asarray(crop, np.float32)
    if crop.ndim == 3:  # colour crops: edges of the mean channel
        crop = crop.mean(axis=2)
    gx = cv2.Sobel(crop, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(crop, cv2.CV_32F, 0, 1, ksize=3)
    return smooth(np.sqrt(gx * gx + gy * gy), 1.0)


class EdgeEnergy(PositionZScore):
    def __init__(self) -> None:
        super().__init__(
            "edge_energy",
            "Sobel edge energy of the canonical crop vs good calibration crops, per position (no CAE)",
            lambda result: edge_energy(result.crop),
        )


class ObjectResidualZMax(PositionZScore):
    def __init__(self) -> None:
        super().__init__(
            "object_residual_zmax",
            "CAE residual z-scored per position against good calibration crops, max on the object "
            "(the method's statistics without patches, neighbour deviation or zone sigma)",
            lambda result: np.asarray(result.residual, np.float32),
        )


def default_baselines() -> list[Baseline]:
    return [WholeImageError(), ObjectResidualMax(), ObjectResidualZMax(), EdgeEnergy()]
