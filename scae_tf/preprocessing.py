"""Image -> model inputs, identical for the Keras and the TFLite path (no TensorFlow here).

``PreprocessState`` is what pre-processing learns at training time (the part kind and how parts
are aligned, colour or gray, the segmenter's frame, the crop scale and size, the illumination
reference of the good crops, the ranges of part area, intensity and position seen in training);
it is saved as ``preprocessing.json`` in the run dir and the bundle so inspection PCs crop exactly
like training. ``Preprocessor`` applies it; ``Preprocessor.prepare`` is the one way from an image
to the CAE's input (segment -> mask -> canonical crop), used by training, calibration, inspection,
export and the figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from scae_tf.config import PreprocessConfig, from_dict, save_json, to_dict
from scae_tf.errors import ScaeError
from scae_tf.illumination import IlluminationReference, fit_illumination_reference, normalize_illumination
from scae_tf.imageio import read_image, resize, to_gray
from scae_tf.part_kind import ALIGNMENTS, ROTATION_MIN_RATIO, KindDecision, axial_mean, fill_holes, mask_shape  # noqa: F401 - fill_holes re-exported
from scae_tf.pose import Pose, estimate_pose, identity_pose, object_extent, principal_axis, warp_to_crop
from scae_tf.rotation import TurnModel, centroid, choose_turn
from scae_tf.texture import WIDEST_SIGMA

log = logging.getLogger(__name__)

STATE_VERSION = 2  # 2: part kind, alignment, channels, aspect-keeping work frame, training ranges (1 still loads)
HEAD_HEIGHT_FILL = 0.9  # the widest part (95th percentile over training images) fills at most this of crop_height
COMPACT_FILL = 0.85  # compact parts: the largest aligned part (98th percentile) fills this of the crop
MIN_CROP_SIDE = 64  # compact crops are at least this (MS-SSIM's scales need room)
BOX_MARGIN = int(4 * WIDEST_SIGMA)  # px around a surface image in its frame where the residual is still computed (the widest smoothing's reach)
SURFACE_FRAME_LIMIT = 2.0  # surfaces: the frame side is at most this x the median training side (bounds the cost of one huge image)
MIN_PART_PIXELS = 16  # a mask with fewer pixels is no part
MIN_AREA_SHARE = 0.2  # a part below this share of the smallest training part is no part (missing or displaced)
RANGE_MARGIN = 0.5  # out-of-distribution: outside the training range widened by this share of its width
RANGE_FLOORS = {"area": 0.02, "level": 0.05, "centre_x": 0.03, "centre_y": 0.03, "angle": 4.0}  # minimum widening


class SegmentFn(Protocol):
    def __call__(self, image: np.ndarray) -> np.ndarray: ...


@dataclass
class Prepared:
    """One image on its way to the CAE: work image, part mask and, when a part was found, the crop."""

    work: np.ndarray
    object_mask: np.ndarray  # bool, work-image size
    crop: np.ndarray | None = None  # canonical crop fed to the CAE (illumination-normalised)
    crop_mask: np.ndarray | None = None
    pose: Pose | None = None
    reason: str | None = None  # why no part was found (None: found)

    @property
    def found(self) -> bool:
        return self.reason is None


@dataclass
class PreprocessState:
    """Learned pre-processing, saved as ``preprocessing.json``."""

    config: PreprocessConfig
    crop_scale: float  # crop pixels per work-image pixel (fixed for all images)
    illumination: IlluminationReference | None
    kind: str = "elongated"  # elongated | compact | surface (scae_tf/part_kind.py)
    alignment: str = "pose"  # pose (canonical, head left) | translation | rotation (by the mask's axis) | appearance (turned to a template, scae_tf/rotation.py) | none (fixtured)
    channels: int = 1  # 1 gray, 3 colour: the work image, the segmenter and the CAE
    keep_aspect: bool = False  # work image keeps the input's aspect (short side = work_size); False: square
    seg_shape: tuple[int, int] | None = None  # segmenter input (H, W); None: seg_size square
    anchor: tuple[float, float] = (0.5, 0.5)  # alignment none: crop centre as a share of the frame (x, y)
    reference_angle: float = 0.0  # alignment rotation: the training parts' mean axis angle (degrees)
    ranges: dict[str, list[float]] = field(default_factory=dict)  # accepted [low, high] per measure (OOD)
    frame_shape: tuple[int, int] | None = None  # surfaces: every image is analysed in this (H, W) work frame
    work_scale: float = 0.0  # surfaces: every image is scaled by this one factor and centred in the frame (0: stretched to it, older states)
    tile: int = 0  # surfaces: the CAE sees tile x tile pieces of the frame (0: the CAE sees the whole crop)
    kind_decision: dict[str, Any] | None = None  # the figures the kind was chosen from (for reports)
    turn: TurnModel | None = None  # alignment appearance: the template parts are turned to

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": to_dict(self.config),
            "crop_scale": self.crop_scale,
            "illumination": None if self.illumination is None else self.illumination.to_dict(),
            "kind": self.kind,
            "alignment": self.alignment,
            "channels": self.channels,
            "keep_aspect": self.keep_aspect,
            "seg_shape": None if self.seg_shape is None else list(self.seg_shape),
            "anchor": list(self.anchor),
            "reference_angle": self.reference_angle,
            "ranges": self.ranges,
            "kind_decision": self.kind_decision,
            "frame_shape": None if self.frame_shape is None else list(self.frame_shape),
            "tile": self.tile,
            "work_scale": self.work_scale,
            "turn": None if self.turn is None else self.turn.to_dict(),
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (temp name, then rename) so a crash never leaves half a file."""
        save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> PreprocessState:
        path = Path(path)
        if not path.is_file():
            raise ScaeError("pre-processing state not found; point to a run dir or bundle made by `scae train`", path)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ScaeError(f"corrupt pre-processing state ({err}); re-run `scae train` or restore the file", path) from None
        if not isinstance(data, dict) or "version" not in data:
            raise ScaeError("not a pre-processing state (no version); re-run `scae train` or restore the file", path)
        if data["version"] not in (1, STATE_VERSION):
            raise ScaeError(
                f"pre-processing state version {data['version']!r} is not supported (expected {STATE_VERSION}); "
                "re-run `scae train` with this version",
                path,
            )
        missing = [k for k in ("config", "crop_scale", "illumination") if k not in data]
        if missing:
            raise ScaeError(f"pre-processing state lacks {missing}; re-run `scae train` or restore the file", path)
        config = from_dict(PreprocessConfig, data["config"], where=f"{path}: config")
        try:
            crop_scale = float(data["crop_scale"])
        except (TypeError, ValueError):
            crop_scale = float("nan")
        if not np.isfinite(crop_scale) or crop_scale <= 0:
            raise ScaeError("crop_scale must be a positive number; re-run `scae train` or restore the file", path)
        illumination = data["illumination"]
        if illumination is not None:
            if not isinstance(illumination, dict):
                raise ScaeError("illumination must be a mapping or null; re-run `scae train`", path)
            illumination = IlluminationReference.from_dict(illumination, where=str(path))
        if config.normalize_illumination and illumination is None:
            raise ScaeError("normalize_illumination is on but no illumination reference is stored; re-run `scae train`", path)
        state = cls(config=config, crop_scale=crop_scale, illumination=illumination)  # version 1: an elongated part, gray, square
        try:
            if "kind" in data:
                state.kind = str(data["kind"])
                state.alignment = str(data["alignment"])
                state.channels = int(data["channels"])
                state.keep_aspect = bool(data["keep_aspect"])
                state.seg_shape = None if data["seg_shape"] is None else (int(data["seg_shape"][0]), int(data["seg_shape"][1]))
                state.anchor = (float(data["anchor"][0]), float(data["anchor"][1]))
                state.reference_angle = float(data["reference_angle"])
                state.ranges = {str(k): [float(v[0]), float(v[1])] for k, v in dict(data.get("ranges") or {}).items()}
                state.kind_decision = data.get("kind_decision")
                frame = data.get("frame_shape")
                state.frame_shape = None if frame is None else (int(frame[0]), int(frame[1]))
                state.tile = int(data.get("tile") or 0)
                state.work_scale = float(data.get("work_scale") or 0.0)
                state.turn = None if data.get("turn") is None else TurnModel.from_dict(data["turn"])
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ScaeError(f"malformed pre-processing state ({err.__class__.__name__}: {err}); re-run `scae train`", path) from None
        if state.kind not in ("elongated", "compact", "surface") or state.channels not in (1, 3):
            raise ScaeError(f"unknown part kind {state.kind!r} or channels {state.channels}; re-run `scae train`", path)
        if state.alignment not in ALIGNMENTS or (state.alignment == "appearance") != (state.turn is not None):
            raise ScaeError(f"unknown alignment {state.alignment!r}, or a turn template without it; re-run `scae train`", path)
        return state


