"""Synthetic fabric: a plain-woven textile filling the frame (a regular texture, unlike brushed metal).

Why: surfaces come in two flavours a detector must both handle: stochastic textures (brushed
metal, grain: :mod:`.surface`) and regular ones (woven fabric, carpet, grids), where a defect is a
break in a repeating pattern. The weave here: warp and weft yarns alternating over and under,
each yarn shaded as a cylinder, with per-yarn thickness and brightness variation (slubs), a slight
waviness, fibre fuzz, a small random rotation and scale per image and uneven illumination. Gray:
undyed linen; colour: dyed green cloth.

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS` anywhere on the cloth):
hole, pull (a snagged yarn along the weave), contamination, spot (discolouration), stain.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import render_texture

DEFECT_TYPES = ("hole", "pull", "contamination", "spot", "stain")
SUPERSAMPLE = 2
_DYED = np.float32([0.52, 0.78, 0.55])  # green cloth (colour variant), relative to gray


def _gentle_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """smooth_noise with ~5 features per side on an (n, n) grid, made small and enlarged (cheap)."""
    small = smooth_noise(rng, (max(16, n // 8), max(16, n // 8)), 5)
    return cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)


def _weave(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gray plain weave, (size, size) float32 around 0.55."""
    s = SUPERSAMPLE
    n = size * s
    period = max(4.0, rng.uniform(0.034, 0.038) * size) * s  # one over-under cell (>= 4 px: no aliasing), supersampled px
    angle = math.radians(rng.uniform(-3, 3))
    coords = np.arange(n, dtype=np.float32) - n / 2
    x, y = coords[None, :], coords[:, None]
    # Waviness: the yarns meander a little (smooth displacement of both coordinates).
    wobble = 0.12 * period
    u = x * math.cos(angle) + y * math.sin(angle) + wobble * _gentle_noise(rng, n)
    v = -x * math.sin(angle) + y * math.cos(angle) + wobble * _gentle_noise(rng, n)
    fu, fv = u / period, v / period
    iu, iv = np.floor(fu), np.floor(fv)
    pu, pv = fu - iu, fv - iv  # position inside the cell, 0..1
    over = (iu + iv) % 2 == 0  # warp over weft here
    # Per-yarn thickness and brightness: slubs along a yarn, differences between yarns.
    lanes = int(n / period) + 4
    warp_tone = rng.normal(0, 0.05, lanes).astype(np.float32)
    weft_tone = rng.normal(0, 0.05, lanes).astype(np.float32)
    warp_index = np.clip(iu + lanes // 2, 0, lanes - 1).astype(np.int32)
    weft_index = np.clip(iv + lanes // 2, 0, lanes - 1).astype(np.int32)
    gap = rng.uniform(0.12, 0.18)  # dark gaps between yarns
    across_warp = np.clip(1 - ((pu - 0.5) / (0.5 - gap / 2)) ** 2, 0, 1)  # cylinder profile across the warp yarn
    across_weft = np.clip(1 - ((pv - 0.5) / (0.5 - gap / 2)) ** 2, 0, 1)
    along_warp = np.sin(math.pi * pv) ** 0.7  # the yarn dips under at the cell ends
    along_weft = np.sin(math.pi * pu) ** 0.7
    twist = rng.uniform(2.5, 3.5)  # fibres wind diagonally round each yarn: shows which way it runs
    warp_fibres = 1 + 0.12 * np.sin(2 * math.pi * (twist * pv + 0.8 * pu))
    weft_fibres = 1 + 0.12 * np.sin(2 * math.pi * (twist * pu + 0.8 * pv))
    warp = np.sqrt(across_warp) * along_warp * warp_fibres * (1 + warp_tone[warp_index])
    weft = np.sqrt(across_weft) * along_weft * weft_fibres * (1 + weft_tone[weft_index]) * 0.93
    shade = np.where(over, warp, weft)
    cloth = 0.4 + 0.25 * shade  # soft relief: yarns and the gaps between them differ by ~40 %
    cloth = cv2.resize(cloth.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    cloth += 0.03 * smooth_noise(rng, (size, size), max(16, int(size * s / period * 3)))  # fibre fuzz
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.06, 0.06, size=2)
    light = 1 + gx * xx + gy * yy + 0.03 * smooth_noise(rng, (size, size), 3)
    return (cloth * light * rng.uniform(0.95, 1.05)).astype(np.float32)


def render_fabric(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False) -> SyntheticSample:
    """Render one piece of cloth (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    cloth = _weave(rng, size)
    return render_texture(rng, cloth, defect_type, _DYED if color else None)
