"""Per-pixel residual maps between a canonical crop and its reconstruction (no TensorFlow).

The CAE is trained on ``alpha * (1 - MS-SSIM) + (1 - alpha) * MSE``, so its errors are judged with
the same two ideas: a local structural dissimilarity (1 - SSIM with a Gaussian window, which
ignores small brightness offsets and follows texture/edges) and the plain squared error (which
catches strong contrast defects SSIM saturates on). Maps stay in canonical-crop coordinates; the
post-processor decides which pixels belong to the object.

The default is the squared error: on real screws (tuning proxy of held-out good images with
implanted defects, ``benchmarks/proxy_split.py``) it separated defects best; the SSIM term is
large on every thread flank and head edge of a good part, because the CAE blurs them, and that
texture noise drowns small defects once per-position z-scores compare places across parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from scae_tf.colour import ColourBalance
from scae_tf.config import PostprocessConfig

RESIDUAL_KINDS = ("ssim", "l2", "ssim+l2")

# Standard SSIM stabilisers for data range 1 (Wang et al. 2004).
_C1 = 0.01**2
_C2 = 0.03**2


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with reflected borders; ``sigma`` <= 0 returns the image as is."""
    if sigma <= 0:
        return image
    # Kernel of +-3.5 sigma like skimage/tf.image.ssim (7x7 at sigma 1.5 would truncate; 11x11 does not).
    size = int(2 * round(3.5 * sigma) + 1)
    return cv2.GaussianBlur(image, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def squared_error(image: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """(x - y)^2 per pixel, float32."""
    diff = np.asarray(image, np.float32) - np.asarray(reconstruction, np.float32)
    return diff * diff


def _squared_error_map(image: np.ndarray, reconstruction: np.ndarray, colour: ColourBalance | None) -> np.ndarray:
    """(height, width) squared error: a colour crop's channel mean, or its balanced components with ``colour``."""
    if colour is not None and np.ndim(image) == 3 and np.shape(image)[2] == 3:
        return colour.squared_error(np.asarray(image, np.float32) - np.asarray(reconstruction, np.float32))
    squared = squared_error(image, reconstruction)
    return squared if squared.ndim == 2 else squared.mean(axis=2)


BRIGHTNESS_SIGMA = 4.0  # crop px: the local brightness a squared error is judged against (broader than a defect)
DARK_PART_BRIGHTNESS = 0.2  # good parts whose median brightness is below this are judged by relative errors (docs/results.md: "Dark parts")
DARK_PART_POWER = 2.0  # the residual_brightness_power scae train gives them


def part_brightness(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """The median over images of each part's median brightness (channel mean) on its mask, in [0, 1]."""
    medians = []
    for image, mask in zip(images, masks, strict=True):
        y = np.asarray(image, np.float32)
        y = y if y.ndim == 2 else y.mean(axis=2)
        mask = np.asarray(mask, bool)
        if mask.shape == y.shape and mask.any():
            medians.append(float(np.median(y[mask])))
    return float(np.median(medians)) if medians else 1.0


def brightness_power_for(brightness: float) -> float:
    """``postprocess.residual_brightness_power`` for good parts of this median brightness: relative errors
    (``DARK_PART_POWER``) for a dark part, where a highlight's misfits would outweigh everything in the
    shadows; 0 otherwise (a light part's dark hole or background edge would only gain noise: a light
    washer's tuning set fell from 0.847 to 0.707)."""
    return DARK_PART_POWER if brightness < DARK_PART_BRIGHTNESS else 0.0


def brightness_weight(reconstruction: np.ndarray, config: PostprocessConfig) -> np.ndarray | None:
    """Per pixel 1 / (local brightness + floor)^power, the brightness taken from the reconstruction (what the
    part should look like there), or None when ``postprocess.residual_brightness_power`` is 0.

    Why: a squared error in intensity units weighs a change by the light on it. On a dark part under a
    highlight (a black tyre lit from the front) the highlight's small misfits outweigh a black spot in
    the shadow that changes its pixels by 100 %; power 1 judges errors like a square-root (shot noise)
    scale, power 2 like a relative (Weber) one."""
    power = float(config.residual_brightness_power)
    if power <= 0:
        return None
    y = np.asarray(reconstruction, np.float32)
    y = y if y.ndim == 2 else y.mean(axis=2)
    local = gaussian_blur(np.ascontiguousarray(y), BRIGHTNESS_SIGMA)
    return (np.maximum(local, 0.0) + np.float32(config.residual_brightness_floor)) ** np.float32(-power)


def denoise_sigma(config: PostprocessConfig) -> float:
    """Px a crop's difference to its reconstruction and references is smoothed by before squaring:
    ``residual_brightness_denoise`` with relative errors, else 0. Relative errors divide by the
    brightness, and in a black part's shadow the sensor noise is as large as it (the tyre: noise 0.015
    on a sidewall of 0.03), so unsmoothed the shadow's noise competes with a defect on the lit tread. Light
    parts lose by it (real screw and washer proxies), so it stays with relative errors."""
    if float(config.residual_brightness_power) <= 0:
        return 0.0
    return max(0.0, float(config.residual_brightness_denoise))


def smoothed(image: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussian_blur`` of a float32 crop, (h, w) or (h, w, c), keeping its shape (OpenCV drops a single channel)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    return gaussian_blur(image, sigma).reshape(image.shape)


def ssim_map(image: np.ndarray, reconstruction: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Local SSIM per pixel with a Gaussian window (data range 1), vectorised with OpenCV blurs."""
    x = np.asarray(image, np.float32)
    y = np.asarray(reconstruction, np.float32)
    mu_x = gaussian_blur(x, sigma)
    mu_y = gaussian_blur(y, sigma)
    var_x = gaussian_blur(x * x, sigma) - mu_x * mu_x
    var_y = gaussian_blur(y * y, sigma) - mu_y * mu_y
    cov = gaussian_blur(x * y, sigma) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return (numerator / denominator).astype(np.float32)


def residual_map(
    image: np.ndarray, reconstruction: np.ndarray, config: PostprocessConfig, colour: ColourBalance | None = None
) -> np.ndarray:
    """The configured residual (``config.residual``), lightly smoothed, float32, (height, width) of the crop.

    ``ssim`` = (1 - SSIM) / 2 in [0, 1]; ``l2`` = squared error; ``ssim+l2`` =
    ``ssim_weight * (1 - SSIM) / 2 + (1 - ssim_weight) * squared error``. The smoothing
    (``residual_smooth_sigma``) removes single-pixel reconstruction noise that no real defect has.
    A colour crop's squared error is the channel mean, or with ``colour`` its balanced opponent
    components (``scae_tf/colour.py``).
    """
    if image.shape != reconstruction.shape:
        raise ValueError(f"crop {image.shape} and reconstruction {reconstruction.shape} differ in shape")
    kind = config.residual
    if kind not in RESIDUAL_KINDS:
        raise ValueError(f"postprocess.residual must be one of {RESIDUAL_KINDS}, got {kind!r}")
    squared = None if kind == "ssim" else _squared_error_map(image, reconstruction, colour)
    if kind == "l2":
        residual = squared
    else:
        dssim = (1.0 - ssim_map(image, reconstruction, config.ssim_window_sigma)) * 0.5
        if dssim.ndim == 3:  # colour crops: one map, the mean over the channels
            dssim = dssim.mean(axis=2)
        residual = dssim if kind == "ssim" else config.ssim_weight * dssim + (1.0 - config.ssim_weight) * squared
    return gaussian_blur(np.ascontiguousarray(residual, dtype=np.float32), config.residual_smooth_sigma)
