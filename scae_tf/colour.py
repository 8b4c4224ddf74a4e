"""A colour part's squared error with its colour differences weighted as much as its brightness ones (no TensorFlow).

The plain mean of the R, G and B squared errors is mostly brightness: on a good colour part the CAE misses
a highlight or the grain's shading (the same in all three channels) several times more than the hue, so a
stain that changes the hue but hardly the brightness adds little to it and drowns in the brightness noise.
``ColourBalance`` splits a colour difference into one brightness and two opponent colour components
(red-green, yellow-blue: an orthonormal basis, so with weights 1 the error is the plain channel mean) and
weights each by how small it is on good parts (at most ``MAX_WEIGHT``): each component then adds about as much
to a good part's error, and a colour change stands out as much as a brightness change of the same rarity. The weights are fitted on the
calibration parts' reconstruction errors (``fit_colour_balance``) and travel in calibration.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Rows: brightness (R+G+B)/sqrt(3), red-green (R-G)/sqrt(2), yellow-blue (R+G-2B)/sqrt(6).
OPPONENT = np.float32(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
        [1 / np.sqrt(6), 1 / np.sqrt(6), -2 / np.sqrt(6)],
    ]
)
# A colour component more than this many times quieter than the brightness on good parts is mostly sensor noise
# (a near-gray part photographed in colour): weighting it further amplifies that noise. Synthetic colour fabric
# 0.973, 30 -> 32 of 40 caught at 8 instead of 100; the colour washer and capsule (weights 3-6) are below it.
MAX_WEIGHT = 8.0
_TINY = 1e-12


@dataclass(frozen=True)
class ColourBalance:
    """Weights of the brightness and the two opponent colour components of a colour squared error
    (brightness 1: the error stays in the units of the plain channel mean for a part whose colour varies as
    much as its brightness)."""

    red_green: float
    yellow_blue: float

    def __post_init__(self) -> None:
        for name in ("red_green", "yellow_blue"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 1.0 / MAX_WEIGHT <= value <= MAX_WEIGHT):
                raise ValueError(f"colour weight {name} must be in [{1.0 / MAX_WEIGHT}, {MAX_WEIGHT}], got {value!r}")

    def squared_error(self, difference: np.ndarray) -> np.ndarray:
        """(..., 3) colour differences -> (...) float32: the weighted mean of their squared opponent components
        (written out per channel: a matrix product over a last axis of 3 is slow on large stacks)."""
        red, green, blue = (np.asarray(difference[..., c], np.float32) for c in range(3))
        brightness = red + green + blue
        red_green = red - green
        yellow_blue = red + green - 2.0 * blue
        out = brightness * brightness * np.float32(1 / 9)
        out += red_green * red_green * np.float32(self.red_green / 6)
        out += yellow_blue * yellow_blue * np.float32(self.yellow_blue / 18)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"red_green": self.red_green, "yellow_blue": self.yellow_blue}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColourBalance:
        return cls(float(data["red_green"]), float(data["yellow_blue"]))


def fit_colour_balance(samples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> ColourBalance | None:
    """Weights from good parts' (crop, reconstruction, mask): the mean squared brightness error over the parts'
    pixels divided by each colour component's (within 1 / ``MAX_WEIGHT`` .. ``MAX_WEIGHT``); None without a
    colour part (gray crops, or no part pixel at all)."""
    power = np.zeros(3, np.float64)
    for crop, reconstruction, mask in samples:
        inside = np.asarray(mask) > 0.5
        if np.ndim(crop) != 3 or np.shape(crop)[2] != 3 or not inside.any():
            continue
        components = opponent(np.asarray(crop, np.float32)[inside] - np.asarray(reconstruction, np.float32)[inside])
        power += np.mean(components.astype(np.float64) ** 2, axis=0)
    if power[0] <= _TINY:
        return None
    weights = np.clip(power[0] / np.maximum(power[1:], _TINY), 1.0 / MAX_WEIGHT, MAX_WEIGHT)
    return ColourBalance(float(weights[0]), float(weights[1]))


def opponent(colours: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (..., 3) float32 brightness, red-green, yellow-blue (``OPPONENT``)."""
    return np.asarray(colours, np.float32) @ OPPONENT.T
