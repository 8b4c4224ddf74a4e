"""Synthetic corruptions of good crops, for defect-removal training (NumPy + OpenCV, no TensorFlow).

Why: an autoencoder trained to reproduce good crops learns something close to identity and
rebuilds a defect along with the part, so the residual on the defect stays small. Trained to
return the CLEAN crop from a corrupted copy, it must replace anything good parts never show by
what should be there. Only good images are needed: every corruption is synthesised here.

The kinds are deliberately generic and drawn differently from the tuning proxy's implants
(``scae_tf.implant``: scratch, pit, dent, chip, flatten, contamination) and from the synthetic
generator's defects, so a proxy score measures removal of unseen damage, not memory of a generator:

* ``paste``: a patch of the same crop from elsewhere (shifted, maybe flipped), soft-blended;
* ``blob``: an irregular smooth-edged region brightened or darkened with its own texture;
* ``strokes``: one to three straight strokes of random width and intensity;
* ``cutout``: an irregular region set to one level (missing material, a hole, a stain);
* ``smear``: an irregular region replaced by a strongly blurred copy (worn or smeared structure);
* ``noise``: an irregular region with strong sensor-like noise.

Regions are random shapes (thresholded smooth noise inside an ellipse), 0.05 % to 2 % of the crop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

CORRUPTION_KINDS = ("paste", "blob", "strokes", "cutout", "smear", "noise")
AREA_RANGE = (0.0005, 0.02)  # fraction of the crop one corruption covers


def structure_weights(crop: np.ndarray) -> np.ndarray:
    """Where corruptions are placed: mostly where the crop has structure (the part), some anywhere.

    Smoothed gradient magnitude, normalised to a probability over pixels, mixed with a uniform
    share. Needs no object mask, and works for parts darker or lighter than their background.
    """
    gray = crop.mean(axis=-1) if crop.ndim == 3 else crop
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), 4.0).ravel().astype(np.float64)
    total = float(energy.sum())
    uniform = np.full(energy.size, 1.0 / energy.size)
    return uniform if total <= 0 else 0.8 * energy / total + 0.2 * uniform


def random_region(
    shape: tuple[int, int],
    rng: np.random.Generator,
    area_range: tuple[float, float] = AREA_RANGE,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Soft float32 mask in [0, 1]: an irregular blob of random size and shape, centred at a pixel
    drawn from ``weights`` (flattened probabilities; uniform when None)."""
    height, width = shape
    area = float(rng.uniform(*area_range)) * height * width
    aspect = float(rng.uniform(0.3, 1.0))
    radius_a = float(np.sqrt(area / (np.pi * aspect)))
    radius_b = max(1.0, radius_a * aspect)
    if weights is None:
        centre = int(rng.integers(height * width))
    else:
        centre = min(int(np.searchsorted(np.cumsum(weights), rng.random() * float(weights.sum()))), height * width - 1)
    cy, cx = centre // width, centre % width
    angle = float(rng.uniform(0, np.pi))
    # Work in a window around the centre: the region never reaches past 1.5 radii.
    reach = int(np.ceil(1.5 * radius_a)) + 3
    y0, y1 = max(0, cy - reach), min(height, cy + reach + 1)
    x0, x1 = max(0, cx - reach), min(width, cx + reach + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius_a
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / radius_b
    ellipse = 1.0 - (u * u + v * v)
    # Irregular outline: low-frequency noise added to the ellipse's level set.
    h, w = y1 - y0, x1 - x0
    coarse = rng.normal(size=(max(2, h // 6), max(2, w // 6))).astype(np.float32)
    noise = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    local = (ellipse + 0.5 * noise / max(float(np.abs(noise).max()), 1e-6)) > 0
    local[min(cy - y0, h - 1), min(cx - x0, w - 1)] = True
    region = np.zeros(shape, np.float32)
    region[y0:y1, x0:x1] = cv2.GaussianBlur(local.astype(np.float32), (0, 0), float(rng.uniform(0.5, 1.5)))
    return np.clip(region * 1.5, 0.0, 1.0)


def _paste(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = crop.shape[:2]
    source = np.roll(crop, (int(rng.integers(height // 4, height)), int(rng.integers(width // 4, width))), axis=(0, 1))
    if rng.random() < 0.5:
        source = source[::-1]
    return source


def _blob(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    texture = cv2.GaussianBlur(rng.normal(size=crop.shape[:2]).astype(np.float32), (0, 0), float(rng.uniform(0.7, 3.0)))
    texture /= max(float(np.abs(texture).max()), 1e-6)
    shift = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.45))
    return crop + _expand(shift * (1.0 + 0.5 * texture), crop)


def _strokes(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strokes start inside ``region`` and run past it (the mask is where they were drawn)."""
    height, width = crop.shape[:2]
    canvas = np.zeros((height, width), np.float32)
    ys, xs = np.nonzero(region > 0.5)
    for _ in range(int(rng.integers(1, 4))):
        length = float(rng.uniform(0.03, 0.2)) * max(height, width)
        angle = float(rng.uniform(0, np.pi))
        start = int(rng.integers(len(xs))) if len(xs) else 0
        x0, y0 = (float(xs[start]), float(ys[start])) if len(xs) else (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        level = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.5))
        thickness = int(rng.integers(1, 4))
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), level, thickness, cv2.LINE_AA)
    return crop + _expand(canvas, crop)


def _cutout(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    level = float(np.quantile(crop, rng.choice([0.02, 0.5, 0.98]))) if rng.random() < 0.7 else float(rng.uniform(0, 1))
    return np.full_like(crop, level)


def _smear(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = float(rng.uniform(2.0, 6.0))
    blurred = cv2.GaussianBlur(crop, (0, 0), sigma)
    return blurred.reshape(crop.shape)


def _noise(crop: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return crop + rng.normal(0.0, float(rng.uniform(0.05, 0.2)), size=crop.shape).astype(np.float32)


def _expand(field: np.ndarray, like: np.ndarray) -> np.ndarray:
    return field[..., None] if like.ndim == 3 else field


CORRUPTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    "paste": _paste,
    "blob": _blob,
    "strokes": _strokes,
    "cutout": _cutout,
    "smear": _smear,
    "noise": _noise,
}


def corrupt(
    crop: np.ndarray,
    rng: np.random.Generator,
    kinds: Sequence[str] = CORRUPTION_KINDS,
    count: tuple[int, int] = (1, 3),
) -> tuple[np.ndarray, np.ndarray]:
    """(corrupted crop, soft corruption mask) for one float crop in [0, 1], (H, W) or (H, W, C)."""
    crop = np.asarray(crop, dtype=np.float32)
    out = crop.copy()
    total = np.zeros(crop.shape[:2], np.float32)
    weights = structure_weights(crop)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        kind = str(kinds[int(rng.integers(len(kinds)))])
        region = random_region(crop.shape[:2], rng, weights=weights)
        changed = np.clip(CORRUPTIONS[kind](out, region, rng), 0.0, 1.0)
        if kind == "strokes":  # the mask is where the strokes were drawn
            change = np.abs(changed - out)
            weight = ((change.max(axis=-1) if out.ndim == 3 else change) > 1e-3).astype(np.float32)
        else:
            weight = region
        out = out + _expand(weight, out) * (changed - out)
        total = np.maximum(total, weight)
    return out.astype(np.float32), total


def corrupt_batch(crops: np.ndarray, seed: int, probability: float) -> np.ndarray:
    """Corrupt each crop of a batch with ``probability`` (the rest stay clean: good parts must still pass)."""
    rng = np.random.default_rng(int(seed))
    out = np.array(crops, dtype=np.float32, copy=True)
    for i in range(len(out)):
        if rng.random() < probability:
            out[i] = corrupt(out[i], rng)[0]
    return out
