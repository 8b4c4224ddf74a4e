"""What the post-processor reports about patches: every object patch, and the flagged ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PatchTable:
    """Every OBJECT patch of the canonical crop, one row each (row-major grid order)."""

    boxes: np.ndarray  # (N, 4) int x0, y0, x1, y1 in crop pixels (x1/y1 exclusive)
    grid_index: np.ndarray  # (N, 2) int row, column on the patch grid
    object_fraction: np.ndarray  # (N,) fraction of the patch inside the crop mask
    errors: np.ndarray  # (N,) mean residual (or z-score) over the patch's object pixels
    deviations: np.ndarray  # (N,) error minus the neighbour reference
    normalised: np.ndarray  # (N,) deviation / sigma of its zone (d)
    zones: np.ndarray  # (N,) int zone id
    candidate: np.ndarray  # (N,) bool: among the top fraction by error
    flagged: np.ndarray  # (N,) bool: candidate with d > threshold

    def __len__(self) -> int:
        return len(self.errors)


@dataclass
class FlaggedPatch:
    """A flagged patch, located both in the canonical crop and in the input image."""

    box_crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in crop pixels
    score: float  # normalised deviation d
    zone: int
    corners: np.ndarray  # (4, 2) float x, y of the crop box corners in input-image pixels
    box: tuple[int, int, int, int]  # axis-aligned x0, y0, x1, y1 around the corners, input-image pixels
