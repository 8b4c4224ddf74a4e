"""Classical object masks: the U-Net's training targets on good images (no labels needed).

``training_targets`` picks the recipe for a dataset (and reports the part kind); the recipe
below is the one for a dark part on a light background, kept for elongated dark parts (screws).

The part is dark on a light, unevenly lit background and casts a soft shadow. The shadow must
stay OUT of the mask (its shape follows the part's roll and the light, not the part, and it
adds variance to every patch statistic downstream) while thin thread crests, the tip and the
bright head face must stay IN (defects there must fall inside the mask).

Recipe: divide by a background estimate (morphological closing at low resolution, which removes
the thin dark part but keeps the lighting gradient and most of the broad shadow), so the shadow
becomes faint while the part stays dark; threshold this ratio below Otsu's level (the soft shadow
sits just under the background, the part far below); recover bright regions of the part
(specular head face, reflections on the shank) that are nearly enclosed by dark part pixels with
a closing restricted to pixels the looser Otsu level accepts; keep the largest component; fill
each slice across the principal axis between its outermost part pixels; fill holes.
"""

from __future__ import annotations

import cv2
import numpy as np

from scae_tf.imageio import to_gray
from scae_tf.part_kind import KindDecision, foreground_mask, infer_part_kind, part_is_darker
from scae_tf.pose import principal_axis
from scae_tf.preprocessing import fill_holes, largest_component

BACKGROUND_SIDE = 128  # background estimated at this resolution (fast, and smooth by construction)
BACKGROUND_CLOSING = 31  # closing diameter at BACKGROUND_SIDE: wider than the part's head
STRICT_FACTOR = 0.88  # part threshold = this * Otsu level of the ratio image (excludes soft shadow)
RECOVERY_CLOSING = 9  # px at 512: bright gaps narrower than this, inside the loose mask, are part
MIN_PART_FRACTION = 0.002  # a "part" smaller than this share of the image is dust: no part found


def background_estimate(work: np.ndarray) -> np.ndarray:
    """Light background with its lighting gradient, the dark part removed (same size as ``work``)."""
    height, width = work.shape
    small = cv2.resize(work, (BACKGROUND_SIDE, BACKGROUND_SIDE), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BACKGROUND_CLOSING, BACKGROUND_CLOSING))
    closed = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel), (0, 0), 4)
    return cv2.resize(closed, (width, height), interpolation=cv2.INTER_LINEAR)


def _disk(diameter: int) -> np.ndarray:
    diameter = max(1, int(diameter) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def classical_object_mask(work: np.ndarray, strict_factor: float = STRICT_FACTOR, slice_fill: bool = True) -> np.ndarray:
    """Bool object mask of a dark part on a light background (see module docstring); empty if none."""
    work = np.asarray(work, dtype=np.float32)
    if work.ndim != 2:
        raise ValueError(f"expected a gray work image, got shape {work.shape}")
    px = work.shape[0] / 512.0  # morphology sizes are tuned at 512 px
    ratio = cv2.GaussianBlur(work, (0, 0), 1.0) / np.maximum(background_estimate(work), 1e-3)
    ratio8 = (np.clip(ratio, 0.0, 1.0) * 255.0).astype(np.uint8)
    otsu, _ = cv2.threshold(ratio8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    loose = ratio < otsu / 255.0
    strict = (ratio < strict_factor * otsu / 255.0).astype(np.uint8)
    strict = cv2.morphologyEx(strict, cv2.MORPH_OPEN, _disk(round(3 * px)))
    closed = cv2.morphologyEx(strict, cv2.MORPH_CLOSE, _disk(round(RECOVERY_CLOSING * px))) > 0
    mask = largest_component((strict > 0) | (closed & loose))
    if mask.mean() < MIN_PART_FRACTION:
        return np.zeros(work.shape, dtype=bool)  # empty image: no part, not a speck of dust
    return fill_holes(fill_across_axis(mask)) if slice_fill else fill_holes(mask)


def fill_across_axis(mask: np.ndarray) -> np.ndarray:
    """Fill every 1-px slice perpendicular to the principal axis between its outermost mask pixels.

    Bright parts of the object (the specular head face, a reflection along the shank, a bright
    scratch) look like background to a threshold and leave notches open to the outside, which
    hole filling cannot close. Seen across the axis they lie between dark object pixels, so this
    fill restores them. It cannot bridge the gaps between thread crests (those open along the
    axis) and adds no shadow beside the part.
    """
    ys, xs = np.nonzero(mask)
    if xs.size < 3:
        return mask
    centroid, axis = principal_axis(xs.astype(np.float64), ys.astype(np.float64))
    # everything the fill adds lies between two mask pixels, so inside the mask's bounding box
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    box = mask[y0:y1, x0:x1]
    grid_y, grid_x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = grid_x - np.float32(centroid[0]), grid_y - np.float32(centroid[1])
    along = np.rint(dx * np.float32(axis[0]) + dy * np.float32(axis[1])).astype(np.int32)
    across = -dx * np.float32(axis[1]) + dy * np.float32(axis[0])
    slices = along - int(along.min())
    count = int(slices.max()) + 1
    low = np.full(count, np.inf, np.float32)
    high = np.full(count, -np.inf, np.float32)
    np.minimum.at(low, slices[box], across[box])
    np.maximum.at(high, slices[box], across[box])
    filled = mask.copy()
    filled[y0:y1, x0:x1] |= (across >= low[slices]) & (across <= high[slices])
    return filled


def training_targets(
    works: list[np.ndarray], kind: str | None = None, fixtured: bool | None = None
) -> tuple[list[np.ndarray], KindDecision]:
    """The U-Net's targets for good work images (gray or colour) and the part kind they show.

    Part masks with no assumption on polarity (``part_kind.foreground_mask``) decide the kind
    (unless ``kind`` is given). A dark elongated part on a lighter background keeps the recipe
    above (it keeps the soft shadow out); surfaces have no background: the whole frame is the part.
    """
    generic = [foreground_mask(w) for w in works]
    decision = infer_part_kind(generic, kind, fixtured)
    if decision.kind == "surface":
        return [np.ones(w.shape[:2], bool) for w in works], decision
    found = [(w, m) for w, m in zip(works, generic, strict=True) if m.any()]
    darker = bool(found) and float(np.mean([part_is_darker(w, m) for w, m in found])) > 0.5
    if decision.kind == "elongated" and darker:
        return [classical_object_mask(to_gray(w)) for w in works], decision
    return generic, decision
