"""Synthetic capsule: an elongated part whose two ends look alike, lying in a fixture.

Why: an elongated part is not always a screw. A capsule, a pill or a pin has no head: its two ends
are about as wide, so the rule that turns a screw head-left cannot orient it, while its print
still reads one way only. The capsule lies on a light tray at nearly the same place and angle in
every image (+-3 % of the frame, +-2 degrees), its cap (darker, 2 % wider: its wall) on the left and a
printed "500" on its body; the cylinder's shading and the highlight along it are fixed by the
light. Gray, or in colour a red cap and a yellow body. ``loose``: the capsule lies anywhere (+-8 %) at any
angle (parts on a belt); its shading turns with it (a cylinder's highlight runs along its axis), its shadow
falls the same way in every image.

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS` on the capsule's face,
or at its outline for ``chip``): scratch, crack, pit, contamination, chip.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import finish_part

DEFECT_TYPES = ("scratch", "crack", "pit", "contamination", "chip")
_CAP_WIDENING = 1.02  # the cap's radius over the body's (its wall): the ends look alike to the eye and to the width rule
_CAP_SHARE = 0.45  # share of the length the cap covers (from the left end)
_GRAY = (0.38, 0.62)  # cap, body albedo (gray)
_COLOUR = (np.float32([0.5, 0.1, 0.08]), np.float32([0.7, 0.55, 0.16]))  # red cap, yellow body (the highlight stays below 1)
LOOSE_POSITION = 0.08  # loose capsules: centre jitter, share of the frame each way (the part stays in the frame at any angle)


def _part_frame(size: int, centre: tuple[float, float], angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(along, across) coordinates of every pixel centre in the capsule's own frame (px)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - np.float32(centre[0]), yy - np.float32(centre[1])
    cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _print_mask(size: int, centre: tuple[float, float], angle: float, length: float, radius: float) -> np.ndarray:
    """Coverage (0-1) of the "500" printed on the body, drawn 4x in the part's frame and warped into the image."""
    scale = 4
    width, height = int(length * scale), int(2 * radius * scale)
    canvas = np.zeros((height, width), np.uint8)
    font_scale = radius * scale / 24.0
    (text_w, text_h), _ = cv2.getTextSize("500", cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, int(font_scale * 2)))
    origin = (int(width * 0.72 - text_w / 2), int(height / 2 + text_h / 2))
    cv2.putText(canvas, "500", origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, max(1, int(font_scale * 2)), cv2.LINE_AA)
    # canvas pixel (cx, cy) -> part frame (along, across) = (cx / scale - length / 2, cy / scale - radius) -> image
    cos, sin = math.cos(angle), math.sin(angle)
    to_frame = np.array([[1 / scale, 0, -length / 2], [0, 1 / scale, -radius], [0, 0, 1]])
    to_image = np.array([[cos, -sin, centre[0]], [sin, cos, centre[1]], [0, 0, 1]])
    matrix = (to_image @ to_frame)[:2]
    return cv2.warpAffine(canvas.astype(np.float32) / 255, matrix, (size, size), flags=cv2.INTER_AREA)


def render_capsule(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False, loose: bool = False) -> SyntheticSample:
    """Render one capsule (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``;
    ``loose``: anywhere at any angle instead of fixtured."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    length = rng.uniform(0.7, 0.73) * size
    radius = rng.uniform(0.125, 0.13) * size
    jitter = rng.uniform(-0.03, 0.03, size=2) * size * (LOOSE_POSITION / 0.03 if loose else 1.0)
    centre = (size / 2 + jitter[0], size / 2 + jitter[1])
    angle = math.radians(rng.uniform(-180, 180) if loose else rng.uniform(-2, 2))
    along, across = _part_frame(size, centre, angle)

    seam = -length / 2 + _CAP_SHARE * length
    on_cap = along < seam
    local_radius = np.where(on_cap, radius * _CAP_WIDENING, radius).astype(np.float32)
    straight = np.maximum(np.abs(along) - (length / 2 - local_radius), 0)
    distance = np.sqrt(straight * straight + across * across) - local_radius
    alpha = np.clip(0.5 - distance, 0, 1)

    # Cylinder shading across the axis, a highlight along it (light from above), a dark seam line.
    t = np.clip(across / local_radius, -1, 1)
    shade = 0.72 + 0.3 * np.sqrt(1 - t * t) - 0.08 * t
    shade += 0.22 * np.exp(-(((t + 0.38) / 0.12) ** 2)) * (np.abs(along) < length / 2 - 0.6 * radius)
    shade *= 1 - 0.35 * np.exp(-(((along - seam) / 1.2) ** 2))
    shade *= 1 + 0.015 * smooth_noise(rng, (size, size), 6)
    ink = _print_mask(size, centre, angle, length, radius) * (~on_cap)
    shade *= 1 - 0.45 * ink

    cap, body = _COLOUR if color else (np.float32([_GRAY[0]]), np.float32([_GRAY[1]]))
    gain = rng.uniform(0.96, 1.04)
    albedo = np.where(on_cap[..., None], cap, body) * np.float32(gain)
    part = (shade[..., None] * albedo).astype(np.float32)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.04, 0.04, size=2)
    level = rng.uniform(0.8, 0.85) + gx * xx + gy * yy + 0.006 * smooth_noise(rng, (size, size), 5)
    background = np.repeat(level[..., None], part.shape[2], axis=2)
    shadow = cv2.GaussianBlur(cv2.warpAffine(alpha, np.float32([[1, 0, 0], [0, 1, 0.02 * size]]), (size, size)), (0, 0), 0.015 * size)
    background = background * (1 - 0.25 * shadow)[..., None]
    noise = rng.normal(0, rng.uniform(0.004, 0.008), size=part.shape).astype(np.float32)
    clean = background * (1 - alpha[..., None]) + part * alpha[..., None] + noise
    object_mask = alpha >= 0.5
    face = cv2.erode(object_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return finish_part(rng, clean, object_mask, face, defect_type, color)
