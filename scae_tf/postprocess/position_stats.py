"""Per-position statistics of the residual on good parts, for per-pixel z-scores.

In the canonical pose a crop pixel is a place on the part, and the CAE reconstructs some places
(thread flanks, the head rim) always worse than others. Dividing the residual by its own mean/std
at that place, measured on good calibration crops, removes this fixed pattern before patching.

Statistics are accumulated only where a crop was object (mask-weighted sums), smoothed by
normalised convolution (so sparse positions borrow from their neighbours), floored
(``std >= zscore_std_floor * median object std``: places the CAE always gets right must not turn
tiny noise into huge z-scores), and stored at 1/``stats_downsample`` resolution; the stored form
is what both calibration and inspection use, so they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_MIN_WEIGHT = 1e-3  # smoothed mask weight below this = no calibration data at that place


@dataclass(frozen=True)
class PositionSums:
    """Mask-weighted moment sums over crops: weight = sum(m), first = sum(m*r), second = sum(m*r^2)."""

    weight: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @classmethod
    def of(cls, residual: np.ndarray, mask: np.ndarray) -> PositionSums:
        m = mask.astype(np.float64)
        r = residual.astype(np.float64)
        return cls(m, m * r, m * r * r)

    def __add__(self, other: PositionSums) -> PositionSums:
        return PositionSums(self.weight + other.weight, self.first + other.first, self.second + other.second)

    def __sub__(self, other: PositionSums) -> PositionSums:
        return PositionSums(self.weight - other.weight, self.first - other.first, self.second - other.second)


@dataclass
class PositionStats:
    """Per-crop-pixel mean and std of the residual; ``compact_*`` are the stored low-resolution arrays."""

    compact_mean: np.ndarray
    compact_std: np.ndarray
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        height, width = self.shape
        self.mean = cv2.resize(self.compact_mean.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        self.std = cv2.resize(self.compact_std.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)

    def zscore(self, residual: np.ndarray) -> np.ndarray:
        if residual.shape != self.shape:
            raise ValueError(f"residual {residual.shape} does not match the calibrated crop {self.shape}")
        return ((residual - self.mean) / self.std).astype(np.float32)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing in crop pixels, reflected at the border; sigma <= 0 leaves the image as it is."""
    if sigma <= 0:
        return image
    size = int(2 * round(3.0 * sigma) + 1)
    return cv2.GaussianBlur(image, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def stats_from_sums(
    sums: PositionSums, smooth_sigma: float, std_floor: float, downsample: int, absolute_floor: float = 0.0
) -> PositionStats:
    """Smoothed, floored, compacted per-position mean/std from mask-weighted sums.

    ``absolute_floor``: the std is also never below this value (the object masks' own statistics
    are 0 inside the part, so a floor relative to their median std would be 0).
    """
    total_weight = float(sums.weight.sum())
    if total_weight <= 0:
        raise ValueError("no object pixel in any calibration crop")
    global_mean = float(sums.first.sum()) / total_weight
    global_var = max(float(sums.second.sum()) / total_weight - global_mean**2, 0.0)
    weight = gaussian_blur(sums.weight, smooth_sigma)
    known = weight > _MIN_WEIGHT
    safe = np.where(known, weight, 1.0)
    mean = np.where(known, gaussian_blur(sums.first, smooth_sigma) / safe, global_mean)
    second = np.where(known, gaussian_blur(sums.second, smooth_sigma) / safe, global_var + global_mean**2)
    std = np.sqrt(np.maximum(second - mean * mean, 0.0))
    on_object = sums.weight > 0
    typical = float(np.median(std[on_object])) if np.any(on_object) else float(np.sqrt(global_var))
    floor = max(std_floor * typical, absolute_floor, 1e-6)
    std = np.maximum(std, floor)
    height, width = sums.weight.shape
    factor = max(1, int(downsample))
    small = (max(1, width // factor), max(1, height // factor))
    compact_mean = cv2.resize(mean.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    compact_std = cv2.resize(std.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    return PositionStats(compact_mean, compact_std, (height, width))


def with_std_floor(stats: PositionStats, floor: PositionStats | None) -> PositionStats:
    """``stats`` with its std raised to ``floor``'s where that is larger (the same mean); as is without a floor."""
    if floor is None:
        return stats
    if floor.compact_std.shape != stats.compact_std.shape:
        raise ValueError(f"std floor {floor.compact_std.shape} does not match the statistics {stats.compact_std.shape}")
    return PositionStats(stats.compact_mean, np.maximum(stats.compact_std, floor.compact_std), stats.shape)
