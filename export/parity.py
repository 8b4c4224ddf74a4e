"""Parity of a converted bundle with its Keras models, recorded in the manifest.

Two levels, both on held-aside good images (the run's validation split):

* model level: max / mean absolute difference of the U-Net probabilities and the CAE
  reconstructions, TFLite vs Keras, on identical inputs (seg inputs, and the canonical crops
  the Keras path produces);
* pipeline level: the full inspection (``InspectionPipeline``) once with each back-end:
  agreement of image verdicts and of per-patch flags, and the largest score difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

ArrayFn = Callable[[np.ndarray], np.ndarray]


def difference_stats(reference: ArrayFn, candidate: ArrayFn, inputs: Iterable[np.ndarray]) -> dict[str, float]:
    """max / mean |reference(x) - candidate(x)| over ``inputs`` (mean over every element)."""
    max_abs, total, count, images = 0.0, 0.0, 0, 0
    for x in inputs:
        expected = np.asarray(reference(x), dtype=np.float64)
        got = np.asarray(candidate(x), dtype=np.float64)
        if expected.shape != got.shape:
            raise ValueError(f"output shapes differ: reference {expected.shape}, candidate {got.shape}")
        diff = np.abs(expected - got)
        max_abs = max(max_abs, float(diff.max()))
        total += float(diff.sum())
        count += diff.size
        images += 1
    return {"max_abs": max_abs, "mean_abs": total / max(count, 1), "images": images}


def _flag_vector(result: Any) -> np.ndarray:
    flags = getattr(result.patches, "flagged", None)
    return np.zeros(0, dtype=bool) if flags is None else np.asarray(flags, dtype=bool).ravel()


def pipeline_agreement(reference: Any, candidate: Any, images: Sequence[np.ndarray]) -> dict[str, Any]:
    """Run both ``InspectionPipeline``s on ``images`` and compare verdicts, patch flags and scores.

    Patch flags are compared position by position when both runs produced the same patch grid
    (same object mask); otherwise the image counts as a patch disagreement.
    """
    same_verdict, patch_total, patch_same, grid_mismatch = 0, 0, 0, 0
    score_diff, rel_diff = 0.0, 0.0
    for image in images:
        ref, got = reference.inspect(image), candidate.inspect(image)
        same_verdict += int(ref.anomalous == got.anomalous)
        score_diff = max(score_diff, abs(float(ref.score) - float(got.score)))
        rel_diff = max(rel_diff, abs(float(ref.score) - float(got.score)) / max(abs(float(ref.threshold)), 1e-12))
        ref_flags, got_flags = _flag_vector(ref), _flag_vector(got)
        if ref_flags.shape == got_flags.shape:
            patch_total += ref_flags.size
            patch_same += int((ref_flags == got_flags).sum())
        else:
            grid_mismatch += 1
    n = len(images)
    return {
        "images": n,
        "verdict_agreement": same_verdict / n if n else None,
        "patch_flag_agreement": patch_same / patch_total if patch_total else (None if grid_mismatch == 0 else 0.0),
        "patch_grid_mismatches": grid_mismatch,
        "score_max_abs_diff": score_diff,
        "score_max_diff_over_threshold": rel_diff,
    }
