"""What every synthetic part kind shares: the sample record, per-image RNGs, noise, quantisation
and the signal/clutter measure that keeps defects subtle but real. No TensorFlow here."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

GOOD = "good"
MASK_THRESHOLD = 2.5 / 255.0  # a pixel belongs to the defect when the defect changed it by more than this
MAX_DEFECT_CONTRAST = 0.35  # a defect changes the part's intensity by at most this fraction (real ones: ~20-40 %)
TARGET_SIGNAL_TO_CLUTTER = (1.5, 2.2)  # each defect's strength is drawn from this range (real screw defects: ~1.5-2)
SCREW_GENERATOR_VERSION = 3  # version 3 scales the screw's defects to TARGET_SIGNAL_TO_CLUTTER; its good images are version 2's
SCREW_SEED_VERSION = 2  # the screw's per-image RNG keys, unchanged since version 2 (same good images, same defect shapes)
GENERATOR_VERSION = 3  # version 3 adds the round part and the surface
_SPLIT_CODES = {"train": 1, "test": 2}


@dataclass(frozen=True)
class SyntheticSample:
    """One rendered part: the image, the same part without its defect, and exact masks."""

    image: np.ndarray  # float32 (size, size) gray or (size, size, 3) RGB in [0, 1], quantised to 8-bit levels
    clean: np.ndarray  # the same part and noise without the defect (== image for good parts)
    object_mask: np.ndarray  # bool, the intact part's silhouette (all True for a surface filling the frame)
    defect_mask: np.ndarray  # bool, pixels the defect changed by more than MASK_THRESHOLD (in any channel)
    defect_type: str


def sample_rng(seed: int, split: str, defect_type: str, index: int, part: str = "screw") -> np.random.Generator:
    """The RNG of one image, independent of every other image, of the dataset counts and of the process.

    The screw keeps its version-2 seeds so its good images stay byte-identical; other part kinds add
    their name, so a round part and a surface with the same seed share nothing."""
    type_code = zlib.crc32(defect_type.encode("utf-8"))
    key = [int(seed), _SPLIT_CODES[split], type_code, int(index), SCREW_SEED_VERSION]
    if part != "screw":
        key = [int(seed), _SPLIT_CODES[split], type_code, int(index), GENERATOR_VERSION, zlib.crc32(part.encode("utf-8"))]
    return np.random.default_rng(key)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean noise with about ``cells`` features per side, unit standard deviation."""
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(grid, (shape[1] * (cells + 3) // cells, shape[0] * (cells + 3) // cells), interpolation=cv2.INTER_CUBIC)
    oy, ox = (big.shape[0] - shape[0]) // 2, (big.shape[1] - shape[1]) // 2
    out = big[oy : oy + shape[0], ox : ox + shape[1]]
    return (out - out.mean()) / (out.std() + 1e-6)


def quantise(image: np.ndarray) -> np.ndarray:
    """Round to the 8-bit levels the PNG will hold, as float32 in [0, 1]."""
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)


def to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def channel_max(values: np.ndarray) -> np.ndarray:
    """Largest value over the channels of an (H, W, C) array; (H, W) unchanged (faster than max(axis=2))."""
    if values.ndim == 2:
        return values
    out = values[..., 0].copy()
    for channel in range(1, values.shape[2]):
        np.maximum(out, values[..., channel], out=out)
    return out


def relative_change(image: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per-pixel change relative to the clean intensity (floor 0.05): |change| / intensity in gray,
    |RGB change| / |RGB colour| in colour (a uniform gain g gives g whatever the hue)."""
    diff = image - clean
    if diff.ndim == 2:
        return np.abs(diff) / np.maximum(clean, 0.05)
    return np.sqrt((diff * diff).sum(axis=2)) / np.maximum(np.sqrt((clean * clean).sum(axis=2)), 0.05)


def change_mask(image: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Pixels where ``image`` differs from ``clean`` by more than MASK_THRESHOLD in any channel."""
    return channel_max(np.abs(image - clean)) > MASK_THRESHOLD


def signal_to_clutter(image: np.ndarray, clean: np.ndarray, defect_mask: np.ndarray) -> float:
    """How far a defect stands out of the part's own texture: the mean change the defect makes on
    its pixels divided by the mean error of inpainting those pixels of the clean part from their
    surroundings (what a detector that only knows the neighbourhood would get wrong anyway).

    Why: real MVTec screw defects measure ~1.5-2 (dev split); version-1 synthetic defects, at
    ~0.5, were undetectable by every method. Colour images use the largest channel change."""
    if not defect_mask.any():
        return 0.0
    ys, xs = np.nonzero(defect_mask)
    pad = 12  # the inpainting radius and its context: the rest of the image does not matter
    box = (slice(max(0, ys.min() - pad), ys.max() + pad + 1), slice(max(0, xs.min() - pad), xs.max() + pad + 1))
    image, clean, defect_mask = image[box], clean[box], defect_mask[box]
    diff = channel_max(np.abs(image - clean))
    hole = cv2.dilate(defect_mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(to_u8(clean), hole, 3, cv2.INPAINT_TELEA).astype(np.float32) / 255
    error = channel_max(np.abs(filled - clean))
    return float(diff[defect_mask].mean() / max(error[defect_mask].mean(), 1.0 / 255))


def finish(clean: np.ndarray, image: np.ndarray, object_mask: np.ndarray, defect_type: str) -> SyntheticSample:
    """Quantise both renderings and derive the exact defect mask from what the saved image shows."""
    clean_q, image_q = quantise(clean), quantise(image)
    return SyntheticSample(image_q, clean_q, object_mask, change_mask(image_q, clean_q), defect_type)


def _inpainting_error(image_u8: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    hole = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(image_u8, hole, 3, cv2.INPAINT_TELEA).astype(np.float32) / 255
    return float(channel_max(np.abs(filled - image))[mask].mean())


def defect_visibility(image: np.ndarray, defect_mask: np.ndarray, part_mask: np.ndarray, placements: int = 8) -> float:
    """How much a defect stands out, measured on the defective image alone (so real and synthetic
    defects compare): the error of inpainting the defect's pixels from their surroundings, over
    the same error for the same shape moved to other places of the part in the same image (at
    least 7 px from the defect; fixed placements, seed 0). NaN when the shape fits nowhere else.

    Real MVTec screw dev defects (512 px, part = the classical screw mask) measure 1.4-2.9 per
    type (median ~2.2; ``python -m benchmarks.synthetic --real DIR:classical``)."""
    if not defect_mask.any():
        return float("nan")
    image = np.asarray(image, dtype=np.float32)
    image_u8 = to_u8(image)
    signal = _inpainting_error(image_u8, image, defect_mask)
    ys, xs = np.nonzero(defect_mask)
    y0, x0, hh, ww = ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    shape = defect_mask[y0 : y0 + hh, x0 : x0 + ww]
    h, w = defect_mask.shape
    allowed = part_mask & ~cv2.dilate(defect_mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(placements * 50):
        if len(errors) == placements or h <= hh or w <= ww:
            break
        ty, tx = int(rng.integers(0, h - hh)), int(rng.integers(0, w - ww))
        if (shape & ~allowed[ty : ty + hh, tx : tx + ww]).any():
            continue
        moved = np.zeros_like(defect_mask)
        moved[ty : ty + hh, tx : tx + ww] = shape
        errors.append(_inpainting_error(image_u8, image, moved))
    if not errors:
        return float("nan")
    return signal / max(float(np.mean(errors)), 1.0 / 255)
