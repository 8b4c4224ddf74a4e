"""Synthetic round part: a compact, rigid part seen from above (a turned washer / bottle top).

Gray: a light steel ring on a dark speckled cloth (the part is brighter than the background,
the opposite of the screw). Colour: a coloured plastic cap on a light gray tray (darker than the
background in luminance, different in hue). Both are fixtured: a small position jitter
(+-4 % of the frame) and a slight rotation (+-12 degrees), visible through the knurled rim and an
embossed three-dot mark; the ring's turning grooves, the chamfers and the anisotropic highlight
(the bow-tie of a turned surface, fixed by the light) make a texture a detector has to learn.

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS`, on the ring face, or
at the rim for ``chip``): scratch, dent, chip, contamination, spot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import finish_part

DEFECT_TYPES = ("scratch", "dent", "chip", "contamination", "spot")
SUPERSAMPLE = 1  # the silhouette is anti-aliased analytically (clip(0.5 + distance)); grooves are >= 2.2 px
_KNURL_TEETH = 60
_CAP_COLOUR = np.float32([0.72, 0.2, 0.14])  # red plastic (colour variant)
LOOSE_POSITION = 0.1  # loose parts: centre jitter, share of the frame each way


@dataclass(frozen=True)
class _Ring:
    centre: tuple[float, float]
    outer: float
    inner: float
    chamfer_out: float
    chamfer_in: float
    rotation: float
    groove_period: float
    groove_phase: float
    albedo: np.ndarray  # (3,) RGB or (1,) gray
    light_angle: float


def _sample_ring(rng: np.random.Generator, size: int, color: bool, loose: bool = False) -> _Ring:
    outer = rng.uniform(0.335, 0.35) * size
    jitter = rng.uniform(-0.04, 0.04, size=2) * size * (LOOSE_POSITION / 0.04 if loose else 1.0)
    if color:
        albedo = _CAP_COLOUR * rng.uniform(0.95, 1.05) + rng.uniform(-0.02, 0.02, size=3).astype(np.float32)
    else:
        albedo = np.float32([rng.uniform(0.64, 0.7)])
    return _Ring(
        centre=(size / 2 + jitter[0], size / 2 + jitter[1]),
        outer=outer,
        inner=outer * rng.uniform(0.40, 0.43),
        chamfer_out=outer * rng.uniform(0.07, 0.08),
        chamfer_in=outer * rng.uniform(0.05, 0.06),
        rotation=rng.uniform(-math.pi, math.pi) if loose else rng.uniform(-0.21, 0.21),
        groove_period=max(3.0, rng.uniform(0.011, 0.013) * size),  # >= 3 px: no moire at 1x sampling
        groove_phase=rng.uniform(0, 2 * math.pi),
        albedo=albedo.astype(np.float32),
        light_angle=rng.uniform(-2.6, -2.0),
    )


def _background(rng: np.random.Generator, size: int, color: bool) -> np.ndarray:
    """Gray: dark speckled cloth. Colour: light gray tray with a faint blue cast. (H, W, C)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.05, 0.05, size=2)
    if color:
        level = rng.uniform(0.7, 0.76) + gx * xx + gy * yy + 0.008 * smooth_noise(rng, (size, size), 5)
        grain = 0.006 * smooth_noise(rng, (size, size), max(8, size // 5))
        return ((level + grain)[..., None] * np.float32([0.97, 1.0, 1.04])).astype(np.float32)
    level = rng.uniform(0.1, 0.14) + 0.4 * (gx * xx + gy * yy) + 0.012 * smooth_noise(rng, (size, size), 4)
    weave = 0.02 * np.sin(2 * math.pi * (xx + yy) * size / rng.uniform(5, 6)) * (1 + 0.5 * smooth_noise(rng, (size, size), 6))
    speckle = np.clip(rng.normal(0, 1, (size, size)), 0, None).astype(np.float32) * 0.025
    return np.maximum(level + weave + speckle, 0)[..., None].astype(np.float32)


def _ring_fields(ring: _Ring, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage (H, W), shaded part (H, W, C) and its flat face (where defects go), at final size.

    Computed supersampled on the ring's bounding box only (the cost is the transcendental functions)."""
    s = SUPERSAMPLE
    reach = ring.outer + 2
    x0, x1 = max(0, int(ring.centre[0] - reach)), min(size, int(math.ceil(ring.centre[0] + reach)) + 1)
    y0, y1 = max(0, int(ring.centre[1] - reach)), min(size, int(math.ceil(ring.centre[1] + reach)) + 1)
    dx = ((np.arange(x0 * s, x1 * s, dtype=np.float32) + 0.5) / s - 0.5 - ring.centre[0])[None, :]
    dy = ((np.arange(y0 * s, y1 * s, dtype=np.float32) + 0.5) / s - 0.5 - ring.centre[1])[:, None]
    r = np.sqrt(dx * dx + dy * dy) + np.float32(1e-3)
    local = np.arctan2(dy, dx) - np.float32(ring.rotation)  # angle in the part's own frame
    knurl = 0.5 + 0.5 * np.cos(_KNURL_TEETH * local)
    outer_edge = ring.outer * (1 - 0.01 * knurl)
    coverage = np.clip(0.5 + (outer_edge - r) * s, 0, 1) * np.clip(0.5 + (r - ring.inner) * s, 0, 1)

    cos_l, sin_l = np.float32(math.cos(ring.light_angle)), np.float32(math.sin(ring.light_angle))
    toward = (dx * cos_l + dy * sin_l) / r  # +1 on the side the light comes from
    across = (dy * cos_l - dx * sin_l) / r  # +-1 where a turned surface shows its bow-tie highlight
    face_lo, face_hi = ring.inner + ring.chamfer_in, ring.outer - ring.chamfer_out
    grooves = np.sin(r * np.float32(2 * math.pi / ring.groove_period) + np.float32(ring.groove_phase))
    bow_tie = (across * across) ** 12 * np.exp(-(((r - 0.62 * ring.outer) / (0.35 * ring.outer)) ** 2))
    grain = smooth_noise(rng, r.shape, max(8, size // 10))
    face = 0.8 + 0.05 * grooves + 0.03 * grain + 0.22 * bow_tie - 0.04 * toward
    # Embossed mark: three small bumps on the face at the part's own angle 0, lit from one side.
    mid = 0.5 * (face_lo + face_hi)
    bump_r = 0.035 * ring.outer
    for offset in (-0.16, 0.0, 0.16):
        mx, my = mid * math.cos(ring.rotation + offset), mid * math.sin(ring.rotation + offset)
        cols = slice(max(0, int((mx - dx[0, 0] - 3 * bump_r) * s)), max(0, int((mx - dx[0, 0] + 3 * bump_r) * s)))
        rows = slice(max(0, int((my - dy[0, 0] - 3 * bump_r) * s)), max(0, int((my - dy[0, 0] + 3 * bump_r) * s)))
        ex, ey = dx[:, cols] - mx, dy[rows] - my
        bump = np.exp(-(ex * ex + ey * ey) / bump_r**2)
        face[rows, cols] += 0.12 * bump * (ex * cos_l + ey * sin_l) / bump_r
    # Chamfers: tilted outwards (outer) and inwards (inner), so each is lit on one side and dark on the other.
    outer_bevel = 0.72 + 0.3 * toward - 0.05 * knurl
    inner_bevel = 0.72 - 0.3 * toward
    shade = np.where(r > face_hi, outer_bevel, np.where(r < face_lo, inner_bevel, face))
    shade = shade * (1 - 0.25 * np.exp(-(np.maximum(outer_edge - r, 0) / (0.3 * ring.chamfer_out)) ** 2))  # edge occlusion
    flat = ((r > face_lo + 1.5) & (r < face_hi - 1.5)).astype(np.float32)

    def place(field: np.ndarray) -> np.ndarray:
        full = np.zeros((size, size), np.float32)
        full[y0:y1, x0:x1] = cv2.resize(field, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        return full

    alpha = place(coverage)
    colour = np.clip(place(coverage * shade), 0, None)[..., None] * ring.albedo
    return alpha, colour.astype(np.float32), place(flat) > 0.99


def render_round(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False, loose: bool = False) -> SyntheticSample:
    """Render one round part (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``;
    ``loose``: anywhere at any angle instead of fixtured."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    ring = _sample_ring(rng, size, color, loose)
    background = _background(rng, size, color)
    alpha, part, face = _ring_fields(ring, size, rng)
    shift = np.float32([[1, 0, -0.015 * size * math.cos(ring.light_angle)], [0, 1, -0.015 * size * math.sin(ring.light_angle)]])
    shadow = cv2.GaussianBlur(cv2.warpAffine(alpha, shift, (size, size), borderValue=0), (0, 0), 0.012 * size)
    background = background * (1 - rng.uniform(0.35, 0.5) * shadow)[..., None]
    noise = rng.normal(0, rng.uniform(0.004, 0.008), size=(size, size, background.shape[2])).astype(np.float32)
    clean = background * (1 - alpha[..., None]) + part + noise
    return finish_part(rng, clean, alpha >= 0.5, face, defect_type, color)
