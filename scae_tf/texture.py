"""A model of good local texture: how unlike every good surface each pixel's neighbourhood is (no TensorFlow).

A surface (brushed metal, fabric, a tile) has no aligned counterpart in another image, and a CAE
trained on its tiles rebuilds the texture's grain only roughly: its residual is as high on the
grain of a good surface as on a faint scratch. What good surfaces share is the statistics of their
grain: its brightness after the illumination is removed and, at two scales, how strongly and in
which direction it changes (the local structure tensor); on colour surfaces also its two opponent
colours (red-green, yellow-blue) after the illumination is removed, so a stain that changes the hue
more than the brightness counts too; and the mean brightness of a neighbourhood a few grains wide
against its surroundings, where a faint stain or smear of dirt shows, which is larger than a grain and
has no edge for the structure tensor to see. ``TextureModel`` fits a mixture of Gaussians to
these per-pixel features over the good training images (a grain of several kinds, a brick's face and its
mortar, is several clusters) and maps, per pixel, the cost of the Gaussian that explains it best (with one
Gaussian the squared Mahalanobis distance): a scratch across the grain, a spot or a glue drop changes the
features in a way no good surface does. ``part_residual`` (``scae_tf/references.py``) weighs it against the
CAE's residual by ``postprocess.texture_weight``; at its default, 1, the texture distance alone judges a
surface: on a real brick wall the CAE's misfit along the mortar joints hid every defect (docs/results.md,
"Surfaces: a mixture of Gaussians, judged alone").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from scae_tf.config import PostprocessConfig

ILLUMINATION_SIGMA = 8.0  # px: brightness varying more slowly than this is illumination, not texture
GRADIENT_SIGMAS = (1.0, 2.0)  # px: the scales at which the grain's direction and strength are measured
BLOT_SIGMAS = (4.0, 24.0)  # px: a neighbourhood's mean brightness (a few grains wide) against its surroundings (a stain, dirt)
POOLING_SIGMA = 1.5  # px: each feature is averaged over a neighbourhood of this size
WIDEST_SIGMA = max(ILLUMINATION_SIGMA, *GRADIENT_SIGMAS, *BLOT_SIGMAS)  # px: the features' widest smoothing
SAMPLE_STEP = 7  # every this-th pixel of each training crop enters the fit (neighbours are correlated anyway)
RIDGE = 1e-6  # relative to the mean feature variance: keeps the covariance invertible on a flat region
FEATURES = 2 + 3 * len(GRADIENT_SIGMAS)  # of a gray crop
COLOUR_FEATURES = FEATURES + 2  # of a colour crop: and its two opponent colours
MIXTURE_SAMPLES = 200_000  # feature samples the mixture is fitted on, drawn evenly at random beyond
MIN_SAMPLES_PER_COMPONENT = 200  # fewer Gaussians when the good crops hold fewer samples than this per Gaussian
MIXTURE_ITERATIONS = 50  # expectation-maximisation steps
MIXTURE_RIDGE = 1e-3  # added to each Gaussian's covariance of the standardised features: none collapses onto a few samples


def _high_pass(channel: np.ndarray) -> np.ndarray:
    return channel - cv2.GaussianBlur(channel, (0, 0), ILLUMINATION_SIGMA)


def texture_features(crop: np.ndarray, blots: bool = True) -> np.ndarray:
    """Per-pixel features of a crop in [0, 1]: float32 (h, w, FEATURES) for gray, (h, w, COLOUR_FEATURES) for colour.

    High-passed brightness, per scale the structure tensor (gx², gy², gx·gy), the blot-sized brightness
    (``BLOT_SIGMAS``; left out with ``blots`` False, as in models fitted before it), then for colour the
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
    if blots:
        neighbourhood, surroundings = BLOT_SIGMAS
        features.append(cv2.GaussianBlur(gray, (0, 0), neighbourhood) - cv2.GaussianBlur(gray, (0, 0), surroundings))
    if colour:
        red, green, blue = image[..., 0], image[..., 1], image[..., 2]  # the differences below are new contiguous arrays
        features += [_high_pass(red - green), _high_pass((red + green) / 2 - blue)]
    return np.stack([cv2.GaussianBlur(f, (0, 0), POOLING_SIGMA) for f in features], axis=-1)


def _feature_counts(blots: bool) -> tuple[int, int]:
    """(gray, colour) feature counts with or without the blot-sized brightness."""
    return (FEATURES, COLOUR_FEATURES) if blots else (FEATURES - 1, COLOUR_FEATURES - 1)


def _log_sum_exp(values: np.ndarray, axis: int) -> np.ndarray:
    top = values.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(values - top).sum(axis=axis))


