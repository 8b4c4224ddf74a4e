"""Image -> model inputs, identical for the Keras and the TFLite path (no TensorFlow here).

``PreprocessState`` is what pre-processing learns at training time (the crop scale that makes
the median part fill the crop, the illumination reference of the good crops); it is saved as
``preprocessing.json`` in the run dir and the bundle so inspection PCs crop exactly like training.
``Preprocessor`` applies it: work image, segmenter input, mask cleaning, canonical crop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scae_tf.config import PreprocessConfig, from_dict, save_json, to_dict
from scae_tf.errors import ScaeError
from scae_tf.illumination import IlluminationReference, fit_illumination_reference, normalize_illumination
from scae_tf.imageio import resize, to_gray
from scae_tf.pose import Pose, estimate_pose, identity_pose, object_extent, warp_to_crop

STATE_VERSION = 1
HEAD_HEIGHT_FILL = 0.9  # the widest part (95th percentile over training images) fills at most this of crop_height


@dataclass
class PreprocessState:
    """Learned pre-processing, saved as ``preprocessing.json``."""

    config: PreprocessConfig
    crop_scale: float  # crop pixels per work-image pixel (fixed for all images)
    illumination: IlluminationReference | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": to_dict(self.config),
            "crop_scale": self.crop_scale,
            "illumination": None if self.illumination is None else self.illumination.to_dict(),
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
        if data["version"] != STATE_VERSION:
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
        return cls(config=config, crop_scale=crop_scale, illumination=illumination)


def fit_crop_scale(masks: list[np.ndarray], config: PreprocessConfig) -> float:
    """Scale so the median object length fills ``crop_fill`` of the crop width and the head fits its height."""
    extents = [object_extent(mask) for mask in masks]
    lengths = np.array([length for length, _ in extents])
    widths = np.array([width for _, width in extents])
    scale = config.crop_fill * config.crop_width / float(np.median(lengths))
    head_limit = HEAD_HEIGHT_FILL * config.crop_height / float(np.percentile(widths, 95))
    return float(min(scale, head_limit))


def fit_preprocess_state(works: list[np.ndarray], masks: list[np.ndarray], config: PreprocessConfig) -> PreprocessState:
    """Learn the crop scale and the illumination reference from good training images and their masks."""
    if not works or len(works) != len(masks):
        raise ScaeError(f"need the same, non-zero number of training images and masks (got {len(works)} and {len(masks)})")
    if config.canonical_pose:
        crop_scale = fit_crop_scale(masks, config)
    else:
        crop_scale = config.crop_width / float(works[0].shape[1])
    state = PreprocessState(config=config, crop_scale=crop_scale, illumination=None)
    if config.normalize_illumination:
        preprocessor = Preprocessor(state)
        crops, crop_masks = [], []
        for work, mask in zip(works, masks, strict=True):
            pose = preprocessor.pose(work, mask)
            crops.append(warp_to_crop(work, pose))
            crop_masks.append(warp_to_crop(mask, pose))
        state.illumination = fit_illumination_reference(crops, crop_masks)
    return state


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component of a bool mask (empty stays empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions not connected to the image border (specular highlights inside the part)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


class Preprocessor:
    """Applies a ``PreprocessState``: the same steps at training, calibration and inspection."""

    def __init__(self, state: PreprocessState):
        self.state = state
        self.config = state.config

    @property
    def crop_size(self) -> tuple[int, int]:
        return (self.config.crop_height, self.config.crop_width)

    def work_image(self, image: np.ndarray) -> np.ndarray:
        """Any size, gray or RGB float in [0, 1] -> (work_size, work_size) float32 gray (area resize)."""
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.size == 0:
            raise ScaeError(f"expected a gray (HxW) or RGB (HxWx3) image, got an array of shape {image.shape}")
        gray = to_gray(image.astype(np.float32, copy=False))
        return np.ascontiguousarray(resize(gray, self.config.work_size, "area"), dtype=np.float32)

    def seg_input(self, work: np.ndarray) -> np.ndarray:
        """Work image -> (seg_size, seg_size) float32 segmenter input."""
        return np.ascontiguousarray(resize(work, self.config.seg_size, "area"), dtype=np.float32)

    def mask_from_prob(self, prob: np.ndarray) -> np.ndarray:
        """Segmenter probability -> cleaned bool object mask at work size (largest component, holes filled)."""
        prob = np.asarray(prob, dtype=np.float32)
        if prob.ndim == 3:
            prob = prob[..., 0]
        size = self.config.work_size
        up = cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR) if prob.shape != (size, size) else prob
        return fill_holes(largest_component(up > self.config.mask_threshold))

    def pose(self, work: np.ndarray, mask: np.ndarray) -> Pose:
        if self.config.canonical_pose:
            return estimate_pose(mask, self.crop_size, self.state.crop_scale)
        return identity_pose(work.shape[:2], self.crop_size)

    def canonical(self, work: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, Pose]:
        """(crop, crop mask, pose): the part in canonical pose, illumination-normalised when enabled."""
        pose = self.pose(work, mask)
        crop = warp_to_crop(work, pose)
        crop_mask = warp_to_crop(mask, pose)
        if self.config.normalize_illumination and self.state.illumination is not None:
            crop = normalize_illumination(crop, crop_mask, self.state.illumination)
        return crop.astype(np.float32, copy=False), crop_mask, pose