def work_shape_for(image_shape: tuple[int, ...], work_size: int, keep_aspect: bool) -> tuple[int, int]:
    """(H, W) of the work image: short side ``work_size`` and the input's aspect, or a square."""
    if not keep_aspect:
        return (work_size, work_size)
    height, width = int(image_shape[0]), int(image_shape[1])
    scale = work_size / min(height, width)
    return (max(1, round(height * scale)), max(1, round(width * scale)))


def seg_shape_for(work_shape: tuple[int, int], seg_size: int, multiple: int) -> tuple[int, int]:
    """Segmenter frame for work images of ``work_shape``: short side ``seg_size``, the same aspect,
    both sides rounded to ``multiple`` (what the U-Net accepts)."""
    height, width = work_shape
    scale = seg_size / min(height, width)

    def fit(side: float) -> int:
        return max(multiple, int(round(side / multiple)) * multiple)

    return (fit(height * scale), fit(width * scale))


def fit_crop_scale(masks: list[np.ndarray], config: PreprocessConfig) -> float:
    """Scale so the median object length fills ``crop_fill`` of the crop width and the head fits its height."""
    extents = [object_extent(mask) for mask in masks]
    lengths = np.array([length for length, _ in extents])
    widths = np.array([width for _, width in extents])
    scale = config.crop_fill * config.crop_width / float(np.median(lengths))
    head_limit = HEAD_HEIGHT_FILL * config.crop_height / float(np.percentile(widths, 95))
    return float(min(scale, head_limit))


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, int(math.ceil(value / multiple - 1e-9)) * multiple)


