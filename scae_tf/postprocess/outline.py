"""Outline deviation: where a part's silhouette differs from good parts' (missing or extra material).

The residual only looks inside the object mask, and a segmenter that works well removes missing
material (a cut tip, a broken thread flank) from the mask: the defect is then invisible to the
residual however strong it is. In the canonical pose, the mask itself is comparable between
parts, so its per-position z-score against good calibration masks is a second error channel:
near 0 inside the part and in the background, about 1 on edges that vary between good parts
(thread crests), large where good parts always have material and this one does not (or the
reverse). Patches are analysed over the part's mask united with the region where good parts
have material, so missing material still lies on analysed patches.
"""

from __future__ import annotations

import numpy as np

from scae_tf.postprocess.position_stats import PositionStats, PositionSums

EXPECTED_LEVEL = 0.5  # a crop pixel is "expected object" where at least this share of good parts has material


def outline_sums(mask: np.ndarray) -> PositionSums:
    """Moment sums of one crop mask, counted at every pixel (object and background alike)."""
    values = np.asarray(mask, dtype=np.float64)
    return PositionSums.of(values, np.ones(values.shape, dtype=bool))


def outline_deviation(mask: np.ndarray, stats: PositionStats) -> np.ndarray:
    """|z-score| of the crop mask against good parts' per-position mask mean/std, float32."""
    return np.abs(stats.zscore(np.asarray(mask, dtype=np.float32)))


def expected_region(stats: PositionStats) -> np.ndarray:
    """Bool map of where good parts have material."""
    return stats.mean >= EXPECTED_LEVEL
