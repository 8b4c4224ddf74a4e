"""Shortcut check: can a trivial global statistic separate good from defective test images?

A biased test set (e.g. good images darker than defective ones) lets any method that follows
brightness look perfect. This reports the AUROC of mean brightness and contrast on the same test
set in both directions, warns when either exceeds ``WARN_AUROC``, and measures how much each
method's score follows brightness (Spearman correlation, over all images and within each class,
where the label cannot explain the correlation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from scae_tf.metrics import auroc, spearman

log = logging.getLogger(__name__)

WARN_AUROC = 0.8
STATISTICS = ("mean_brightness", "contrast")


def statistic_auroc(labels: np.ndarray, values: np.ndarray) -> dict[str, float | str]:
    """AUROC of one statistic as a detector, in whichever direction separates better."""
    value = auroc(labels, values)
    either = max(value, 1.0 - value) if np.isfinite(value) else float("nan")
    direction = "higher = defective" if value >= 0.5 else "lower = defective"
    return {"auroc": value, "auroc_either_direction": either, "direction": direction}


def shortcut_check(
    labels: np.ndarray, statistics: Mapping[str, np.ndarray], method_scores: Mapping[str, np.ndarray], where: str = "test set"
) -> dict:
    """AUROCs of the trivial statistics, a warning text when one is high, and score/brightness correlations."""
    labels = np.asarray(labels).astype(bool)
    trivial = {name: statistic_auroc(labels, statistics[name]) for name in STATISTICS}
    high = [
        f"{name.replace('_', ' ')} (AUROC {result['auroc_either_direction']:.2f}, {result['direction']})"
        for name, result in trivial.items()
        if result["auroc_either_direction"] > WARN_AUROC
    ]
    warning = None
    if high:
        warning = (
            f"{where}: trivial global statistics separate good from defective images: {', '.join(high)}. "
            "The test set is biased; a high AUROC may come from this shortcut rather than from the defects. "
            "Compare with the brightness-controlled block."
        )
        log.warning(warning)
    brightness = np.asarray(statistics["mean_brightness"], dtype=np.float64)
    correlations = {}
    for name, scores in method_scores.items():
        scores = np.asarray(scores, dtype=np.float64)
        correlations[name] = {
            "all": spearman(scores, brightness),
            "good_only": spearman(scores[~labels], brightness[~labels]),
            "defective_only": spearman(scores[labels], brightness[labels]),
        }
    return {
        "statistics": trivial,
        "warn_above": WARN_AUROC,
        "warning": warning,
        "spearman_score_vs_brightness": correlations,
    }