def fit_compact_crop(state: PreprocessState, works: list[np.ndarray], masks: list[np.ndarray], multiple: int) -> PreprocessState:
    """Compact parts and surfaces: a crop with the aligned parts' aspect, as many pixels as the
    configured crop (never finer than the work image), and the scale that makes the largest part fit.

    A compact part fills its crop in both directions, so the elongated crop's pixel budget would
    shrink it (a 256-px washer to 0.48x, the tyre to 0.54x) and its small defects to a few pixels:
    its budget is at least ``compact_crop_pixels`` (synthetic washer, 20 epochs: image AUROC 0.54 at
    0.48x, 0.71-0.76 at full resolution). That budget is also a cap: a CAE step's cost grows faster
    than the crop's pixels (the tyre at full resolution, 512x352x3: 6.8x the step of its 272x192)."""
    config = state.config
    if state.alignment == "none":
        centres = [_box_centre(m) for m in masks]
        state.anchor = (
            float(np.median([x / max(m.shape[1] - 1, 1) for (x, _), m in zip(centres, masks, strict=True)])),
            float(np.median([y / max(m.shape[0] - 1, 1) for (_, y), m in zip(centres, masks, strict=True)])),
        )
    if state.alignment in ("translation", "rotation") and config.turn_by_appearance is not False:
        state = fit_turn_alignment(state, works, masks, force=bool(config.turn_by_appearance))
    if state.alignment == "rotation":
        state.reference_angle = axial_mean(np.array([_axis_angle(m) for m in masks]))
    probe = Preprocessor(dataclasses.replace(state, crop_scale=1.0))
    half_x, half_y = [], []
    for work, mask in zip(works, masks, strict=True):
        pose = probe.pose(work, mask)  # a turn by appearance reads the image, not the mask
        ys, xs = np.nonzero(mask)
        matrix = pose.matrix()[:, :2]
        centre = np.asarray(pose.centre)
        offsets = (np.stack([xs, ys], axis=1) - centre) @ matrix.T
        half_x.append(float(np.abs(offsets[:, 0]).max()) + 1.0)
        half_y.append(float(np.abs(offsets[:, 1]).max()) + 1.0)
    box_w = 2.0 * float(np.percentile(half_x, 98)) / COMPACT_FILL
    box_h = 2.0 * float(np.percentile(half_y, 98)) / COMPACT_FILL
    if state.kind == "surface":
        box_w, box_h = max(half_x) * 2.0, max(half_y) * 2.0  # the whole frame, no margin
    budget = float(config.crop_height * config.crop_width)
    if state.kind == "compact":
        budget = max(budget, float(config.compact_crop_pixels))
    scale = min(1.0, math.sqrt(budget / (box_w * box_h)))
    min_side = max(MIN_CROP_SIDE, multiple)
    crop_w = max(min_side, _round_up(box_w * scale, multiple))
    crop_h = max(min_side, _round_up(box_h * scale, multiple))
    state.config = dataclasses.replace(config, crop_height=crop_h, crop_width=crop_w)
    state.crop_scale = float(scale)
    return state


