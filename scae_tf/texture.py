"""A model of good local texture: how unlike every good surface each pixel's neighbourhood is (no TensorFlow).

A surface (brushed metal, fabric, a tile) has no aligned counterpart in another image, and a CAE
trained on its tiles rebuilds the texture's grain only roughly: its residual is as high on the
grain of a good surface as on a faint scratch. What good surfaces share is the statistics of their
grain: its brightness after the illumination is removed and, at two scales, how strongly and in
which direction it changes (the local structure tensor). ``TextureModel`` fits one Gaussian to
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
FEATURES = 1 + 3 * len(GRADIENT_SIGMAS)


def texture_features(crop: np.ndarray) -> np.ndarray:
    """Per-pixel features of a crop in [0, 1] (gray, or colour averaged to gray): float32 (h, w, FEATURES).

    High-passed brightness, then per scale the structure tensor (gx², gy², gx·gy), each pooled."""
    gray = np.asarray(crop, np.float32)
    gray = gray.mean(axis=2) if gray.ndim == 3 else gray
    gray = np.ascontiguousarray(gray)
    features = [gray - cv2.GaussianBlur(gray, (0, 0), ILLUMINATION_SIGMA)]
    for sigma in GRADIENT_SIGMAS:
        smooth = cv2.GaussianBlur(gray, (0, 0), sigma)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        features += [gx * gx, gy * gy, gx * gy]
    return np.stack([cv2.GaussianBlur(f, (0, 0), POOLING_SIGMA) for f in features], axis=-1)


@dataclass(frozen=True)
class TextureModel:
    """A Gaussian over the texture features of good crops: mean (FEATURES,), inverse covariance (FEATURES, FEATURES)."""

    mean: np.ndarray
    precision: np.ndarray
    _whitening: np.ndarray = field(init=False, repr=False, compare=False)  # Cholesky factor of the precision

    def __post_init__(self) -> None:
        mean, precision = np.asarray(self.mean, np.float64), np.asarray(self.precision, np.float64)
        if mean.shape != (FEATURES,) or precision.shape != (FEATURES, FEATURES) or not np.all(np.isfinite(precision)):
            raise ValueError(f"a texture model needs a mean of {FEATURES} values and a finite {FEATURES}x{FEATURES} precision matrix")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "precision", precision)
        try:
            whitening = np.linalg.cholesky((precision + precision.T) / 2)
        except np.linalg.LinAlgError:
            raise ValueError("a texture model needs a positive definite precision matrix") from None
        object.__setattr__(self, "_whitening", whitening.astype(np.float32))

    @classmethod
    def fit(cls, crops: np.ndarray | list[np.ndarray]) -> TextureModel:
        """Fit on good crops in [0, 1] (each (h, w) or (h, w, c); sizes may differ)."""
        samples = [texture_features(crop).reshape(-1, FEATURES)[::SAMPLE_STEP] for crop in crops]
        if not samples:
            raise ValueError("a texture model needs at least one good crop")
        data = np.concatenate(samples).astype(np.float64)
        mean = data.mean(axis=0)
        covariance = np.cov(data, rowvar=False)
        covariance += RIDGE * max(float(np.trace(covariance)) / FEATURES, 1e-12) * np.eye(FEATURES)
        return cls(mean, np.linalg.inv(covariance))

    def distance(self, crop: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each pixel's features to good texture: float32 (h, w)."""
        features = texture_features(crop)
        centred = features.reshape(-1, FEATURES) - self.mean.astype(np.float32)
        whitened = centred @ self._whitening  # |L^T x|^2 = x^T P x with P = L L^T: one BLAS product
        return np.einsum("ij,ij->i", whitened, whitened).reshape(features.shape[:2])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "texture", "mean": [float(v) for v in self.mean], "precision": [[float(v) for v in row] for row in self.precision]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextureModel:
        return cls(np.asarray(data["mean"], np.float64), np.asarray(data["precision"], np.float64))
