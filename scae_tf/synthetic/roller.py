"""Synthetic roller: a knurled wheel seen from its rolling face, turned about its own axis between shots.

Why: a part can lie still in its fixture and still look different in every image. A wheel, a tyre
or a knurled roller turns on its axle between shots, so its raised blocks stand at another height
each time, and near the top and bottom rims they are foreshortened by the curvature: a fixed crop
of one image matches another only where that one happened to turn alike. The roller's axis is
horizontal and fixed (+-1.5 % of the frame); it turns by any angle; four columns of blocks across
the face, alternate columns staggered by half a block, raised from a darker groove, lit from the
camera's side, on a dark tray. Gray, or in colour a blue-gray metal.

Defects (painted with :data:`scae_tf.synthetic.defects.DEFECT_PAINTERS` on the rolling face, or at
its outline for ``chip``): scratch, dent, pit, contamination, chip.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from scae_tf.synthetic.common import GOOD, SyntheticSample, smooth_noise
from scae_tf.synthetic.defects import finish_part

DEFECT_TYPES = ("scratch", "dent", "pit", "contamination", "chip")
_BLOCKS_AROUND = 16  # blocks round the circumference per column of the tread
_COLUMNS = 4  # columns of blocks across the rolling face (alternate columns staggered by half a block)
_BLOCK_FILL = 0.62  # share of a block's pitch (round and across) that is raised; the rest is groove
_COLOUR = np.float32([0.55, 0.6, 0.72])  # blue-gray metal


def render_roller(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False) -> SyntheticSample:
    """Render one roller (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``."""
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    radius = rng.uniform(0.33, 0.34) * size  # of the wheel: its silhouette is 2 radii tall
    half_width = rng.uniform(0.2, 0.205) * size  # half the rolling face's width (along the axis)
    jitter = rng.uniform(-0.015, 0.015, size=2) * size
    cx, cy = size / 2 + jitter[0], size / 2 + jitter[1]
    turn = rng.uniform(0.0, 2 * math.pi)  # any angle: the wheel turns freely between shots

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    across = (xx - np.float32(cx)) / np.float32(half_width)  # -1..1 over the rolling face
    height = np.clip((yy - np.float32(cy)) / np.float32(radius), -1, 1)
    alpha = np.clip(0.5 - (np.maximum(np.abs(xx - cx) - half_width, np.abs(yy - cy) - radius * 0.995)), 0, 1)
    elevation = np.arcsin(height)  # the surface's angle from the camera's line of sight
    around = (elevation + turn) * _BLOCKS_AROUND / (2 * math.pi)  # in block pitches round the circumference
    column = np.floor((across + 1) / 2 * _COLUMNS)
    phase_round = np.mod(around + 0.5 * np.mod(column, 2), 1.0)
    phase_across = np.mod((across + 1) / 2 * _COLUMNS, 1.0)
    # raised where both phases are inside the block; soft edges (about a pixel) so a half-pixel turn is a half-pixel move
    soft = 1.0 / max(2.0, radius * 2 * math.pi / _BLOCKS_AROUND / 2)
    round_edge = np.clip((_BLOCK_FILL / 2 - np.abs(phase_round - 0.5)) / soft + 0.5, 0, 1)
    across_edge = np.clip((_BLOCK_FILL / 2 - np.abs(phase_across - 0.5)) / 0.08 + 0.5, 0, 1)
    raised = round_edge * across_edge

    # Lit from the camera's side and a little above: the face darkens towards the rims (foreshortening);
    # a block's upper edge catches the light, its top is brighter than the groove.
    facing = np.cos(elevation + 0.25)
    shade = 0.25 + 0.6 * np.clip(facing, 0, 1) ** 1.5
    upper_edge = round_edge - np.clip((_BLOCK_FILL / 2 - np.abs(phase_round - 0.5 + 0.06)) / soft + 0.5, 0, 1)
    shade = shade * (0.75 + 0.25 * raised) * (1 + 0.15 * np.clip(upper_edge, 0, 1) * across_edge)
    shade *= 1 + 0.02 * smooth_noise(rng, (size, size), 8)
    albedo = _COLOUR if color else np.float32([0.8])
    gain = rng.uniform(0.96, 1.04)
    part = (shade[..., None] * albedo * np.float32(gain)).astype(np.float32)

    level = rng.uniform(0.12, 0.15) + 0.01 * smooth_noise(rng, (size, size), 5)
    background = np.repeat(level[..., None], part.shape[2], axis=2).astype(np.float32)
    noise = rng.normal(0, rng.uniform(0.004, 0.008), size=part.shape).astype(np.float32)
    clean = background * (1 - alpha[..., None]) + part * alpha[..., None] + noise
    object_mask = alpha >= 0.5
    face = cv2.erode(object_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return finish_part(rng, clean, object_mask, face, defect_type, color)
