"""The patch grid over the canonical crop and per-patch means (integral images, no loops).

Patches are ``patch_size`` squares every ``stride`` pixels; when the crop side is not a multiple of
the stride a last row/column is added flush with the border so every pixel is covered. A patch is
*object* when at least ``min_object_fraction`` of it lies in the crop mask, and its error is the
mean of the values over its OBJECT pixels only: background inside a border patch would otherwise
dilute (or, with z-scores, distort) the error of exactly the patches that touch the mask border.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PatchGrid:
    """Top-left corners of the patches: ``ys`` (rows of the grid) x ``xs`` (columns)."""

    height: int
    width: int
    patch_size: int
    stride: int
    ys: np.ndarray  # (R,) int
    xs: np.ndarray  # (C,) int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys), len(self.xs)

    def boxes(self) -> np.ndarray:
        """(R, C, 4) int boxes ``x0, y0, x1, y1`` (x1/y1 exclusive) in crop pixels."""
        yy, xx = np.meshgrid(self.ys, self.xs, indexing="ij")
        return np.stack([xx, yy, xx + self.patch_size, yy + self.patch_size], axis=-1)

    def centres_x(self) -> np.ndarray:
        return self.xs + self.patch_size / 2.0


def _starts(side: int, size: int, stride: int) -> np.ndarray:
    starts = np.arange(0, side - size + 1, stride)
    if starts[-1] != side - size:
        starts = np.append(starts, side - size)
    return starts.astype(np.int64)


def patch_grid(height: int, width: int, patch_size: int, stride: int) -> PatchGrid:
    """The grid of ``patch_size`` patches every ``stride`` pixels covering a ``height`` x ``width`` crop."""
    if patch_size < 1 or stride < 1:
        raise ValueError(f"patch_size and stride must be >= 1, got {patch_size}, {stride}")
    if patch_size > min(height, width):
        raise ValueError(f"patch_size {patch_size} does not fit in a {height}x{width} crop")
    return PatchGrid(height, width, patch_size, stride, _starts(height, patch_size, stride), _starts(width, patch_size, stride))


def box_sums(values: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Sum of ``values`` over every patch, (R, C) float64, via one integral image."""
    integral = cv2.integral(np.ascontiguousarray(values, dtype=np.float64))
    y0 = grid.ys[:, None]
    x0 = grid.xs[None, :]
    y1 = y0 + grid.patch_size
    x1 = x0 + grid.patch_size
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]


def patch_means(values: np.ndarray, mask: np.ndarray, grid: PatchGrid) -> tuple[np.ndarray, np.ndarray]:
    """(mean of ``values`` over the object pixels of each patch, object fraction of each patch), both (R, C).

    Patches without any object pixel get a NaN mean.
    """
    if values.shape != (grid.height, grid.width) or mask.shape != values.shape:
        raise ValueError(f"values {values.shape} / mask {mask.shape} do not match the {grid.height}x{grid.width} grid")
    weight = mask.astype(np.float64)
    inside = box_sums(weight, grid)
    sums = box_sums(np.where(mask, values, 0.0), grid)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(inside > 0, sums / np.maximum(inside, 1e-12), np.nan)
    return means, inside / float(grid.patch_size * grid.patch_size)
