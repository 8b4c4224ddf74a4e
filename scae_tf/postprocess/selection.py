"""Candidate selection: the top fraction of object patches by error."""

from __future__ import annotations

import math

import numpy as np


def top_count(n_object: int, fraction: float) -> int:
    """ceil(fraction * n), at least 1 (when there is any object patch), at most n."""
    if n_object <= 0:
        return 0
    return min(n_object, max(1, math.ceil(fraction * n_object - 1e-9)))


def select_top(errors: np.ndarray, fraction: float) -> np.ndarray:
    """Bool mask of the ``top_count`` largest ``errors`` (1-D, finite).

    Exactly ``top_count`` patches are chosen: ties at the cut are broken by position (earlier index,
    i.e. row-major grid order, first) so the result never depends on the sort algorithm.
    """
    errors = np.asarray(errors)
    count = top_count(errors.size, fraction)
    chosen = np.zeros(errors.size, dtype=bool)
    if count:
        order = np.argsort(-errors, kind="stable")
        chosen[order[:count]] = True
    return chosen
