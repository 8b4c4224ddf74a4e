"""Illumination normalisation: the anomaly score must not follow global brightness.

On real screws global brightness alone separates good from defective test images, so a score
that follows brightness looks good and means nothing. Each canonical crop is mapped by one affine
intensity change so that the robust level (interquartile mean) and spread (about the inter-quartile range) of its OBJECT
pixels match those of the good training crops. A global gain/offset change of the input then
cancels exactly (up to clipping and quantisation); the background follows the same map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scae_tf.errors import ScaeError

MIN_OBJECT_PIXELS = 64  # fewer object pixels than this: use the whole crop's statistics instead
MIN_SPREAD = 1e-3  # below this the crop is flat; do not amplify noise


@dataclass(frozen=True)
class IlluminationReference:
    """Robust statistics of the object pixels of the good training crops (medians over crops)."""

    object_level: float
    object_spread: float  # spread of object pixels (see object_statistics)
    background_median: float  # kept for reports and sanity checks; not used by the mapping

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "illumination") -> IlluminationReference:
        try:
            ref = cls(**{k: float(data[k]) for k in ("object_level", "object_spread", "background_median")})
        except (KeyError, TypeError, ValueError) as err:
            raise ScaeError(f"{where}: malformed illumination reference ({err}); re-run `scae train`") from None
        if not ref.object_spread > 0:
            raise ScaeError(f"{where}: illumination object_spread must be > 0; re-run `scae train`")
        return ref


def object_statistics(crop: np.ndarray, crop_mask: np.ndarray) -> tuple[float, float]:
    """(level, spread) of the object pixels (all pixels when the mask is tiny).

    Rank-based trimmed means rather than plain percentiles: the level is the mean of the middle
    half of the sorted values, the spread the difference between the means of the 75-90 % and
    the 10-25 % bands (about the inter-quartile range). Like percentiles they ignore highlights,
    mask-edge background and defects; unlike percentiles they average hundreds of pixels, so
    8-bit quantisation does not move them by whole grey levels when the brightness changes.
    """
    values = crop[crop_mask] if int(np.count_nonzero(crop_mask)) >= MIN_OBJECT_PIXELS else crop.ravel()
    ordered = np.sort(values.astype(np.float32, copy=False), axis=None)
    n = ordered.size
    level = float(ordered[n // 4 : max(3 * n // 4, n // 4 + 1)].mean())
    low = float(ordered[n // 10 : max(n // 4, n // 10 + 1)].mean())
    high = float(ordered[3 * n // 4 : max(9 * n // 10, 3 * n // 4 + 1)].mean())
    return level, high - low


def fit_illumination_reference(crops: list[np.ndarray], crop_masks: list[np.ndarray]) -> IlluminationReference:
    """Reference statistics from good training crops (median over crops of each statistic)."""
    if not crops:
        raise ScaeError("no training crops to fit the illumination reference; add good training images")
    levels, spreads, backgrounds = [], [], []
    for crop, mask in zip(crops, crop_masks, strict=True):
        level, spread = object_statistics(crop, mask)
        levels.append(level)
        spreads.append(spread)
        background = crop[~mask]
        backgrounds.append(float(np.median(background)) if background.size else level)
    return IlluminationReference(
        object_level=float(np.median(levels)),
        object_spread=max(float(np.median(spreads)), MIN_SPREAD),
        background_median=float(np.median(backgrounds)),
    )


def normalize_illumination(crop: np.ndarray, crop_mask: np.ndarray, reference: IlluminationReference) -> np.ndarray:
    """Map the crop so its object level/spread equal the reference's; float32 clipped to [0, 1]."""
    level, spread = object_statistics(crop, crop_mask)
    gain = reference.object_spread / max(spread, MIN_SPREAD)
    out = (np.asarray(crop, dtype=np.float32) - np.float32(level)) * np.float32(gain) + np.float32(reference.object_level)
    return np.clip(out, 0.0, 1.0, out=out)
