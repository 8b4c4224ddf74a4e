"""A model of good local texture: how unlike every good surface each pixel's neighbourhood is (no TensorFlow).

A surface (brushed metal, fabric, a tile) has no aligned counterpart in another image, and a CAE
trained on its tiles rebuilds the texture's grain only roughly: its residual is as high on the
grain of a good surface as on a faint scratch. What good surfaces share is the statistics of their
grain: its brightness after the illumination is removed and, at two scales, how strongly and in
which direction it changes (the local structure tensor); on colour surfaces also its two opponent
colours (red-green, yellow-blue) after the illumination is removed, so a stain that changes the hue
more than the brightness counts too. ``TextureModel`` fits one Gaussian to
these per-pixel features over the good training images and maps, per pixel, the squared
Mahalanobis distance to it: a scratch across the grain, a spot or a glue drop changes the features
in a way no good surface does. ``part_residual`` (``scae_tf/references.py``) takes the geometric
mean with the CAE's residual, as for the good references of aligned parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

ILLUMINATION_SIGMA = 8.0  # px: brightness varying more slowly than this is illumination, not texture
GRADIENT_SIGMAS = (1.0, 2.0)  # px: the scales at which the grain's direction and strength are measured
POOLING_SIGMA = 1.5  # px: each feature is averaged over a neighbourhood of this size
SAMPLE_STEP = 7  # every this-th pixel of each training crop enters the fit (neighbours are correlated anyway)
RIDGE = 1e-6  # relative to the mean feature variance: keeps the covariance invertible on a flat region
FEATURES = 1 + 3 * len(GRADIENT_SIGMAS)  # of a gray crop
COLOUR_FEATURES = FEATURES + 2  # of a colour crop: and its two opponent colours


def _high_pass(channel: np.ndarray) -> np.ndarray:
    return channel - cv2.GaussianBlur(channel, (0, 0), ILLUMINATION_SIGMA)


def texture_features(crop: np.ndarray) -> np.ndarray:
    """Per-pixel features of a crop in [0, 1]: float32 (h, w, FEATURES) for gray, (h, w, COLOUR_FEATURES) for colour.

    High-passed brightness, then per scale the structure tensor (gx², gy², gx·gy), then for colour the
    high-passed opponent colours; each pooled."""
    image = np.asarray(crop, np.float32)
    colour = image.ndim == 3 and image.shape[2] == 3
    gray = np.ascontiguousarray(image.mean(axis=2) if image.ndim == 3 else image)
    features = [_high_pass(gray)]
    for sigma in GRADIENT_SIGMAS:
        smooth = cv2.GaussianBlur(gray, (0, 0), sigma)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        features += [gx * gx, gy * gy, gx * gy]
    if colour:
        red, green, blue = image[..., 0], image[..., 1], image[..., 2]  # the differences below are new contiguous arrays
        features += [_high_pass(red - green), _high_pass((red + green) / 2 - blue)]
    return np.stack([cv2.GaussianBlur(f, (0, 0), POOLING_SIGMA) for f in features], axis=-1)


@dataclass(frozen=True)
class TextureModel:
    """A Gaussian over the texture features of good crops: mean (n,), inverse covariance (n, n); n = FEATURES
    for gray crops, COLOUR_FEATURES for colour ones."""

    mean: np.ndarray
    precision: np.ndarray
    _whitening: np.ndarray = field(init=False, repr=False, compare=False)  # Cholesky factor of the precision

    def __post_init__(self) -> None:
        mean, precision = np.asarray(self.mean, np.float64), np.asarray(self.precision, np.float64)
        n = mean.shape[0] if mean.ndim == 1 else -1
        if n not in (FEATURES, COLOUR_FEATURES) or precision.shape != (n, n) or not np.all(np.isfinite(precision)):
            raise ValueError(
                f"a texture model needs a mean of {FEATURES} (gray) or {COLOUR_FEATURES} (colour) values and a finite "
                f"square precision matrix of that size, got {mean.shape} and {precision.shape}"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "precision", precision)
        try:
            whitening = np.linalg.cholesky((precision + precision.T) / 2)
        except np.linalg.LinAlgError:
            raise ValueError("a texture model needs a positive definite precision matrix") from None
        object.__setattr__(self, "_whitening", whitening.astype(np.float32))

    @classmethod
    def fit(cls, crops: np.ndarray | list[np.ndarray], masks: list[np.ndarray] | None = None) -> TextureModel:
        """Fit on good crops in [0, 1] (each (h, w) or (h, w, c); sizes may differ), on the pixels
        of their ``masks`` when given (a frame's padding is not the surface)."""
        features = [texture_features(crop) for crop in crops]
        if not features or len({f.shape[2] for f in features}) != 1:
            raise ValueError("a texture model needs at least one good crop, all gray or all colour")
        n = features[0].shape[2]
        if masks is not None:
            features = [f[np.asarray(m, bool)] for f, m in zip(features, masks, strict=True)]
        data = np.concatenate([f.reshape(-1, n)[::SAMPLE_STEP] for f in features]).astype(np.float64)
        mean = data.mean(axis=0)
        covariance = np.cov(data, rowvar=False)
        covariance += RIDGE * max(float(np.trace(covariance)) / n, 1e-12) * np.eye(n)
        return cls(mean, np.linalg.inv(covariance))

    def distance(self, crop: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each pixel's features to good texture: float32 (h, w)."""
        features = texture_features(crop)
        if features.shape[2] != len(self.mean):
            kind = "colour" if len(self.mean) == COLOUR_FEATURES else "gray"
            raise ValueError(f"this texture model was fitted on {kind} crops; the crop has {features.shape[2]} features")
        centred = features.reshape(-1, len(self.mean)) - self.mean.astype(np.float32)
        whitened = centred @ self._whitening  # |L^T x|^2 = x^T P x with P = L L^T: one BLAS product
        return np.einsum("ij,ij->i", whitened, whitened).reshape(features.shape[:2])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "texture", "mean": [float(v) for v in self.mean], "precision": [[float(v) for v in row] for row in self.precision]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextureModel:
        return cls(np.asarray(data["mean"], np.float64), np.asarray(data["precision"], np.float64))
