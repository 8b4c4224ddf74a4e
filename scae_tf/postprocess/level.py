"""Each part's residual in units of its own level, within the range good parts show (no TensorFlow).

A good part lit or finished a little differently from most (a brighter background, a stronger
highlight on the shank) is rebuilt a little worse everywhere: its whole residual rises, and its
largest patch rises with it. A defect raises the residual in one place. Dividing a part's residual
by its level (the ``residual_level_percentile``-th percentile over the part) takes out the first and
keeps the second. The divisor is kept between the median and the highest level the good
calibration parts showed: a part quieter than most is not amplified (its noise would be), and a part
unlike the good ones all over keeps its excess, so it still scores high (inspection also warns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_PART_PIXELS = 64  # fewer part pixels than this: the level is taken over the whole crop


def part_level(residual: np.ndarray, mask: np.ndarray, percentile: float) -> float:
    """The ``percentile``-th percentile of ``residual`` over the part (``mask``), or over the crop when the part is tiny."""
    inside = np.asarray(mask) > 0.5
    values = residual[inside] if int(np.count_nonzero(inside)) >= MIN_PART_PIXELS else np.asarray(residual).ravel()
    return float(np.percentile(values, percentile)) if values.size else 0.0


@dataclass(frozen=True)
class ResidualLevel:
    """Divides a residual by its part's level, clipped to [``low``, ``high``] (the good calibration parts' median and highest level)."""

    percentile: float
    low: float
    high: float

    @classmethod
    def fit(cls, residuals: Sequence[np.ndarray], masks: Sequence[np.ndarray], percentile: float) -> ResidualLevel:
        """From the good calibration parts' residuals and crop masks."""
        levels = np.asarray([part_level(r, m, percentile) for r, m in zip(residuals, masks, strict=True)], np.float64)
        levels = levels[np.isfinite(levels) & (levels > 0)]
        if levels.size == 0:
            return cls(percentile, 1.0, 1.0)  # every residual is 0: nothing to scale
        return cls(percentile, float(np.median(levels)), float(levels.max()))

    def __call__(self, residual: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.scale(residual, mask)[0]

    def scale(self, residual: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
        """(the residual divided by its clipped level, the excess: its level over the highest a good
        calibration part showed; > 1: unlike them all over)."""
        level = part_level(residual, mask, self.percentile)
        divisor = np.float32(np.clip(level, self.low, self.high))
        return (residual / divisor).astype(np.float32), level / self.high

    def to_dict(self) -> dict[str, float]:
        return {"percentile": self.percentile, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> ResidualLevel:
        level = cls(float(data["percentile"]), float(data["low"]), float(data["high"]))
        if not (0 < level.percentile <= 100 and 0 < level.low <= level.high):
            raise ValueError(f"residual level out of range: {data}")
        return level
