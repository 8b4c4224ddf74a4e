"""What kind of part a dataset shows, read from its good images (no TensorFlow).

Three kinds, each with its own way to the CAE's input:

* ``elongated``: a long part with a head (one end clearly wider, a screw) lying anywhere at any
  angle: the canonical pose (principal axis horizontal, head on the left).
* ``compact``: a rigid part that is not long (a tyre, a nut), or long with ends that look alike (a
  capsule, a pin: the head rule would turn it end over end at random, its print with it): aligned
  by translation (and by rotation only when the training parts rotate, with no head rule); when
  the parts are fixtured (the same place and angle in every image) the frame is not moved at all.
* ``surface``: the part fills the frame (tiles, fabric): no segmentation, the whole image is the
  part, analysed at native resolution in tiles.

The decision uses the part masks of the good images (``foreground_mask``): the part's share of
the frame, its elongation, how much wider one end is than the other, and the spread of its position
and angle over the images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from scae_tf.errors import ScaeError
from scae_tf.pose import end_widths, width_profile

KINDS = ("elongated", "compact", "surface")
ALIGNMENTS = ("pose", "translation", "rotation", "appearance", "none")  # appearance: chosen after the kind, from the images (scae_tf/rotation.py)

ELONGATED_RATIO = 2.2  # length / width of the part (principal axes) at or above which the canonical pose is used
HEAD_MIN_RATIO = 1.15  # median width ratio of a long part's ends below which it has no head to turn it by (screws 1.66-1.8, a nail with a 3 % head 1.38; a capsule 1.02-1.03, whose classical masks the head rule flips 1 time in 6)
SURFACE_FRACTION = 0.8  # a "part" covering more than this share of the frame is a surface
MIN_FOUND_SHARE = 0.5  # fewer images with a separable part than this: a surface (nothing stands out)
FIXTURED_POSITION = 0.03  # std of the part centre / frame short side below which parts are fixtured
FIXTURED_ANGLE = 3.0  # degrees: std of the axis angle below which parts do not rotate
ROTATION_MIN_RATIO = 1.3  # below this elongation the axis angle is too noisy to align on

BORDER_BAND = 0.06  # share of the frame side whose outer band models the background
MODEL_SIDE = 256  # the foreground is found at this short side (fast; the mask is resized back)
MIN_PART_FRACTION = 0.002  # smaller "parts" are dust: no part found
MIN_SEPARATION = 2.5  # the part must lie this many robust background deviations from the background model
TEXTURE_SIGMA = 1.5  # px at MODEL_SIDE: window of the local contrast
HOLE_SHARE = 0.05  # holes in the part mask smaller than this share of the part are filled
MIN_SEPARABILITY = 0.5  # below it the "part" is noise of a texture (parts measured 0.73-0.96, textures 0-0.17)
CLEAR_SEPARATION = 0.75  # Otsu's between-class share of the variance above which colour alone separates the part


def _features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel features that separate a part from its background whatever the polarity:
    (smoothed colour or gray, local contrast = texture)."""
    image = np.asarray(image, np.float32)
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    gray = channels[0] if len(channels) == 1 else np.mean(np.stack(channels), axis=0)
    colour = [cv2.GaussianBlur(c, (0, 0), 1.0) for c in channels]
    texture = []
    for sigma in (TEXTURE_SIGMA,):
        mean = cv2.GaussianBlur(gray, (0, 0), sigma)
        var = cv2.GaussianBlur(gray * gray, (0, 0), sigma) - mean * mean
        texture.append(np.sqrt(np.maximum(var, 0.0)))
    return np.stack(colour, axis=-1), np.stack(texture, axis=-1)


