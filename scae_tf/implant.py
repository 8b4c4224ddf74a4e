"""Realistic subtle defects implanted into real good images, with exact masks (no TensorFlow).

Why: the method must be tuned without looking at the test images (they are a development split;
an independent evaluation uses the rest of the test set). Implanting small, low-contrast defects
into copies of good images the model never trained on gives a tuning set with exact ground truth
and the real appearance of real parts, so every post-processing or pre-processing variant can be
compared on it instead of on the test set.

Every implant is placed ON the part (``object_mask``), changes the local intensity by a few per
cent up to about 20 %, covers well under 1 % of the image, and has soft (anti-aliased) edges:

* ``scratch``: a thin curved line, brighter or darker;
* ``pit``: a small dark dent with a faint bright rim;
* ``dent``: a shallow bump lit from one side (one half brighter, the other darker);
* ``chip``: material missing at the silhouette, filled with the local background level
  (like MVTec's manipulated_front / thread_side);
* ``flatten``: a worn patch where the local structure (a thread crest, an edge of the head)
  is smoothed away; only placed where there is structure to remove;
* ``contamination``: a few overlapping blobs of darker, mottled dirt.

Sizes scale with the part (the square root of its area), so the same settings suit 256, 512 and
1024 px images. ``part_region`` confines the implants to the part's brighter or darker half: placed
anywhere, they land where most of the part's area is, and a blind spot on the rest (a tyre's lit
tread) goes unmeasured. The defect mask is exactly the set of pixels the implant changed by more than
:data:`MASK_THRESHOLD`, like the synthetic generator's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from scae_tf.imageio import to_gray

IMPLANT_KINDS = ("scratch", "pit", "dent", "chip", "flatten", "contamination")
MASK_THRESHOLD = 2.5 / 255.0  # a pixel belongs to the defect when the implant changed it by more than this
CONTRAST_RANGE = (0.04, 0.20)  # default relative change at the defect's strongest point: a few per cent up to 20 %
MAX_AREA_FRACTION = 0.01  # an implant never covers this much of the image
_SUPERSAMPLE = 4
_ATTEMPTS = 40
# Reference part size: sqrt(area) of an MVTec screw at 512 px (about 10 % of the frame); sizes below are
# in pixels at that scale and multiplied by sqrt(object area) / _REFERENCE_SIDE.
_REFERENCE_SIDE = 160.0
REGIONS = ("anywhere", "bright", "dark")  # where on the part implants go (``part_region``)
_REGION_SMOOTHING = 0.01  # of the image's longer side: the brightness a region is chosen by, smoothed past sensor noise and fine texture


@dataclass(frozen=True)
class Implanted:
    """An image with implanted defects: the new image, the exact defect mask and what was implanted."""

    image: np.ndarray  # float32, same shape as the input, in [0, 1]
    defect_mask: np.ndarray  # bool
    kinds: tuple[str, ...]
    contrasts: tuple[float, ...]  # max relative intensity change of each implant (inside its mask)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _coverage(draw, shape: tuple[int, int]) -> np.ndarray:
    """Soft coverage in [0, 1] of shapes drawn by ``draw(canvas, s)`` on a supersampled canvas."""
    s = _SUPERSAMPLE
    canvas = np.zeros((shape[0] * s, shape[1] * s), np.uint8)
    draw(canvas, s)
    return cv2.resize(canvas.astype(np.float32) / 255.0, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _pt(x: float, y: float, s: int) -> tuple[int, int]:
    return int(round((x + 0.5) * s - 0.5)), int(round((y + 0.5) * s - 0.5))


def _signed_contrast(rng: np.random.Generator, contrast: tuple[float, float], dark_probability: float = 0.5) -> float:
    magnitude = float(rng.uniform(*contrast))
    return -magnitude if rng.random() < dark_probability else magnitude


def _scratch(rng: np.random.Generator, shape, centre, unit, contrast) -> tuple[np.ndarray, float]:
    length = rng.uniform(25, 70) * unit
    width = rng.uniform(1.5, 3.5) * unit
    angle = rng.uniform(0, np.pi)
    bend = rng.uniform(-0.25, 0.25) * length
    cx, cy = centre
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(-0.5, 0.5, 24)
    points = np.array([cx, cy]) + np.outer(t * length, direction) + np.outer((1 - 4 * t * t) * bend, normal)

    def draw(canvas, s):
        pts = np.array([_pt(x, y, s) for x, y in points], np.int32)
        cv2.polylines(canvas, [pts], False, 255, thickness=max(1, int(round(width * s))), lineType=cv2.LINE_AA)

    return _coverage(draw, shape), _signed_contrast(rng, contrast)


def _pit(rng: np.random.Generator, shape, centre, unit, contrast) -> tuple[np.ndarray, float]:
    radius = rng.uniform(3.0, 7.0) * unit
    rim = max(1.0, 0.6 * unit)

    def core(canvas, s):
        cv2.circle(canvas, _pt(*centre, s), int(round(radius * s)), 255, -1, cv2.LINE_AA)

    def ring(canvas, s):
        cv2.circle(canvas, _pt(*centre, s), int(round((radius + rim) * s)), 255, -1, cv2.LINE_AA)

    inner = _coverage(core, shape)
    outer = np.clip(_coverage(ring, shape) - inner, 0, 1)
    magnitude = float(rng.uniform(*contrast))
    return -inner + 0.35 * outer, magnitude


def _dent(rng: np.random.Generator, shape, centre, unit, contrast) -> tuple[np.ndarray, float]:
    radius = rng.uniform(8.0, 16.0) * unit
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dx, dy = xx - centre[0], yy - centre[1]
    light = rng.uniform(0, 2 * np.pi)
    r2 = (dx * dx + dy * dy) / (radius * radius)
    bump = np.exp(-2.0 * r2) * (r2 < 2.25)
    # A shallow dent under directional light: the slope facing the light brightens, the other darkens.
    shading = (dx * np.cos(light) + dy * np.sin(light)) / radius
    field = bump * (0.35 + np.clip(shading * 1.3, -1.0, 1.0))
    field /= max(float(np.abs(field).max()), 1e-6)
    return field.astype(np.float32), _signed_contrast(rng, contrast)


def _contamination(rng: np.random.Generator, shape, centre, unit, contrast) -> tuple[np.ndarray, float]:
    blobs = int(rng.integers(2, 6))
    spread = rng.uniform(5.0, 10.0) * unit
    centres = [(centre[0] + rng.normal(0, spread / 2), centre[1] + rng.normal(0, spread / 2)) for _ in range(blobs)]
    radii = [rng.uniform(2.5, 6.0) * unit for _ in range(blobs)]

    def draw(canvas, s):
        for (x, y), r in zip(centres, radii, strict=True):
            axes = (max(1, int(round(r * s))), max(1, int(round(r * rng.uniform(0.5, 1.0) * s))))
            cv2.ellipse(canvas, _pt(x, y, s), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)

    cover = _coverage(draw, shape)
    mottle = 0.7 + 0.3 * cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), max(0.8, unit))
    mottle /= max(float(mottle.max()), 1e-6)
    return cover * mottle, _signed_contrast(rng, contrast, dark_probability=0.8)


def _apply_relative(image: np.ndarray, field: np.ndarray, contrast: float, object_soft: np.ndarray) -> np.ndarray:
    return image * (1.0 + contrast * field * object_soft)


def _apply_chip(image, object_mask, centre, rng, unit) -> np.ndarray:
    """Material missing at the silhouette: a disc at an edge point, inside the part, set to the background level."""
    radius = rng.uniform(5.0, 12.0) * unit

    def draw(canvas, s):
        cv2.circle(canvas, _pt(*centre, s), int(round(radius * s)), 255, -1, cv2.LINE_AA)

    cover = _coverage(draw, image.shape) * object_mask
    window = int(np.ceil(radius * 3))
    x, y = int(round(centre[0])), int(round(centre[1]))
    y0, y1 = max(0, y - window), min(image.shape[0], y + window + 1)
    x0, x1 = max(0, x - window), min(image.shape[1], x + window + 1)
    outside = ~object_mask[y0:y1, x0:x1]
    background = float(np.median(image[y0:y1, x0:x1][outside])) if outside.any() else float(np.median(image[~object_mask]))
    return image * (1 - cover) + background * cover


def _blur_over_part(image: np.ndarray, object_mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the part only (normalised convolution), so the background does not bleed in."""
    weight = object_mask.astype(np.float32)
    return cv2.GaussianBlur(image * weight, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-3)


