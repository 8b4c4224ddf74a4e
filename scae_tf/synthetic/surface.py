"""Synthetic surface: a brushed-metal plate filling the whole frame (no background, no silhouette).

Why: flat products (sheet metal, tiles, fabric, wood) are inspected as textures: every pixel is
the part, the texture is stochastic (no two images align), and a defect is whatever breaks its
statistics. The plate is brushed along one direction (a few degrees of jitter per image): long
streaks of every width, a few deeper brush lines, uneven brushing bands and a soft illumination
gradient; in colour it is anodised (a tinted metal that varies a little from plate to plate).

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS` anywhere on the plate):
scratch, crack, hole, stain, glue.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import render_texture

DEFECT_TYPES = ("scratch", "crack", "hole", "stain", "glue")
_ANODISED = np.float32([0.55, 0.78, 1.0])  # blue anodised aluminium (colour variant), relative to gray


def _streaks(rng: np.random.Generator, side: int, length_px: float) -> np.ndarray:
    """Zero-mean, unit-std noise stretched along x: streaks about ``length_px`` long."""
    cols = max(4, int(side / length_px))
    grid = rng.standard_normal((side, cols + 3)).astype(np.float32)
    big = cv2.resize(grid, (side * (cols + 3) // cols, side), interpolation=cv2.INTER_CUBIC)
    out = big[:, : side]
    return (out - out.mean()) / (out.std() + 1e-6)


def _brushed(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gray brushed metal, (size, size) float32 around 0.55."""
    side = int(math.ceil(size * 1.45)) + 2  # room to rotate without empty corners
    fine = _streaks(rng, side, rng.uniform(0.15, 0.25) * size)
    sigma = max(1.0, size / 256)
    broad = cv2.GaussianBlur(_streaks(rng, side, 0.5 * size), (1, 2 * int(3 * sigma) + 1), 0, sigmaY=sigma)  # across only
    texture = 0.028 * fine + 0.02 * broad
    for _ in range(int(rng.integers(3, 7))):  # a few deeper brush lines running across the plate
        row = int(rng.integers(0, side))
        strength = rng.uniform(0.015, 0.035) * (1 if rng.random() < 0.5 else -1)
        along = np.interp(np.linspace(0, 7, side), np.arange(8), rng.standard_normal(8)).astype(np.float32)
        texture[row] += strength * np.clip(1 + 0.6 * along, 0, None)  # fades in and out along its length
    angle = rng.uniform(-4, 4)
    rot = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    rotated = cv2.warpAffine(texture, rot, (side, side), flags=cv2.INTER_LINEAR)
    o = (side - size) // 2
    texture = rotated[o : o + size, o : o + size]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.06, 0.06, size=2)
    bands = 0.015 * smooth_noise(rng, (size, size), 3)
    level = rng.uniform(0.5, 0.58) + gx * xx + gy * yy + bands
    return (level * (1 + texture / 0.55)).astype(np.float32)


def render_surface(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False) -> SyntheticSample:
    """Render one surface (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    plate = _brushed(rng, size)
    return render_texture(rng, plate, defect_type, _ANODISED if color else None)
