"""Canonical pose: bring every part to the same position, angle and scale before the CAE.

A screw fills a small part of the frame at any angle; a whole-frame autoencoder blurs its threads
and its errors cannot be compared position by position. So the object mask gives a pose (centre,
principal axis, which end is the head) and the image is warped into a fixed crop with the axis
horizontal and the head on the LEFT, at one scale for all images (learned at training time).

Coordinates follow OpenCV: pixel centres at integer positions, x to the right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from scae_tf.errors import ScaeError

HEAD_END_FRACTION = 0.2  # each end's share of the object length compared to find the head
PROFILE_BINS = 64


@dataclass(frozen=True)
class Pose:
    """Where the crop sits in the work image.

    ``angle`` (degrees, image coordinates) is the direction from head to tip; the crop's +x axis
    follows it, so the head is on the left. ``scale`` is crop pixels per work pixel along the
    axis; ``aspect`` stretches the perpendicular direction (1.0 for the canonical pose, other
    values only for the whole-frame ``identity_pose``).
    """

    centre: tuple[float, float]  # (x, y) in work-image pixels, mapped to the crop centre
    angle: float
    scale: float
    crop_size: tuple[int, int]  # (height, width)
    aspect: float = 1.0

    def matrix(self) -> np.ndarray:
        """2x3 affine map work-image px -> crop px (float64, as cv2.warpAffine wants)."""
        theta = math.radians(self.angle)
        cos, sin = math.cos(theta), math.sin(theta)
        sx, sy = self.scale, self.scale * self.aspect
        linear = np.array([[sx * cos, sx * sin], [-sy * sin, sy * cos]], dtype=np.float64)
        height, width = self.crop_size
        crop_centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        offset = crop_centre - linear @ np.asarray(self.centre, dtype=np.float64)
        return np.hstack([linear, offset[:, None]])

    def inverse_matrix(self) -> np.ndarray:
        """2x3 affine map crop px -> work-image px."""
        return cv2.invertAffineTransform(self.matrix())


def principal_axis(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and unit vector of the largest-variance direction of the pixel cloud."""
    centroid = np.array([xs.mean(), ys.mean()])
    dx, dy = xs - centroid[0], ys - centroid[1]
    cov = np.array([[np.mean(dx * dx), np.mean(dx * dy)], [np.mean(dx * dy), np.mean(dy * dy)]])
    values, vectors = np.linalg.eigh(cov)
    axis = vectors[:, int(np.argmax(values))]
    return centroid, axis / np.linalg.norm(axis)


def width_profile(along: np.ndarray, bins: int = PROFILE_BINS) -> tuple[np.ndarray, float, float]:
    """Object width (pixels per unit length) in ``bins`` slices along the axis, and the extent."""
    lo, hi = float(along.min()), float(along.max())
    length = max(hi - lo, 1e-6)
    counts = np.bincount(np.minimum(((along - lo) / length * bins).astype(np.int64), bins - 1), minlength=bins)
    return counts / (length / bins), lo, hi


def end_widths(profile: np.ndarray, end_fraction: float = HEAD_END_FRACTION) -> tuple[float, float]:
    """Mean width of the outer ``end_fraction`` of the length at the low and the high end of a width profile."""
    n = max(1, int(round(len(profile) * end_fraction)))
    return float(profile[:n].mean()), float(profile[-n:].mean())


def head_is_at_low_end(profile: np.ndarray, end_fraction: float = HEAD_END_FRACTION) -> bool:
    """True when the low-coordinate end is the wider one (the head).

    Compares the mean width of the outer ``end_fraction`` of the length at each end: the head of
    a screw or nail is wide over its whole span while the tip tapers, so means over a fifth of the
    length are far apart and insensitive to a ragged thread crest or a stray mask pixel.
    """
    low, high = end_widths(profile, end_fraction)
    return low >= high