def fit_turn_alignment(state: PreprocessState, works: list[np.ndarray], masks: list[np.ndarray], force: bool = False) -> PreprocessState:
    """A compact part that moves: turned to a template by its appearance when that is well defined and the
    parts turn (``scae_tf.rotation.choose_turn``; ``force``: whenever a template can be fitted): a round part
    has no axis, and a long one whose ends look alike is turned end over end at random by it. The choice and
    its figures go in ``kind_decision``."""
    long = state.alignment == "rotation"
    choice = choose_turn(works, masks, [_axis_angle(m) for m in masks] if long else None, force)
    log.info("%s", choice.reason)
    if choice.model is not None:
        state.alignment, state.turn = "appearance", choice.model
    state.kind_decision = {
        **(state.kind_decision or {}),
        "alignment": state.alignment,
        "turn": {key: round(value, 2) if math.isfinite(value) else None for key, value in (("consistency", choice.consistency), ("spread", choice.spread))}
        | {"reason": choice.reason},
    }
    return state


def surface_frame(shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """The work frame every surface image is centred in: the largest training image on each side,
    at most SURFACE_FRAME_LIMIT x the median side (a larger image is shrunk to fit, not cut)."""
    sides = np.asarray([s[:2] for s in shapes], np.float64)
    frame = np.minimum(sides.max(axis=0), np.ceil(SURFACE_FRAME_LIMIT * np.median(sides, axis=0)))
    return int(frame[0]), int(frame[1])


def surface_work_shape(image_shape: tuple[int, ...], scale: float, frame: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of a surface's work image: the image scaled by ``scale`` keeping its aspect (the grain
    keeps its size whatever the image's size), shrunk further only when it would overflow ``frame``."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if frame is not None:
        scale = min(scale, frame[0] / height, frame[1] / width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_surface_frame(state: PreprocessState, works: list[np.ndarray], multiple: int) -> PreprocessState:
    """Surfaces: the whole image is the part, analysed in one work frame and reconstructed in square
    tiles of about the configured crop height. With a ``work_scale`` the works keep their own shapes
    and the frame holds the largest (``surface_frame``); older states stretched each to the median."""
    shapes = [w.shape[:2] for w in works]
    frame = surface_frame(shapes) if state.work_scale > 0 else tuple(int(v) for v in np.median(shapes, axis=0))
    tile = max(2 * multiple, min(max(state.config.crop_height, MIN_CROP_SIDE), min(frame)) // multiple * multiple)
    state.frame_shape = (frame[0], frame[1])
    state.tile = int(tile)
    state.anchor = (0.5, 0.5)
    state.crop_scale = 1.0
    state.config = dataclasses.replace(state.config, crop_height=frame[0], crop_width=frame[1])
    return state


def tile_origins(length: int, tile: int) -> list[int]:
    """Tile starts covering ``length`` with half-tile overlap, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, tile // 2)
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _box_centre(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return ((float(xs.min()) + float(xs.max())) / 2.0, (float(ys.min()) + float(ys.max())) / 2.0)


def _axis_angle(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    _, axis = principal_axis(xs.astype(np.float64), ys.astype(np.float64))
    return math.degrees(math.atan2(axis[1], axis[0])) % 180.0


def part_measures(work: np.ndarray, mask: np.ndarray, state: PreprocessState) -> dict[str, float]:
    """What the out-of-distribution check compares with training: part area (share of the frame),
    intensity (median on the part), and for parts that are not brought to a canonical pose, the
    position (and the axis angle of parts that do not rotate)."""
    gray = work.mean(axis=2) if work.ndim == 3 else work
    measures = {"area": float(mask.mean()), "level": float(np.median(gray[mask]))}
    if state.kind == "compact":
        shape = mask_shape(mask)
        if shape is not None:
            if state.alignment == "none":
                height, width = mask.shape
                x, y = _box_centre(mask)
                measures["centre_x"] = x / max(width - 1, 1)
                measures["centre_y"] = y / max(height - 1, 1)
            if state.alignment in ("none", "translation") and shape.elongation >= ROTATION_MIN_RATIO:
                measures["angle"] = shape.angle
    return measures


def fit_ranges(measures: list[dict[str, float]]) -> dict[str, list[float]]:
    """Accepted range of every measure: the training range (1st-99th percentile) widened by a margin."""
    ranges = {}
    for name in measures[0] if measures else []:
        values = np.array([m[name] for m in measures if name in m], np.float64)
        if values.size < 2:
            continue
        low, high = np.percentile(values, [1, 99])
        margin = max(RANGE_MARGIN * (high - low), RANGE_FLOORS.get(name, 0.0))
        ranges[name] = [float(low - margin), float(high + margin)]
        ranges[f"{name}_seen"] = [float(values.min()), float(values.max())]
    return ranges


def fit_preprocess_state(
    works: list[np.ndarray],
    masks: list[np.ndarray],
    config: PreprocessConfig,
    base: PreprocessState | None = None,
    multiple: int = 16,
) -> PreprocessState:
    """Learn the crop (scale, and size for compact parts), the illumination reference and the
    training ranges from good training images and their masks. ``base`` carries what was decided
    before (kind, alignment, channels, frames); without it: an elongated gray part, as version 1."""
    if not works or len(works) != len(masks):
        raise ScaeError(f"need the same, non-zero number of training images and masks (got {len(works)} and {len(masks)})")
    state = dataclasses.replace(base, config=config, crop_scale=1.0, illumination=None) if base else PreprocessState(config, 1.0, None)
    if state.kind == "surface":
        state = fit_surface_frame(state, works, multiple)
    elif state.kind != "elongated":
        state = fit_compact_crop(state, works, masks, multiple)
    elif config.canonical_pose:
        state.crop_scale = fit_crop_scale(masks, config)
    else:
        state.crop_scale = config.crop_width / float(works[0].shape[1])
    preprocessor = Preprocessor(state)
    if state.config.normalize_illumination:
        # the crops inspection makes, not yet normalised (the state has no reference)
        canonical = [preprocessor.canonical(work, mask) for work, mask in zip(works, masks, strict=True)]
        state.illumination = fit_illumination_reference([c[0] for c in canonical], [c[1] for c in canonical])
    state.ranges = fit_ranges([part_measures(w, m, state) for w, m in zip(works, masks, strict=True)])
    return state


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a bool mask (empty stays empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def _wrap_angle(degrees: float) -> float:
    """Into [-90, 90): axis angles repeat every 180 degrees."""
    return (degrees + 90.0) % 180.0 - 90.0


def _single_channel(image: np.ndarray) -> bool:
    """A gray array, (h, w) or (h, w, 1)."""
    return image.ndim == 2 or image.shape[2] == 1


class Preprocessor:
    """Applies a ``PreprocessState``: the same steps at training, calibration and inspection."""

    def __init__(self, state: PreprocessState):
        self.state = state
        self.config = state.config

    @property
    def crop_size(self) -> tuple[int, int]:
        return (self.config.crop_height, self.config.crop_width)

    @property
    def seg_shape(self) -> tuple[int, int]:
        return self.state.seg_shape or (self.config.seg_size, self.config.seg_size)

    @property
    def segments(self) -> bool:
        """Surfaces fill the frame: no segmentation, the whole image is the part."""
        return self.state.kind != "surface"

    def read(self, path: str | Path) -> np.ndarray:
        """An image file as this model takes it: colour for colour models, else gray (float32 [0, 1])."""
        return read_image(path, gray=self.state.channels == 1)

    def work_shape(self, image_shape: tuple[int, ...]) -> tuple[int, int]:
        if self.state.work_scale > 0:
            return surface_work_shape(image_shape, self.state.work_scale, self.state.frame_shape)
        if self.state.frame_shape is not None:
            return self.state.frame_shape
        return work_shape_for(image_shape, self.config.work_size, self.state.keep_aspect)

    @property
    def keeps_shape(self) -> bool:
        """Images of any size and aspect are analysed undistorted: a surface scaled by one factor and centred
        in the frame, continued by reflection (its grain, not a smear) outside its mask."""
        return self.state.work_scale > 0

    def analysis_box(self, crop_mask: np.ndarray) -> tuple[slice, slice] | None:
        """The window of the crop the residual needs (None: all of it): for a surface that keeps its
        shape, its image plus BOX_MARGIN px (the residual's smoothing reaches no further)."""
        if not self.keeps_shape:
            return None
        rows, cols = np.nonzero(np.any(crop_mask, axis=1))[0], np.nonzero(np.any(crop_mask, axis=0))[0]
        if rows.size == 0:
            return None
        height, width = crop_mask.shape[:2]
        return (slice(max(0, rows[0] - BOX_MARGIN), min(height, rows[-1] + 1 + BOX_MARGIN)),
                slice(max(0, cols[0] - BOX_MARGIN), min(width, cols[-1] + 1 + BOX_MARGIN)))

    @property
    def cae_shape(self) -> tuple[int, int]:
        """(H, W) of the CAE's input: a tile for surfaces, else the whole crop."""
        return (self.state.tile, self.state.tile) if self.state.tile else self.crop_size

    def cae_inputs(self, crop: np.ndarray) -> list[np.ndarray]:
        """The pieces of ``crop`` the CAE reconstructs (tiles of a surface, else the crop itself)."""
        if not self.state.tile:
            return [crop]
        tile = self.state.tile
        return [crop[y : y + tile, x : x + tile] for y in tile_origins(crop.shape[0], tile) for x in tile_origins(crop.shape[1], tile)]

    def reconstruct(self, reconstruct: SegmentFn, crop: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The CAE's reconstruction of ``crop``: tile by tile for surfaces (overlaps averaged; a tile
        with no pixel of ``mask``, the frame around a small image, is not reconstructed: it stays as is)."""
        if not self.state.tile:
            return np.asarray(reconstruct(crop), dtype=np.float32).reshape(crop.shape)
        tile = self.state.tile
        total = np.zeros(crop.shape, np.float32)
        weight = np.zeros(crop.shape[:2], np.float32)
        for y in tile_origins(crop.shape[0], tile):
            for x in tile_origins(crop.shape[1], tile):
                piece = crop[y : y + tile, x : x + tile]
                inside = mask is None or mask[y : y + tile, x : x + tile].any()
                total[y : y + tile, x : x + tile] += np.asarray(reconstruct(piece), np.float32).reshape(piece.shape) if inside else piece
                weight[y : y + tile, x : x + tile] += 1.0
        return total / (weight[..., None] if total.ndim == 3 else weight)

    def work_image(self, image: np.ndarray) -> np.ndarray:
        """Any size, gray or RGB float in [0, 1] -> work image (float32; gray HxW or RGB HxWx3 as trained)."""
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise ScaeError(f"expected a gray (HxW) or RGB (HxWx3) image, got an array of shape {image.shape}")
        image = image.astype(np.float32, copy=False)
        if self.state.channels == 3:
            image = np.repeat(to_gray(image)[..., None], 3, axis=2) if _single_channel(image) else image
        else:
            image = to_gray(image)
        return np.ascontiguousarray(resize(image, self.work_shape(image.shape), "area"), dtype=np.float32)

    def seg_input(self, work: np.ndarray) -> np.ndarray:
        """Work image -> segmenter input (seg frame, float32, the work image's channels)."""
        return np.ascontiguousarray(resize(work, self.seg_shape, "area"), dtype=np.float32)

    def mask_from_prob(self, prob: np.ndarray, work_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Segmenter probability -> cleaned bool object mask at work size (largest component, holes filled)."""
        prob = np.asarray(prob, dtype=np.float32)
        if prob.ndim == 3:
            prob = prob[..., 0]
        height, width = work_shape or (self.config.work_size, self.config.work_size)
        up = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR) if prob.shape != (height, width) else prob
        return fill_holes(largest_component(up > self.config.mask_threshold))

    def pose(self, work: np.ndarray, mask: np.ndarray) -> Pose:
        if not self.config.canonical_pose:
            return identity_pose(work.shape[:2], self.crop_size)
        alignment = self.state.alignment
        if alignment == "pose":
            return estimate_pose(mask, self.crop_size, self.state.crop_scale)
        height, width = mask.shape[:2]
        angle = 0.0
        if alignment == "none":
            centre = (self.state.anchor[0] * (width - 1), self.state.anchor[1] * (height - 1))
        elif alignment == "translation":
            centre = _box_centre(mask)
        elif alignment == "appearance" and self.state.turn is not None:
            centre = centroid(mask)
            angle = self.state.turn.angle(work, mask)
        else:
            centre = centroid(mask)
            angle = _wrap_angle(_axis_angle(mask) - self.state.reference_angle)
        return Pose(centre=(float(centre[0]), float(centre[1])), angle=float(angle), scale=self.state.crop_scale, crop_size=self.crop_size)

    def canonical(self, work: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, Pose]:
        """(crop, crop mask, pose): the part in canonical pose, illumination-normalised when enabled."""
        pose = self.pose(work, mask)
        crop = warp_to_crop(work, pose, reflect=self.keeps_shape)
        crop_mask = warp_to_crop(mask, pose)
        if self.config.normalize_illumination and self.state.illumination is not None:
            crop = normalize_illumination(crop, crop_mask, self.state.illumination)
        return crop.astype(np.float32, copy=False), crop_mask, pose

    def missing_part(self, mask: np.ndarray) -> str | None:
        """Why ``mask`` holds no usable part (None when it does): empty, a speck, or far smaller than
        any training part (a missing or displaced part is a defect, not an error)."""
        pixels = int(np.count_nonzero(mask))
        if pixels < MIN_PART_PIXELS:
            return "no part found" if pixels == 0 else f"no part found (only {pixels} part pixel(s))"
        seen = self.state.ranges.get("area_seen")
        if seen is not None and mask.mean() < MIN_AREA_SHARE * seen[0]:
            return f"no part found (part covers {mask.mean():.2%} of the frame, training parts {seen[0]:.2%} or more)"
        return None

    def prepare(self, work: np.ndarray, prob: np.ndarray | None) -> Prepared:
        """Work image + segmenter probability (None for surfaces) -> mask -> canonical crop."""
        if not self.segments:
            mask = np.ones(work.shape[:2], bool)
        else:
            if prob is None:
                raise ValueError("this part kind needs the segmenter's probability")
            mask = self.mask_from_prob(prob, work.shape[:2])
        reason = self.missing_part(mask)
        if reason is not None:
            return Prepared(work, mask, reason=reason)
        crop, crop_mask, pose = self.canonical(work, mask)
        return Prepared(work, mask, crop, crop_mask, pose)

    def prepare_image(self, segment: SegmentFn | None, image: np.ndarray, work: bool = False) -> Prepared:
        """The one path image -> work image -> segment -> mask -> canonical crop (``work=True``: ``image``
        is already a work image). ``segment`` is the back-end's ``segment`` (unused for surfaces)."""
        work_image = np.asarray(image, np.float32) if work else self.work_image(image)
        prob = segment(self.seg_input(work_image)) if self.segments and segment is not None else None
        return self.prepare(work_image, prob)

    def size_warning(self, image_shape: tuple[int, ...]) -> str | None:
        """For a surface that keeps its shape: a warning when the image was shrunk to fit the frame
        (larger than the training images allow), since its grain then looks finer than in training."""
        if not self.keeps_shape:
            return None
        shrink = self.work_shape(image_shape)[0] / (image_shape[0] * self.state.work_scale)
        if shrink >= 0.95:
            return None
        return (
            f"out of distribution: the image ({image_shape[1]}x{image_shape[0]}) is larger than the training images allow; "
            f"it was shrunk by {shrink:.2f} to fit, so its grain looks finer than in training and the score may not be meaningful"
        )

    def channel_warning(self, image: np.ndarray) -> str | None:
        """A warning when a colour model is given a gray array: ``work_image`` repeats it into three channels,
        so it is judged without the colour the model learned (decoding a file for a colour bundle refuses it)."""
        if self.state.channels != 3 or not _single_channel(image):
            return None
        return "gray image, but the model was trained on colour images: judged without its colour; pass the colour image"

    def out_of_distribution(self, prepared: Prepared) -> list[str]:
        """Warnings for an image unlike the training parts (each measure outside its training range)."""
        if not prepared.found or not self.state.ranges:
            return []
        names = {"area": "part area (share of the frame)", "level": "part intensity", "centre_x": "part position x",
                 "centre_y": "part position y", "angle": "part angle (degrees)"}
        warnings = []
        for name, value in part_measures(prepared.work, prepared.object_mask, self.state).items():
            bounds = self.state.ranges.get(name)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                warnings.append(
                    f"out of distribution: {names.get(name, name)} {value:.3g} is outside the training range "
                    f"[{bounds[0]:.3g}, {bounds[1]:.3g}]; the score may not be meaningful"
                )
        return warnings


def initial_state(config: PreprocessConfig, decision: KindDecision | None, channels: int, seg_shape: tuple[int, int]) -> PreprocessState:
    """The state before fitting (what training decided from the data: kind, channels, frames)."""
    return PreprocessState(
        config=config,
        crop_scale=1.0,
        illumination=None,
        kind=decision.kind if decision else "elongated",
        alignment=decision.alignment if decision else "pose",
        channels=channels,
        keep_aspect=True,
        seg_shape=seg_shape,
        kind_decision=decision.to_dict() if decision else None,
    )
