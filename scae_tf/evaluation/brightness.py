"""Global image statistics and the brightness-controlled test set.

On MVTec screw, the good test images are darker than the defective ones: mean brightness alone
separates them (image AUROC 1.0 on the dev split). These helpers measure such trivial global
statistics and remove the bias by scaling every image so its background level (median of the
non-object pixels) equals the training images' median background level.
"""

from __future__ import annotations

import logging

import numpy as np

from scae_tf.imageio import resize

log = logging.getLogger(__name__)

MIN_BACKGROUND_LEVEL = 1e-3  # below this the background is black and a gain is meaningless


def global_statistics(image: np.ndarray) -> dict[str, float]:
    """Mean brightness and contrast (standard deviation) of a gray float image."""
    image = np.asarray(image, dtype=np.float64)
    return {"mean_brightness": float(image.mean()), "contrast": float(image.std())}


def background_level(image: np.ndarray, object_mask: np.ndarray) -> float:
    """Median of the pixels outside the object (the mask may be at another resolution)."""
    if image.shape[:2] != object_mask.shape:
        image = resize(np.asarray(image, dtype=np.float32), object_mask.shape, "area")
    background = np.asarray(image)[~object_mask]
    if background.size == 0:
        return float(np.median(image))
    return float(np.median(background))


def match_background(image: np.ndarray, level: float, reference: float) -> np.ndarray:
    """Scale ``image`` so its background ``level`` becomes ``reference`` (clipped to [0, 1])."""
    if level < MIN_BACKGROUND_LEVEL:
        log.warning("background level %.4f is too dark to rescale; image left unchanged", level)
        return np.asarray(image, dtype=np.float32)
    scaled = np.asarray(image, dtype=np.float32) * np.float32(reference / level)
    return np.clip(scaled, 0.0, 1.0)
