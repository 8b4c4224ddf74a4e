"""Synthetic tuber: a natural product (a potato, a bun) whose shape, size and skin vary from one to the next.

Why: every other kind is a machined part, identical but for its pose. Natural products (food,
castings, moulded rubber) are not: each good one has its own outline (an oval, lumpy and
of its own size), its own bumps and its own freckles, so no good image matches another pixel for
pixel, and the detector has to learn how much a good one may differ. The tuber lies roughly
centred (+-5 % of the frame) at any angle, lit from the upper left, on a dark tray (the MVTec
3D-AD setting); gray, or in colour a yellow-brown skin.

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS` on the skin, or at the
outline for ``chip``): crack, hole, contamination, spot, chip.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import finish_part

DEFECT_TYPES = ("crack", "hole", "contamination", "spot", "chip")
_SKIN = np.float32([0.78, 0.6, 0.36])  # yellow-brown (colour variant)
_HARMONICS = (2, 3, 4, 5)  # lumps of the outline: low harmonics of the angle, random amplitude and phase


def _outline_radius(rng: np.random.Generator, angle: np.ndarray, mean_radius: float) -> np.ndarray:
    """The tuber's radius at each angle: an oval of random elongation plus a few random lumps."""
    radius = np.ones_like(angle)
    for order in _HARMONICS:
        amplitude = rng.uniform(0.08, 0.16) if order == 2 else rng.uniform(0.0, 0.035)
        radius += amplitude * np.cos(order * angle + rng.uniform(0, 2 * math.pi))
    return (mean_radius * radius).astype(np.float32)


def render_tuber(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False) -> SyntheticSample:
    """Render one tuber (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    mean_radius = rng.uniform(0.27, 0.31) * size
    jitter = rng.uniform(-0.05, 0.05, size=2) * size
    cx, cy = size / 2 + jitter[0], size / 2 + jitter[1]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - np.float32(cx), yy - np.float32(cy)
    r = np.sqrt(dx * dx + dy * dy) + np.float32(1e-3)
    outline = _outline_radius(rng, np.arctan2(dy, dx), mean_radius)
    alpha = np.clip(0.5 + (outline - r), 0, 1)

    # Lambert shading of a dome (height sqrt(1 - (r / outline)^2)) with smooth lumps on it.
    rho = np.clip(r / outline, 0, 0.995)
    dome = np.sqrt(1 - rho * rho) * mean_radius * 0.6
    bumps = mean_radius * (0.025 * smooth_noise(rng, (size, size), 6) + 0.006 * smooth_noise(rng, (size, size), 24))
    height = dome + bumps
    gy, gx = np.gradient(height)
    light = np.float32([-0.45, -0.55, 0.7])  # from the upper left and above
    light /= np.linalg.norm(light)
    norm = np.sqrt(gx * gx + gy * gy + 1)
    lambert = np.clip((-gx * light[0] - gy * light[1] + light[2]) / norm, 0, 1)
    shade = 0.25 + 0.75 * lambert

    # Skin: mottled albedo and a few natural freckles (eyes), different on every good tuber.
    skin = 1 + 0.06 * smooth_noise(rng, (size, size), 10) + 0.03 * smooth_noise(rng, (size, size), 40) + 0.025 * smooth_noise(rng, (size, size), 80)
    for _ in range(int(rng.integers(3, 9))):
        angle, depth = rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.8)
        fx = cx + depth * mean_radius * math.cos(angle)
        fy = cy + depth * mean_radius * math.sin(angle)
        fr = rng.uniform(0.006, 0.012) * size
        skin -= rng.uniform(0.06, 0.12) * np.exp(-((xx - fx) ** 2 + (yy - fy) ** 2) / (fr * fr))
    albedo = _SKIN if color else np.float32([0.75])
    part = (shade * skin)[..., None] * albedo * np.float32(rng.uniform(0.95, 1.05))

    level = rng.uniform(0.08, 0.11) + 0.01 * smooth_noise(rng, (size, size), 5)
    shadow = cv2.GaussianBlur(np.roll(alpha, (int(0.02 * size), int(0.02 * size)), axis=(0, 1)), (0, 0), 0.015 * size)
    background = (level * (1 - 0.5 * shadow))[..., None] * np.ones(part.shape[2], np.float32)
    noise = rng.normal(0, rng.uniform(0.004, 0.008), size=part.shape).astype(np.float32)
    clean = (background * (1 - alpha[..., None]) + part * alpha[..., None] + noise).astype(np.float32)
    object_mask = alpha >= 0.5
    face = cv2.erode(object_mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    return finish_part(rng, clean, object_mask, face, defect_type, color)