def _fit_mixture(data: np.ndarray, components: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian mixture by expectation-maximisation on standardised features: (weights, means, covariances)."""
    centre, scale = data.mean(axis=0), data.std(axis=0) + 1e-12
    z = (data - centre) / scale
    count, n = z.shape
    means = z[rng.choice(count, components, replace=False)]
    covariances = np.repeat(np.eye(n)[None], components, axis=0)
    weights = np.full(components, 1.0 / components)
    for _ in range(MIXTURE_ITERATIONS):
        log_density = _component_log_density(z, weights, means, np.linalg.inv(covariances))
        responsibility = np.exp(log_density - _log_sum_exp(log_density, 1)[:, None])
        mass = responsibility.sum(axis=0) + 1e-9
        weights, means = mass / count, (responsibility.T @ z) / mass[:, None]
        for j in range(components):
            centred = z - means[j]
            covariances[j] = (responsibility[:, j, None] * centred).T @ centred / mass[j] + MIXTURE_RIDGE * np.eye(n)
    return weights, means * scale + centre, covariances * np.outer(scale, scale)


def _component_log_density(z: np.ndarray, weights: np.ndarray, means: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """log(weight) + log N(z; mean, covariance) per sample and component, up to the shared constant."""
    out = np.empty((z.shape[0], len(weights)))
    for j, (mean, precision) in enumerate(zip(means, precisions, strict=True)):
        centred = z - mean
        out[:, j] = np.log(weights[j]) + 0.5 * np.linalg.slogdet(precision)[1] - 0.5 * np.einsum("ij,jk,ik->i", centred, precision, centred)
    return out


@dataclass(frozen=True)
class TextureModel:
    """A mixture of Gaussians over the texture features of good crops: weights (k,), means (k, n), inverse
    covariances (k, n, n); n = FEATURES for gray crops, COLOUR_FEATURES for colour ones (one fewer in a model
    fitted before the blot-sized brightness, which is then left out of its features). Several Gaussians
    because a surface's grain is seldom one kind: a brick face and its mortar joint, a tile and its grout, warp and
    weft each have their own features, and one Gaussian around all of them leaves a spot on the flat part
    inside its spread (docs/results.md, "Surfaces: a mixture of Gaussians, judged alone")."""

    weights: np.ndarray
    means: np.ndarray
    precisions: np.ndarray
    _centre: np.ndarray = field(init=False, repr=False, compare=False)  # features are standardised by the mixture's mean
    _inverse_scale: np.ndarray = field(init=False, repr=False, compare=False)  # and spread first, so float32 keeps the quadratic forms precise
    _quadratic_form: np.ndarray = field(init=False, repr=False, compare=False)  # (k, terms): see distance
    _least: float = field(init=False, repr=False, compare=False)  # the smallest offset: no pixel's distance is below it

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, np.float64)
        means, precisions = np.asarray(self.means, np.float64), np.asarray(self.precisions, np.float64)
        k = weights.shape[0] if weights.ndim == 1 else -1
        n = means.shape[1] if means.ndim == 2 else -1
        if (
            k < 1
            or n not in (*_feature_counts(True), *_feature_counts(False))
            or means.shape != (k, n)
            or precisions.shape != (k, n, n)
            or not (np.all(np.isfinite(precisions)) and np.all(np.isfinite(means)) and np.all(weights > 0))
        ):
            (gray, colour), (older_gray, older_colour) = _feature_counts(True), _feature_counts(False)
            raise ValueError(
                f"a texture model needs positive weights, means of {gray} (gray) or {colour} (colour) values "
                f"({older_gray} or {older_colour} in a model fitted before the blot-sized brightness) "
                f"and finite square precision matrices of that size, one per Gaussian; got {weights.shape}, {means.shape} "
                f"and {precisions.shape}"
            )
        weights = weights / weights.sum()
        precisions = (precisions + np.swapaxes(precisions, 1, 2)) / 2
        try:
            log_det = np.stack([2 * np.log(np.diag(np.linalg.cholesky(p))).sum() for p in precisions])
        except np.linalg.LinAlgError:
            raise ValueError("a texture model needs positive definite precision matrices") from None
        offsets = -2 * np.log(weights) - log_det  # a rarer or wider Gaussian explains a pixel at a higher cost
        # Standardised (z = (x - centre) * inverse_scale), each Gaussian's cost is a quadratic form in z:
        # (z - m)' P (z - m) + offset = sum over pairs a <= b of c_ab z_a z_b + l' z + constant.
        covariance = np.linalg.inv(precisions)
        centre = weights @ means
        spread = np.einsum("k,kab->ab", weights, covariance + means[:, :, None] * means[:, None, :]) - np.outer(centre, centre)
        scale = np.sqrt(np.maximum(np.diag(spread), 1e-30))
        p = precisions * np.outer(scale, scale)
        m = (means - centre) / scale
        rows, cols = np.triu_indices(n)
        quadratic = p[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
        linear = -2 * np.einsum("kab,kb->ka", p, m)
        constant = np.einsum("ka,kab,kb->k", m, p, m) + offsets
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "precisions", precisions)
        object.__setattr__(self, "_centre", centre.astype(np.float32))
        object.__setattr__(self, "_inverse_scale", (1 / scale).astype(np.float32))
        object.__setattr__(self, "_quadratic_form", np.concatenate([quadratic, linear, constant[:, None]], axis=1).astype(np.float32))
        object.__setattr__(self, "_least", float(offsets.min()))

    @property
    def components(self) -> int:
        return len(self.weights)

    @property
    def blots(self) -> bool:
        """Whether the model has the blot-sized brightness among its features (every model fitted since it exists)."""
        return self.means.shape[1] in _feature_counts(True)

    @classmethod
    def fit(
        cls, crops: np.ndarray | list[np.ndarray], masks: list[np.ndarray] | None = None, components: int = PostprocessConfig.texture_components
    ) -> TextureModel:
        """Fit on good crops in [0, 1] (each (h, w) or (h, w, c); sizes may differ), on the pixels
        of their ``masks`` when given (a frame's padding is not the surface); ``components`` Gaussians
        (fewer when the crops hold too few pixels for them). Deterministic: the same crops give the same model."""
        if components < 1:
            raise ValueError(f"a texture model needs at least one Gaussian, got {components}")
        features = [texture_features(crop) for crop in crops]
        if not features or len({f.shape[2] for f in features}) != 1:
            raise ValueError("a texture model needs at least one good crop, all gray or all colour")
        n = features[0].shape[2]
        if masks is not None:
            features = [f[np.asarray(m, bool)] for f, m in zip(features, masks, strict=True)]
        data = np.concatenate([f.reshape(-1, n)[::SAMPLE_STEP] for f in features]).astype(np.float64)
        rng = np.random.default_rng(0)
        if len(data) > MIXTURE_SAMPLES:
            data = data[np.sort(rng.choice(len(data), MIXTURE_SAMPLES, replace=False))]
        components = min(components, max(1, len(data) // MIN_SAMPLES_PER_COMPONENT))
        if components == 1:
            covariance = np.cov(data, rowvar=False)
            covariance += RIDGE * max(float(np.trace(covariance)) / n, 1e-12) * np.eye(n)
            return cls(np.ones(1), data.mean(axis=0)[None], np.linalg.inv(covariance)[None])
        weights, means, covariances = _fit_mixture(data, components, rng)
        return cls(weights, means, np.linalg.inv(covariances))

    def distance(self, crop: np.ndarray) -> np.ndarray:
        """How unlike good texture each pixel's features are: float32 (h, w), >= 0. The cost of the Gaussian that
        explains the pixel best (its squared Mahalanobis distance plus -2 log of its weight and -log det of its
        precision), less the least such offset; with one Gaussian, the squared Mahalanobis distance."""
        features = texture_features(crop, self.blots)
        n = self.means.shape[1]
        if features.shape[2] != n:
            kind = "colour" if n == _feature_counts(self.blots)[1] else "gray"
            raise ValueError(f"this texture model was fitted on {kind} crops; the crop has {features.shape[2]} features")
        z = ((features.reshape(-1, n) - self._centre) * self._inverse_scale).T  # (n, pixels): rows are contiguous
        rows, cols = np.triu_indices(n)
        terms = np.empty((len(rows) + n + 1, z.shape[1]), np.float32)  # one matrix product scores every Gaussian
        for index, (a, b) in enumerate(zip(rows, cols, strict=True)):
            np.multiply(z[a], z[b], out=terms[index])
        terms[len(rows) : len(rows) + n] = z
        terms[-1] = 1.0
        cost = (self._quadratic_form @ terms).min(axis=0) - np.float32(self._least)
        return np.maximum(cost, 0.0).reshape(features.shape[:2])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "texture",
            "weights": [float(v) for v in self.weights],
            "means": self.means.tolist(),
            "precisions": self.precisions.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextureModel:
        if "means" not in data:  # one Gaussian, as calibration.json held it before mixtures
            return cls(np.ones(1), np.asarray(data["mean"], np.float64)[None], np.asarray(data["precision"], np.float64)[None])
        return cls(np.asarray(data["weights"], np.float64), np.asarray(data["means"], np.float64), np.asarray(data["precisions"], np.float64))
