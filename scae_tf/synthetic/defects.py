"""Defect painters: subtle defects painted onto any image region, with their exact masks.

One place for every defect kind the round part, the surface and the fabric show, usable on any
image (synthetic or real) because a painter knows nothing about the part it paints on:

    DEFECT_PAINTERS[name](image, rng, region_mask, signal_to_clutter=None) -> (new_image, defect_mask)

* ``image``: float32 in [0, 1], gray (H, W) or RGB (H, W, 3); never modified in place.
* ``rng``: a ``numpy.random.Generator``; the same state gives the same defect.
* ``region_mask``: bool (H, W), the pixels of the part the defect belongs to. The defect lies
  inside it, at least 1.5 px from its border, except ``chip``, which bites into the border (the
  missing material shows a background estimated from the pixels just outside the region).
* ``signal_to_clutter``: the strength (below); None draws it from :data:`TARGET_SIGNAL_TO_CLUTTER`.
* ``new_image``: float32, same shape, not quantised.
* ``defect_mask``: bool (H, W), exactly the pixels the painter changed by more than
  ``MASK_THRESHOLD`` (2.5/255) in any channel (after quantising to 8 bits, the generator
  recomputes it from the saved images, which moves it by at most one level).

Sizes scale with the image (``sqrt(H * W) / 256``): at 256 px a defect covers ~0.05-0.8 % of the
image. Strength: each painter draws its defect's shape, then scales the change so that it stands
out of the local texture by the target signal/clutter
(:func:`scae_tf.synthetic.common.signal_to_clutter`: the defect's mean change over the mean
error of inpainting its pixels of the unchanged image from their surroundings), but never changes
a pixel by more than :data:`MAX_DEFECT_CONTRAST` of its intensity
(:func:`scae_tf.synthetic.common.relative_change`; in colour the RGB change's length over the
colour's). So on a plain part a defect is faint, on a busy texture stronger, and on a very busy
one (the weave's yarn pull, dark real images) it stops at the cap, below the target. ``chip``
(material missing: :data:`GEOMETRIC_DEFECTS`) is not scaled; it is kept subtle by its size.

Kinds:

* ``scratch``: a thin, slightly curved line, brighter or darker;
* ``pit``: a small round dent, dark in the middle with a faint bright rim;
* ``dent``: a shallow impact lit from one side (one half brighter, the other darker);
* ``chip``: material missing at the region's border;
* ``contamination``: a few overlapping mottled blobs of dirt (darker, brownish in colour);
* ``spot``: a discoloured patch (a hue change in colour, a soft intensity change in gray);
* ``crack``: a dark, jagged, thin line with a branch;
* ``hole``: a small pore, dark inside, its far wall lit;
* ``stain``: a faint irregular blotch with a darker tide line at its edge;
* ``glue``: a glossy drop that smooths the texture under it, with a highlight and a dark meniscus;
* ``pull``: a snagged yarn: a taut bright line along the texture's own direction, dark gaps beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from scae_tf.synthetic.common import (
    GOOD,
    MAX_DEFECT_CONTRAST,
    TARGET_SIGNAL_TO_CLUTTER,
    SyntheticSample,
    change_mask,
    channel_max,
    finish,
    relative_change,
    smooth_noise,
)
from scae_tf.synthetic.common import signal_to_clutter as measure_signal_to_clutter

Painter = Callable[..., tuple[np.ndarray, np.ndarray]]  # (image, rng, region_mask, signal_to_clutter=None)
_ATTEMPTS = 20
_MIN_PIXELS = 6  # a defect smaller than this is resampled (it would be invisible at any scale)
GEOMETRIC_DEFECTS = ("chip",)  # material missing: background shows through, subtle by size, not scaled


def _unit(shape: tuple[int, ...]) -> float:
    return math.sqrt(shape[0] * shape[1]) / 256.0


def _interior(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the region's border (px) and a weight that fades defects out 1.5 px inside it."""
    padded = np.pad(region.astype(np.uint8), 1, constant_values=1)  # the frame edge is not a border
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return dist, np.clip((dist - 1.5) / 1.5, 0, 1).astype(np.float32)