def border_band(shape: tuple[int, int], fraction: float = BORDER_BAND) -> np.ndarray:
    height, width = shape
    band = max(2, int(round(fraction * min(height, width))))
    mask = np.zeros((height, width), bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return mask


def _distance(features: np.ndarray) -> np.ndarray:
    """Distance of every pixel to a robust model of the frame's border (per-feature median and
    spread), in background deviations: large where the pixel differs from the background, small
    on it, whichever is darker or brighter."""
    border = features[border_band(features.shape[:2])]
    median = np.median(border, axis=0)
    spread = 1.4826 * np.median(np.abs(border - median), axis=0)
    spread = np.maximum(spread, 0.02 * max(float(np.median(np.abs(median))), 1e-3) + 1e-3)
    z = (features - median) / spread
    return cv2.GaussianBlur(np.sqrt(np.mean(z * z, axis=-1)).astype(np.float32), (0, 0), 1.0)


def background_distance(image: np.ndarray) -> np.ndarray:
    """Distance to the border's background model on colour and texture together."""
    colour, texture = _features(image)
    return _distance(np.concatenate([colour, texture], axis=-1))


def _otsu(distance: np.ndarray) -> tuple[np.ndarray, float]:
    """(pixels above Otsu's level of the log distance, separability = between-class / total variance)."""
    log_distance = np.log1p(distance)
    top = float(np.percentile(log_distance, 99.5))
    if top <= math.log1p(MIN_SEPARATION):
        return np.zeros(distance.shape, bool), 0.0
    scaled = (np.clip(log_distance / top, 0, 1) * 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(otsu / 255.0 * top, math.log1p(MIN_SEPARATION))
    mask = log_distance > level
    if mask.all() or not mask.any():
        return mask, 0.0
    total = float(log_distance.var())
    between = mask.mean() * (1 - mask.mean()) * (float(log_distance[mask].mean()) - float(log_distance[~mask].mean())) ** 2
    return mask, between / max(total, 1e-12)


def _small(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = min(1.0, MODEL_SIDE / min(height, width))
    if scale >= 1.0:
        return np.asarray(image, np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.asarray(image, np.float32), size, interpolation=cv2.INTER_AREA)


def largest_components(mask: np.ndarray, keep_fraction: float = 0.2) -> np.ndarray:
    """The largest 8-connected component and any other at least ``keep_fraction`` as large."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= keep_fraction * areas.max())
    return np.isin(labels, keep)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill regions not connected to the image border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return mask | (flood[1:-1, 1:-1] == 0)


def fill_small_holes(mask: np.ndarray, share: float = HOLE_SHARE) -> np.ndarray:
    """Fill holes smaller than ``share`` of the part (grooves, highlights that look like background);
    larger ones are background seen through the part (the hole of a washer)."""
    holes = fill_holes(mask) & ~mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    small = 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < share * max(int(mask.sum()), 1))
    return mask | np.isin(labels, small)


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Bool part mask of ``image`` (gray HxW or RGB HxWx3 float) with no assumption on polarity:
    distance to the border's background model, Otsu's level on it, opening, largest components,
    small holes filled. Empty when nothing stands out from the background."""
    image = np.asarray(image, np.float32)
    small = _small(image)
    colour, texture = _features(small)
    # Colour (or gray level) alone gives the sharpest outline; texture joins in when colour does not
    # separate the part clearly (local contrast blurs the outline by its window).
    mask, separability = _otsu(_distance(colour))
    mask = mask.astype(np.uint8)
    if separability < CLEAR_SEPARATION:
        textured, separability = _otsu(_distance(np.concatenate([colour, texture], axis=-1)))
        if separability < MIN_SEPARABILITY:  # a texture filling the frame: nothing stands out
            return np.zeros(image.shape[:2], bool)
        # the local-contrast window reaches about 2 * TEXTURE_SIGMA px past the outline: take that back
        reach = int(round(2 * TEXTURE_SIGMA)) * 2 + 1
        textured = cv2.erode(textured.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
        mask = mask | textured
    side = max(3, int(round(min(small.shape[:2]) / 80)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3 * side, 3 * side))  # grooves at the outline stay in
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, close)
    mask = fill_small_holes(largest_components(mask > 0))
    if mask.mean() < MIN_PART_FRACTION:
        return np.zeros(image.shape[:2], bool)
    if mask.shape != image.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def part_is_darker(image: np.ndarray, mask: np.ndarray) -> bool:
    """Polarity read from the data: is the part darker than its background?"""
    gray = np.asarray(image, np.float32)
    gray = gray.mean(axis=2) if gray.ndim == 3 else gray
    if not mask.any() or mask.all():
        return False
    return float(np.median(gray[mask])) < float(np.median(gray[~mask]))


@dataclass(frozen=True)
class MaskShape:
    """What the kind decision needs from one mask (frame-relative, so sizes may vary)."""

    fraction: float  # part area / frame area
    elongation: float  # sqrt of the principal variances' ratio (1 for a disc)
    centre: tuple[float, float]  # (x, y) / frame short side
    angle: float  # principal axis, degrees in [0, 180)
    touches: int  # frame sides the mask touches
    end_ratio: float  # mean width of the wider end over the narrower one (the ends ``pose.head_is_at_low_end`` compares): the head rule's margin


def mask_shape(mask: np.ndarray) -> MaskShape | None:
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        return None
    short = float(min(mask.shape))
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    cov = np.cov(np.stack([x, y]))
    values, vectors = np.linalg.eigh(cov)
    axis = vectors[:, 1]
    elongation = math.sqrt(max(values[1], 1e-9) / max(values[0], 1e-9))
    along = (x - x.mean()) * axis[0] + (y - y.mean()) * axis[1]
    low, high = end_widths(width_profile(along)[0])
    end_ratio = max(low, high) / max(min(low, high), 1e-6)
    height, width = mask.shape
    touches = int(ys.min() == 0) + int(xs.min() == 0) + int(ys.max() == height - 1) + int(xs.max() == width - 1)
    return MaskShape(
        fraction=float(xs.size / mask.size),
        elongation=float(elongation),
        centre=(float(x.mean() / short), float(y.mean() / short)),
        angle=float(math.degrees(math.atan2(axis[1], axis[0])) % 180.0),
        touches=touches,
        end_ratio=float(end_ratio),
    )


def circular_spread(degrees: np.ndarray) -> float:
    """Circular std (degrees) of angles that repeat every 360 degrees."""
    radians = np.radians(np.asarray(degrees, np.float64))
    length = math.hypot(float(np.mean(np.cos(radians))), float(np.mean(np.sin(radians))))
    return math.degrees(math.sqrt(max(-2.0 * math.log(max(length, 1e-12)), 0.0)))


def axial_spread(angles_deg: np.ndarray) -> float:
    """Circular std (degrees) of axis angles, which repeat every 180 degrees."""
    return circular_spread(np.asarray(angles_deg, np.float64) * 2.0) / 2.0


def axial_mean(angles_deg: np.ndarray) -> float:
    doubled = np.radians(np.asarray(angles_deg, np.float64) * 2.0)
    return float(math.degrees(math.atan2(np.mean(np.sin(doubled)), np.mean(np.cos(doubled)))) / 2.0 % 180.0)


@dataclass(frozen=True)
class KindDecision:
    """The part kind and alignment chosen for a dataset, with the figures they were chosen from."""

    kind: str
    alignment: str  # pose | translation | rotation | none
    found_share: float  # share of the images with a part
    fraction: float  # median part share of the frame
    elongation: float  # median
    position_spread: float  # std of the centre / frame short side
    angle_spread: float  # degrees
    reason: str
    end_ratio: float = 0.0  # median width ratio of the part's ends (a head makes it large)

    @property
    def fixtured(self) -> bool:
        return self.alignment == "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_part_kind(masks: list[np.ndarray], kind: str | None = None, fixtured: bool | None = None) -> KindDecision:
    """Choose the kind (unless given) and the alignment from the good images' part masks."""
    if kind is not None and kind not in KINDS:
        raise ScaeError(f"unknown part kind {kind!r}; use one of {', '.join(KINDS)}")
    if not masks:
        raise ScaeError("no images to choose the part kind from")
    shapes = [s for s in (mask_shape(m) for m in masks) if s is not None]
    found = len(shapes) / len(masks)
    if shapes:
        fraction = float(np.median([s.fraction for s in shapes]))
        elongation = float(np.median([s.elongation for s in shapes]))
        centres = np.array([s.centre for s in shapes])
        position = float(np.sqrt(np.mean(np.var(centres, axis=0)))) if len(shapes) > 1 else 0.0
        angle = axial_spread(np.array([s.angle for s in shapes])) if len(shapes) > 1 else 0.0
        touching = float(np.median([s.touches for s in shapes]))
        end_ratio = float(np.median([s.end_ratio for s in shapes]))
    else:
        fraction, elongation, position, angle, touching, end_ratio = 1.0, 1.0, 0.0, 0.0, 4.0, 1.0
    figures = f"part found in {found:.0%} of the images, {fraction:.0%} of the frame, elongation {elongation:.2f}, position spread {position:.3f}, angle spread {angle:.1f} deg"
    if kind is None:
        if found < MIN_FOUND_SHARE or fraction > SURFACE_FRACTION or touching >= 3:
            kind, why = "surface", "the part fills the frame or nothing stands out from the background"
        elif elongation >= ELONGATED_RATIO and end_ratio >= HEAD_MIN_RATIO:
            kind, why = "elongated", f"elongation >= {ELONGATED_RATIO}, ends of width ratio {end_ratio:.2f} (a head to turn it by)"
        elif elongation >= ELONGATED_RATIO:
            # A capsule or a pin: turning it head-left by its wider end would flip it at random (and its print with it).
            kind, why = "compact", f"elongation >= {ELONGATED_RATIO} but its ends look alike (width ratio {end_ratio:.2f} < {HEAD_MIN_RATIO}): no head to turn it by"
        else:
            kind, why = "compact", f"elongation < {ELONGATED_RATIO}"
    else:
        why = "set by --kind"
    if kind == "elongated":
        alignment = "pose"
    elif kind == "surface":
        alignment = "none"
    else:
        still = position < FIXTURED_POSITION and (angle < FIXTURED_ANGLE or elongation < ROTATION_MIN_RATIO)
        if fixtured is None:
            fixtured = still
        if fixtured:
            alignment = "none"
        elif elongation >= ROTATION_MIN_RATIO and angle >= FIXTURED_ANGLE:
            alignment = "rotation"
        else:
            alignment = "translation"
    return KindDecision(kind, alignment, found, fraction, elongation, position, angle, f"{why}; {figures}", end_ratio)