def estimate_pose(mask: np.ndarray, crop_size: tuple[int, int], scale: float) -> Pose:
    """Pose of the object in ``mask`` (bool, work-image size): principal axis, head on the left.

    The centre is the midpoint of the object's extent along its axis (and its centroid across
    it), not the plain centroid: the heavy head would pull the centroid towards itself and push
    the head out of the crop.
    """
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        raise ScaeError(
            "no object found: the object mask is empty, so the part cannot be located; "
            "check the image shows one part on the usual background"
        )
    xs = xs.astype(np.float64)
    ys = ys.astype(np.float64)
    centroid, axis = principal_axis(xs, ys)
    along = (xs - centroid[0]) * axis[0] + (ys - centroid[1]) * axis[1]
    profile, lo, hi = width_profile(along)
    if not head_is_at_low_end(profile):
        axis = -axis
        lo, hi = -hi, -lo
    mid = (lo + hi) / 2.0
    centre = (float(centroid[0] + mid * axis[0]), float(centroid[1] + mid * axis[1]))
    angle = math.degrees(math.atan2(axis[1], axis[0]))
    return Pose(centre=centre, angle=angle, scale=float(scale), crop_size=(int(crop_size[0]), int(crop_size[1])))


def object_extent(mask: np.ndarray) -> tuple[float, float]:
    """(length along the principal axis, maximum width across it) of the mask, in pixels.

    Used to choose the crop scale so the part's length fills the crop and its head fits the crop
    height. The width is the largest extent across the axis over slices of 1/64 of the length
    (the head of a screw is short, so a percentile over slices would miss it).
    """
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        raise ScaeError("no object found: the object mask is empty; check the image and its mask")
    xs = xs.astype(np.float64)
    ys = ys.astype(np.float64)
    centroid, axis = principal_axis(xs, ys)
    dx, dy = xs - centroid[0], ys - centroid[1]
    along = dx * axis[0] + dy * axis[1]
    across = -dx * axis[1] + dy * axis[0]
    bins = PROFILE_BINS
    lo, hi = float(along.min()), float(along.max())
    index = np.minimum(((along - lo) / max(hi - lo, 1e-6) * bins).astype(np.int64), bins - 1)
    widths = np.zeros(bins)
    top = np.full(bins, -np.inf)
    bottom = np.full(bins, np.inf)
    np.maximum.at(top, index, across)
    np.minimum.at(bottom, index, across)
    filled = np.isfinite(top)
    widths[filled] = top[filled] - bottom[filled] + 1.0
    return hi - lo + 1.0, float(widths[filled].max())


def identity_pose(work_shape: tuple[int, int], crop_size: tuple[int, int]) -> Pose:
    """Whole work image resized into the crop (no canonical pose: the plain whole-frame baseline)."""
    height, width = int(work_shape[0]), int(work_shape[1])
    crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
    scale = crop_w / width
    return Pose(
        centre=((width - 1) / 2.0, (height - 1) / 2.0),
        angle=0.0,
        scale=scale,
        crop_size=(crop_h, crop_w),
        aspect=(crop_h / height) / scale,
    )


def warp_to_crop(image_or_mask: np.ndarray, pose: Pose, reflect: bool = False) -> np.ndarray:
    """Warp a work-image-sized image (linear, border replicated, or reflected) or bool mask (nearest, 0 outside)."""
    height, width = pose.crop_size
    matrix = pose.matrix()
    if image_or_mask.dtype == bool:
        warped = cv2.warpAffine(
            image_or_mask.astype(np.uint8), matrix, (width, height),
            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        return warped.astype(bool)
    image = np.asarray(image_or_mask, dtype=np.float32)
    border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_REPLICATE
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)


def warp_to_image(crop_map: np.ndarray, pose: Pose, work_shape: tuple[int, int]) -> np.ndarray:
    """Map a crop-space map (anomaly map, mask) back to work-image pixels; 0 outside the crop."""
    height, width = int(work_shape[0]), int(work_shape[1])
    matrix = pose.matrix()
    if crop_map.dtype == bool:
        warped = cv2.warpAffine(
            crop_map.astype(np.uint8), matrix, (width, height),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        return warped.astype(bool)
    return cv2.warpAffine(
        np.asarray(crop_map, dtype=np.float32), matrix, (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def crop_corners_in_image(box: tuple[float, float, float, float], pose: Pose) -> np.ndarray:
    """Corners of crop-space box ``(x0, y0, x1, y1)`` (pixel indices, x1/y1 exclusive) in work px.

    Returns a (4, 2) float32 array of (x, y) in the order top-left, top-right, bottom-right,
    bottom-left of the crop box, ready for ``cv2.polylines`` (after scaling to the input image).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    edges = np.array([[x0 - 0.5, y0 - 0.5], [x1 - 0.5, y0 - 0.5], [x1 - 0.5, y1 - 0.5], [x0 - 0.5, y1 - 0.5]])
    inverse = pose.inverse_matrix()
    return (edges @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)
