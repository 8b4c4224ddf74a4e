"""Zones of the object along the canonical axis (head on the left), each with its own sigma.

``zones`` = 0 or 1: one global zone; N > 1: N equal segments of the crop width, assigned by the
patch centre (the canonical pose puts the part at a fixed place and scale, so a crop column is a
place on the part: head, neck, thread...); -1 ("finest"): every grid position is its own zone.
"""

from __future__ import annotations

import numpy as np

from scae_tf.postprocess.grid import PatchGrid

FINEST = -1


def zone_count(grid: PatchGrid, zones: int) -> int:
    if zones == FINEST:
        return grid.shape[0] * grid.shape[1]
    if zones < FINEST:
        raise ValueError(f"postprocess.zones must be >= -1 (-1 = one zone per grid position), got {zones}")
    return max(1, zones)


def zone_ids(grid: PatchGrid, zones: int) -> np.ndarray:
    """(R, C) int zone of every grid cell."""
    rows, cols = grid.shape
    if zones == FINEST:
        return np.arange(rows * cols).reshape(rows, cols)
    count = zone_count(grid, zones)
    column_zone = np.minimum((grid.centres_x() * count / grid.width).astype(np.int64), count - 1)
    return np.broadcast_to(column_zone[None, :], (rows, cols)).copy()