def _apply_flatten(image, object_mask, centre, rng, unit) -> np.ndarray:
    """Worn structure: blend towards a strongly blurred copy inside a soft disc."""
    radius = rng.uniform(6.0, 12.0) * unit
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    r2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (radius * radius)
    weight = np.clip(1.5 - r2, 0, 1) * object_mask  # flat core, soft rim
    blurred = _blur_over_part(image, object_mask, max(1.5, 2.5 * unit))
    strength = float(rng.uniform(0.6, 1.0))
    return image * (1 - strength * weight) + blurred * strength * weight


def _pick(rng: np.random.Generator, candidates: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(candidates)
    i = int(rng.integers(len(xs)))
    return float(xs[i]), float(ys[i])


def part_region(image: np.ndarray, object_mask: np.ndarray, region: str) -> np.ndarray:
    """Where on the part implants may be centred: the whole part (``anywhere``), or the pixels whose smoothed
    brightness is above (``bright``) or at most (``dark``) its median over the part; bool, the mask's shape."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {REGIONS}")
    object_mask = np.asarray(object_mask, dtype=bool)
    if region == "anywhere" or not object_mask.any():
        return object_mask
    gray = to_gray(np.asarray(image, dtype=np.float32))
    # smoothed over the part only: its rim is not darkened by the background
    smooth = _blur_over_part(gray, object_mask, max(1.0, _REGION_SMOOTHING * max(gray.shape)))
    median = float(np.median(smooth[object_mask]))
    return object_mask & ((smooth > median) if region == "bright" else (smooth <= median))


def implant_defect(
    image: np.ndarray,
    object_mask: np.ndarray,
    rng: np.random.Generator,
    kind: str,
    contrast: tuple[float, float] = CONTRAST_RANGE,
    within: np.ndarray | None = None,
) -> Implanted:
    """One implant of ``kind`` on the part; see the module docstring. ``image`` is float in [0, 1],
    gray (HxW) or RGB (HxWx3: implanted on the luminance, every channel changed by the same ratio).

    ``contrast``: range of the relative intensity change at the strongest point (scratch, pit, dent,
    contamination; a chip takes the background level, a flattened patch loses its own structure).
    ``within``: where the implant's centre may lie (``part_region``); None: anywhere on the part.
    """
    if not 0.0 < contrast[0] <= contrast[1]:
        raise ValueError(f"contrast range must satisfy 0 < low <= high, got {contrast}")
    if kind not in IMPLANT_KINDS:
        raise ValueError(f"unknown implant kind {kind!r}; choose from {IMPLANT_KINDS}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        gray = to_gray(image)
        implanted = implant_defect(gray, object_mask, rng, kind, contrast, within)
        ratio = implanted.image / np.maximum(gray, 1e-3)
        dark = gray <= 1e-3  # no ratio on black: the gray change is added instead
        colour = np.where(dark[..., None], image + (implanted.image - gray)[..., None], image * ratio[..., None])
        return Implanted(np.clip(colour, 0.0, 1.0).astype(np.float32), implanted.defect_mask, implanted.kinds, implanted.contrasts)
    object_mask = np.asarray(object_mask, dtype=bool)
    if image.ndim != 2 or object_mask.shape != image.shape:
        raise ValueError(f"expected a gray or RGB image and a mask of its size, got {image.shape} and {object_mask.shape}")
    if within is not None and np.shape(within) != image.shape:
        raise ValueError(f"the region {np.shape(within)} must have the image's size {image.shape}")
    area = int(object_mask.sum())
    if area == 0:
        raise ValueError("the object mask is empty: nothing to implant a defect on")
    if kind == "chip" and area == object_mask.size:
        raise ValueError("the part fills the frame: no background for a chip's missing material to show")
    unit = float(np.sqrt(area)) / _REFERENCE_SIDE
    margin = max(2, int(round(3 * unit)))
    interior = cv2.erode(object_mask.astype(np.uint8), _disk(margin)).astype(bool)
    edge = object_mask & ~cv2.erode(object_mask.astype(np.uint8), _disk(1)).astype(bool)
    places = edge if kind == "chip" else interior
    if not places.any():
        places = object_mask
    if within is not None:
        places = places & np.asarray(within, dtype=bool)
        if not places.any():  # counted unplaceable by the proxy, like a chip on a surface
            raise ValueError(f"no place for a {kind} in the given region of the part")
    object_soft = cv2.GaussianBlur(interior.astype(np.float32), (0, 0), 0.7) if kind != "chip" else None
    limit = MAX_AREA_FRACTION * image.size
    for _ in range(_ATTEMPTS):
        centre = _pick(rng, places)
        if kind == "chip":
            new = _apply_chip(image, object_mask, centre, rng, unit)
        elif kind == "flatten":
            new = _apply_flatten(image, object_mask, centre, rng, unit)
        else:
            field, signed = {"scratch": _scratch, "pit": _pit, "dent": _dent, "contamination": _contamination}[kind](
                rng, image.shape, centre, unit, contrast
            )
            new = _apply_relative(image, field, signed, object_soft)
        new = np.clip(new, 0.0, 1.0).astype(np.float32)
        change = np.abs(new - image)
        mask = change > MASK_THRESHOLD
        if not mask.any() or mask.sum() > limit:
            continue
        relative = float(np.max(change[mask] / np.maximum(image[mask], 1e-3)))
        if relative < contrast[0]:
            continue  # e.g. flattening a place without structure changes nothing visible
        return Implanted(new, mask, (kind,), (relative,))
    raise ValueError(f"could not place a visible {kind!r} implant on this part in {_ATTEMPTS} attempts")