def _pick(rng: np.random.Generator, dist: np.ndarray, margin: float) -> tuple[float, float]:
    """A random pixel (x, y) at least ``margin`` px inside the region (or as deep as it gets)."""
    candidates = np.flatnonzero(dist >= min(margin, float(dist.max()) * 0.6))
    index = int(candidates[rng.integers(len(candidates))])
    y, x = divmod(index, dist.shape[1])
    return float(x), float(y)


def _window(shape: tuple[int, ...], cx: float, cy: float, reach: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Slices of a square window around (cx, cy) and its pixel offsets from the centre."""
    h, w = shape[:2]
    x0, x1 = max(0, int(cx - reach)), min(w, int(math.ceil(cx + reach)) + 1)
    y0, y1 = max(0, int(cy - reach)), min(h, int(math.ceil(cy + reach)) + 1)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    return slice(y0, y1), slice(x0, x1), dx + 0 * dy, dy + 0 * dx


def _light(rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(-2.6, -2.0)  # from the upper left, like the generator's scenes
    return math.cos(angle), math.sin(angle)


def _apply_gain(image: np.ndarray, ys: slice, xs: slice, gain: np.ndarray) -> np.ndarray:
    """image * (1 + gain) on the window, the gain limited to +-MAX_DEFECT_CONTRAST (subtle by construction)."""
    out = image.copy()
    gain = np.clip(gain, -MAX_DEFECT_CONTRAST, MAX_DEFECT_CONTRAST)
    out[ys, xs] = image[ys, xs] * (1 + (gain[..., None] if image.ndim == 3 else gain))
    return out


def _distance_to_curve(dx: np.ndarray, dy: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Exact distance from each pixel of the window to the polyline through (px, py) (same coordinates)."""
    best = np.full(dx.shape, np.inf, np.float32)
    for x0, y0, x1, y1 in zip(px[:-1], py[:-1], px[1:], py[1:], strict=True):
        sx, sy = x1 - x0, y1 - y0
        t = np.clip(((dx - x0) * sx + (dy - y0) * sy) / max(sx * sx + sy * sy, 1e-9), 0, 1)
        np.minimum(best, (dx - x0 - t * sx) ** 2 + (dy - y0 - t * sy) ** 2, out=best)
    return np.sqrt(best)


def _curve(rng: np.random.Generator, length: float, bend_fraction: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A gently bent curve of ``length`` px centred on the origin."""
    direction = rng.uniform(0, math.pi)
    bend = rng.uniform(-bend_fraction, bend_fraction) * length
    t = np.linspace(-0.5, 0.5, n).astype(np.float32)
    px = t * length * math.cos(direction) - (1 - 4 * t**2) * bend * math.sin(direction)
    py = t * length * math.sin(direction) + (1 - 4 * t**2) * bend * math.cos(direction)
    return px, py


def _blob(
    rng: np.random.Generator, dx: np.ndarray, dy: np.ndarray, base: float, count: tuple[int, int], threshold: float, rough: float = 0.0
) -> np.ndarray:
    """An irregular soft blob: smoothstep of a sum of Gaussian lobes around the centre, its edge
    frayed by ``rough`` (relative amplitude of fine noise)."""
    field = np.zeros(dx.shape, np.float32)
    for _ in range(int(rng.integers(*count))):
        ox, oy = rng.normal(0, base * 0.7, size=2)
        r = base * rng.uniform(0.5, 1.0)
        field += np.exp(-((dx - ox) ** 2 + (dy - oy) ** 2) / (r * r))
    if rough > 0:
        field = field * (1 + rough * smooth_noise(rng, dx.shape, max(3, int(2.5 * dx.shape[1] / base))))
    shape = np.clip((field - threshold) / 0.25, 0, 1)
    return shape * shape * (3 - 2 * shape)


def _scratch(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    length = rng.uniform(0.10, 0.18) * 256 * k
    cx, cy = _pick(rng, dist, 3 * k)
    ys, xs, dx, dy = _window(image.shape, cx, cy, length / 2 + 6 * k + 3)
    px, py = _curve(rng, length, 0.15, 24)
    d = _distance_to_curve(dx, dy, px, py)
    width = rng.uniform(0.8, 1.1) * max(k, 1.0)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    gain = sign * rng.uniform(0.24, 0.32) * np.exp(-0.5 * (d / width) ** 2)
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _pit(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    radius = rng.uniform(0.016, 0.024) * 256 * k
    cx, cy = _pick(rng, dist, radius * 1.6)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 2.5 * radius)
    r = np.sqrt(dx**2 + dy**2)
    depth = rng.uniform(0.24, 0.32)
    gain = -depth * np.exp(-((r / radius) ** 2) * 1.5) + 0.6 * depth * np.exp(-(((r - 1.15 * radius) / (0.35 * radius)) ** 2))
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _dent(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    radius = rng.uniform(0.018, 0.026) * 256 * k
    cx, cy = _pick(rng, dist, radius * 1.5)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 2.5 * radius)
    lx, ly = _light(rng)
    squash = rng.uniform(0.6, 1.0)  # impacts are often oval
    angle = rng.uniform(0, math.pi)
    ca, sa = math.cos(angle), math.sin(angle)
    a = (dx * ca + dy * sa) / radius
    b = (-dx * sa + dy * ca) / (radius * squash)
    bowl = np.exp(-(a * a + b * b))
    facing = (dx * lx + dy * ly) / radius  # the wall facing away from the light is lit
    gain = rng.uniform(0.26, 0.32) * bowl * (1.6 * facing - 0.35)
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _contamination(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    base = rng.uniform(0.012, 0.018) * 256 * k
    cx, cy = _pick(rng, dist, 2 * base)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 4 * base)
    shape = _blob(rng, dx, dy, base, (3, 7), 0.35)
    mottle = 1 + 0.25 * smooth_noise(rng, dx.shape, max(2, int(dx.shape[1] / (0.6 * base + 1))))
    amount = rng.uniform(0.26, 0.34) * shape * mottle * weight[ys, xs]
    if image.ndim == 2:
        return _apply_gain(image, ys, xs, -amount)
    out = image.copy()
    dirt = np.float32([0.55, 0.42, 0.30])  # brownish grime, relative to the local colour
    window = image[ys, xs]
    target = window.mean(axis=2, keepdims=True) * dirt / dirt.mean() * 0.8
    mix = np.clip(amount, 0, MAX_DEFECT_CONTRAST)[..., None] * 2
    out[ys, xs] = window + np.clip(mix, 0, 1) * (target - window)
    return out


def _spot(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    base = rng.uniform(0.016, 0.024) * 256 * k
    cx, cy = _pick(rng, dist, 2 * base)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 3.5 * base)
    shape = _blob(rng, dx, dy, base, (2, 4), 0.3) * weight[ys, xs]
    if image.ndim == 2:
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return _apply_gain(image, ys, xs, sign * rng.uniform(0.2, 0.28) * shape)
    out = image.copy()
    window = image[ys, xs]
    luminance = window.mean(axis=2, keepdims=True)
    hue = rng.uniform(0, 2 * math.pi)  # a discolouration towards a random hue, same brightness
    tint = np.float32([math.cos(hue), math.cos(hue - 2.094), math.cos(hue + 2.094)])
    amount = rng.uniform(0.28, 0.34) * shape[..., None]
    out[ys, xs] = window + amount * luminance * tint
    return out


def _crack(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    length = rng.uniform(0.12, 0.2) * 256 * k
    cx, cy = _pick(rng, dist, 3 * k)
    ys, xs, dx, dy = _window(image.shape, cx, cy, length * 0.7 + 6 * k + 3)
    heading = rng.uniform(0, 2 * math.pi)
    ahead_x, ahead_y = _jagged_path(rng, heading, length / 2, 2.0 * k)  # grows both ways from its origin
    back_x, back_y = _jagged_path(rng, heading + math.pi, length / 2, 2.0 * k)
    px = np.concatenate([back_x[::-1], ahead_x[1:]])
    py = np.concatenate([back_y[::-1], ahead_y[1:]])
    d = _distance_to_curve(dx, dy, px, py)
    fork = int(rng.integers(len(px) // 4, 3 * len(px) // 4))  # one side branch, thinner and shorter
    turn = rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
    bx, by = _jagged_path(rng, heading + turn, rng.uniform(0.2, 0.35) * length, 2.0 * k)
    d_branch = _distance_to_curve(dx, dy, bx + px[fork], by + py[fork])
    width = rng.uniform(0.7, 0.9) * max(k, 1.0)
    gain = -rng.uniform(0.3, 0.35) * np.maximum(np.exp(-0.5 * (d / width) ** 2), 0.8 * np.exp(-0.5 * (d_branch / (0.8 * width)) ** 2))
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _texture_direction(window: np.ndarray, rng: np.random.Generator) -> float:
    """The direction (radians) of the strongest line structure of ``window`` (a yarn, a brush line),
    from the gradient-orientation histogram; a random direction where there is none."""
    gray = window.mean(axis=2) if window.ndim == 3 else window
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy).ravel()
    if magnitude.sum() < 1e-6:
        return float(rng.uniform(0, math.pi))
    bins = 36
    orientation = np.mod(np.arctan2(gy, gx).ravel(), math.pi)
    hist = np.bincount(np.minimum((orientation / math.pi * bins).astype(int), bins - 1), weights=magnitude, minlength=bins)
    hist = hist + np.roll(hist, 1) + np.roll(hist, -1)  # a little smoothing across bin borders
    if hist.max() < 1.5 * hist.mean():  # isotropic: no preferred direction
        return float(rng.uniform(0, math.pi))
    gradient_angle = (int(np.argmax(hist)) + 0.5) * math.pi / bins
    return gradient_angle + math.pi / 2  # lines run across their gradient


def _pull(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    length = rng.uniform(0.1, 0.15) * 256 * k
    cx, cy = _pick(rng, dist, 3 * k)
    ys, xs, dx, dy = _window(image.shape, cx, cy, length / 2 + 6 * k + 3)
    direction = _texture_direction(image[ys, xs], rng)
    t = np.linspace(-0.5, 0.5, 16).astype(np.float32)
    sag = rng.uniform(-0.03, 0.03) * length  # a pulled yarn is taut: nearly straight
    px = t * length * math.cos(direction) - (1 - 4 * t**2) * sag * math.sin(direction)
    py = t * length * math.sin(direction) + (1 - 4 * t**2) * sag * math.cos(direction)
    d = _distance_to_curve(dx, dy, px, py)
    width = rng.uniform(0.9, 1.2) * max(k, 1.0)
    taper = np.clip(1 - (np.abs((dx * math.cos(direction) + dy * math.sin(direction)) / (length / 2)) ** 4), 0, 1)
    core = np.exp(-0.5 * (d / width) ** 2)
    sides = np.exp(-0.5 * ((d - 2.2 * width) / (0.8 * width)) ** 2)  # the neighbours pushed apart leave dark gaps
    gain = rng.uniform(0.22, 0.3) * (core - 0.6 * sides) * taper
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _jagged_path(rng: np.random.Generator, heading: float, length: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """A crack-like path from the origin: short straight steps that zigzag around a slowly drifting heading."""
    steps = max(4, int(length / step))
    angles = heading + np.cumsum(rng.normal(0, 0.08, steps)) + rng.normal(0, 0.45, steps)
    step = length / steps
    px = np.concatenate([[0.0], np.cumsum(step * np.cos(angles))]).astype(np.float32)
    py = np.concatenate([[0.0], np.cumsum(step * np.sin(angles))]).astype(np.float32)
    return px, py


def _hole(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    radius = rng.uniform(0.011, 0.017) * 256 * k
    cx, cy = _pick(rng, dist, radius * 2)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 2.5 * radius)
    lx, ly = _light(rng)
    r = np.sqrt(dx**2 + dy**2)
    inside = np.clip(radius - r + 0.5, 0, 1)
    depth = rng.uniform(0.32, 0.35)
    far_wall = np.clip((dx * lx + dy * ly) / radius, 0, 1) * np.exp(-(((r - 0.75 * radius) / (0.3 * radius)) ** 2))
    lip = np.exp(-(((r - 1.2 * radius) / (0.3 * radius)) ** 2)) * np.clip(-(dx * lx + dy * ly) / radius, 0, 1)
    gain = -depth * inside * (1 - 0.9 * far_wall) + 0.15 * lip
    return _apply_gain(image, ys, xs, gain * weight[ys, xs])


def _stain(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    base = rng.uniform(0.022, 0.03) * 256 * k
    cx, cy = _pick(rng, dist, 2 * base)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 4 * base)
    shape = _blob(rng, dx, dy, base, (3, 6), 0.4, rough=0.3)
    edge = np.clip(shape * (1 - shape) * 4, 0, 1) ** 2  # the tide line where the liquid dried
    amount = (rng.uniform(0.14, 0.2) * shape + rng.uniform(0.12, 0.16) * edge) * weight[ys, xs]
    if image.ndim == 2:
        return _apply_gain(image, ys, xs, -amount)
    out = image.copy()
    window = image[ys, xs]
    tint = np.float32([0.9, 1.0, 1.25])  # rust/tea-coloured: loses more blue than red
    gain = np.clip(amount, 0, MAX_DEFECT_CONTRAST)[..., None] * tint
    out[ys, xs] = window * (1 - gain)
    return out


def _glue(image: np.ndarray, rng: np.random.Generator, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    k = _unit(image.shape)
    radius = rng.uniform(0.022, 0.03) * 256 * k
    cx, cy = _pick(rng, dist, radius * 1.5)
    ys, xs, dx, dy = _window(image.shape, cx, cy, 2.5 * radius)
    lx, ly = _light(rng)
    angle = rng.uniform(0, math.pi)
    ca, sa = math.cos(angle), math.sin(angle)
    squash = rng.uniform(0.65, 1.0)
    wobble = 1 + 0.12 * np.sin(3 * np.arctan2(dy, dx) + rng.uniform(0, 2 * math.pi))
    rho = np.sqrt(((dx * ca + dy * sa) / radius) ** 2 + ((-dx * sa + dy * ca) / (radius * squash)) ** 2) / wobble
    drop = np.clip((1 - rho) * radius + 0.5, 0, 1)  # anti-aliased edge
    meniscus = np.exp(-(((rho - 0.97) / 0.08) ** 2))
    hx, hy = -0.4 * radius * lx, -0.4 * radius * ly  # highlight towards the light
    highlight = np.exp(-((dx - hx) ** 2 + (dy - hy) ** 2) / (0.2 * radius) ** 2)
    window = image[ys, xs]
    smoothed = cv2.GaussianBlur(window, (0, 0), max(1.0, 1.2 * k))
    w = (drop * weight[ys, xs])[..., None] if image.ndim == 3 else drop * weight[ys, xs]
    out = image.copy()
    out[ys, xs] = window + 0.85 * w * (smoothed - window)  # the film hides the texture under it
    gain = (rng.uniform(0.1, 0.14) * drop + 0.22 * highlight - 0.24 * meniscus) * weight[ys, xs]
    return _apply_gain(out, ys, xs, gain)


def _chip(image: np.ndarray, rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Bite a small irregular piece out of the region's border; show an estimate of what lies behind."""
    k = _unit(image.shape)
    dist, _ = _interior(region)
    border = np.flatnonzero((dist > 0) & (dist < 1.5))
    outside = ~region
    if not border.size or not outside.any():
        raise ValueError("chip needs a region with a border inside the image (the part's silhouette)")
    y, x = divmod(int(border[rng.integers(len(border))]), region.shape[1])
    radius = rng.uniform(0.014, 0.022) * 256 * k
    ys, xs, dx, dy = _window(image.shape, x, y, 4 * radius)
    inside_w = region[ys, xs]
    # Outward direction: from the window's part pixels towards its background pixels.
    oy, ox = np.nonzero(~inside_w)
    iy, ix = np.nonzero(inside_w)
    out_x, out_y = dx[oy, ox].mean() - dx[iy, ix].mean(), dy[oy, ox].mean() - dy[iy, ix].mean()
    norm = math.hypot(out_x, out_y) or 1.0
    out_x, out_y = out_x / norm, out_y / norm
    cover = np.zeros(dx.shape, np.float32)
    for _ in range(int(rng.integers(2, 4))):  # a few overlapping discs: an irregular break
        shift = rng.uniform(0.2, 0.6) * radius
        sx, sy = out_x * shift + rng.normal(0, 0.35 * radius), out_y * shift + rng.normal(0, 0.35 * radius)
        r = radius * rng.uniform(0.7, 1.0)
        cover = np.maximum(cover, np.clip(r - np.sqrt((dx - sx) ** 2 + (dy - sy) ** 2) + 0.5, 0, 1))
    cover = cover * inside_w
    # Background behind the missing piece: normalised convolution of the nearby outside pixels + their grain.
    window = image[ys, xs]
    known = (~inside_w).astype(np.float32)
    sigma = max(1.5, 1.2 * radius)
    num = cv2.GaussianBlur(window * (known[..., None] if image.ndim == 3 else known), (0, 0), sigma)
    den = cv2.GaussianBlur(known, (0, 0), sigma)
    fill = num / np.maximum(den[..., None] if image.ndim == 3 else den, 1e-3)
    grain = window - cv2.GaussianBlur(window, (0, 0), 1.5)
    spread = float(np.std(grain[~inside_w])) if (~inside_w).any() else 0.0
    fill = fill + (rng.normal(0, spread, fill.shape).astype(np.float32) if spread > 0 else 0)
    # The fresh fracture face catches the light: a thin bright lip along the break, inside the part.
    lip = np.clip(cover * (1 - cover) * 4, 0, 1) * 0.15
    mix = cover[..., None] if image.ndim == 3 else cover
    out = image.copy()
    out[ys, xs] = window * (1 - mix) + fill * mix + (lip[..., None] if image.ndim == 3 else lip) * window
    return out


_FIELD_PAINTERS = {
    "scratch": _scratch,
    "pit": _pit,
    "dent": _dent,
    "contamination": _contamination,
    "spot": _spot,
    "crack": _crack,
    "hole": _hole,
    "stain": _stain,
    "glue": _glue,
    "pull": _pull,
}


def _relative_change(new: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    """Largest change on the mask relative to the local intensity; in colour, the length of the RGB
    change over the length of the RGB colour (a uniform gain g measures g whatever the hue)."""
    return float(relative_change(new, image)[mask].max())


def _scale_to_target(image: np.ndarray, new: np.ndarray, region: np.ndarray, target: float) -> np.ndarray:
    """Scale the painted change so the defect stands out of the local texture by ``target``
    (signal/clutter, measured around it), never beyond MAX_DEFECT_CONTRAST of the local intensity."""
    changed = channel_max(np.abs(new - image)) > 0
    if not changed.any():
        return new
    ys, xs = np.nonzero(changed)
    pad = 16
    box = (slice(max(0, ys.min() - pad), ys.max() + pad + 1), slice(max(0, xs.min() - pad), xs.max() + pad + 1))
    before, after, inside = image[box], new[box], region[box]
    for _ in range(3):
        mask = change_mask(after, before) & inside
        if mask.sum() < 4:
            break
        factor = target / max(measure_signal_to_clutter(after, before, mask), 1e-6)
        factor = min(factor, MAX_DEFECT_CONTRAST / max(_relative_change(after, before, mask), 1e-6))
        if abs(factor - 1) < 0.03:
            break
        after = np.clip(before + factor * (after - before), 0, 1).astype(np.float32)
    out = new.copy()
    out[box] = after
    return out


def _painter(name: str) -> Painter:
    def paint(
        image: np.ndarray, rng: np.random.Generator, region_mask: np.ndarray, signal_to_clutter: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image, dtype=np.float32)
        region = np.asarray(region_mask, dtype=bool)
        if region.shape != image.shape[:2] or not region.any():
            raise ValueError(f"{name}: region_mask must be a non-empty bool mask of the image's height and width")
        dist, weight = (None, None) if name == "chip" else _interior(region)
        target = float(rng.uniform(*TARGET_SIGNAL_TO_CLUTTER)) if signal_to_clutter is None else float(signal_to_clutter)
        best, best_mask = image, np.zeros(region.shape, bool)
        for _ in range(_ATTEMPTS):  # resample the rare defect that lands where it changes (almost) nothing
            new = _chip(image, rng, region) if name == "chip" else _FIELD_PAINTERS[name](image, rng, dist, weight)
            new = np.clip(new, 0, 1).astype(np.float32)
            if name not in GEOMETRIC_DEFECTS:
                new = _scale_to_target(image, new, region, target)
            mask = change_mask(new, image) & region
            if mask.sum() > best_mask.sum():
                best, best_mask = new, mask
            if mask.sum() >= _MIN_PIXELS:
                break
        return best, best_mask

    paint.__name__ = f"paint_{name}"
    paint.__doc__ = (
        f"Paint one {name!r} defect on ``image`` inside ``region_mask``; return (new image, defect mask). "
        "``signal_to_clutter`` sets its strength (default: drawn from TARGET_SIGNAL_TO_CLUTTER)."
    )
    return paint


DEFECT_PAINTERS: dict[str, Painter] = {name: _painter(name) for name in (*_FIELD_PAINTERS, "chip")}


def finish_part(
    rng: np.random.Generator, clean: np.ndarray, object_mask: np.ndarray, face: np.ndarray, defect_type: str, color: bool
) -> SyntheticSample:
    """A part on its background as a sample: gray unless ``color`` (``clean`` is (H, W, C)), and one painted
    defect of ``defect_type`` (or none for "good") on its ``face``, or at its outline for a chip; the defect
    has its own RNG, so the good and the defective rendering share everything else."""
    if not color:
        clean = clean[..., 0]
    image = clean
    if defect_type != GOOD:
        defect_rng = np.random.default_rng(rng.integers(0, 2**63))
        region = object_mask if defect_type == "chip" else face
        image, _ = DEFECT_PAINTERS[defect_type](clean, defect_rng, region)
    return finish(clean, image, object_mask, defect_type)


def render_texture(
    rng: np.random.Generator, texture: np.ndarray, defect_type: str, tint: np.ndarray | None = None
) -> SyntheticSample:
    """A texture that fills the frame (surface, fabric) as a sample: optional colour ``tint`` (jittered),
    sensor noise, and one painted defect of ``defect_type`` (or none for "good") on the whole frame."""
    if tint is not None:
        tint = tint * rng.uniform(0.97, 1.03, size=3).astype(np.float32)
        texture = texture[..., None] * tint / tint.mean()
    noise = rng.normal(0, rng.uniform(0.004, 0.008), size=texture.shape).astype(np.float32)
    clean = (texture + noise).astype(np.float32)
    object_mask = np.ones(texture.shape[:2], bool)
    image = clean
    if defect_type != GOOD:
        defect_rng = np.random.default_rng(rng.integers(0, 2**63))
        image, _ = DEFECT_PAINTERS[defect_type](clean, defect_rng, object_mask)
    return finish(clean, image, object_mask, defect_type)
