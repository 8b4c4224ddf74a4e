"""Turning a loose part to one orientation by its appearance (no TensorFlow).

A part that lies at any angle (on a belt, in a tray) must be turned to one orientation before the
CAE and the good references see it, or they learn every angle at once and blur the one detail
that tells a good part from a bad one. The mask's principal axis cannot do it for a round part
(a washer, a nut, a cap: no axis) and turns a part whose ends look alike (a capsule) end over end
at random, its print with it. So the part is turned by what it looks like: its gray image around
its centroid is unrolled into polar coordinates (one row per degree, one column per radius), and
the angle is the circular shift that best matches a template of the good parts (cross-correlation
along the angle by FFT, the peak refined to a fraction of a degree).

What is compared is the unrolled image band-passed along the angle (``FINE_DEGREES`` to
``SMOOTH_DEGREES``), minus the good parts' mean where they lay: the rings every angle shares (a
washer's grooves, its chamfers) carry no angle, a light from one side shades every part alike
whatever its angle, and teeth a few degrees apart match at every tooth; what remains is the marks,
prints and the outline of a long part. Each radius is weighted by its arc length.

``scae train`` fits the template from the good training images and turns parts this way only when the
turn is well defined and needed (``choose_turn``); the template travels in ``preprocessing.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from scae_tf.part_kind import FIXTURED_ANGLE, circular_spread

ANGLE_BINS = 360  # rows of the polar image: one per degree
RADIUS_BINS = 48  # columns: radii from the centre to the part's reach
SMOOTH_DEGREES = 20.0  # the blur along the angle that is removed (shading by a fixed light, rings)
FINE_DEGREES = 2.0  # the blur along the angle that is kept: finer periodic detail (knurl teeth, 6 degrees apart) matches at every period
TEMPLATE_ROUNDS = 3  # align to the template, average, repeat
CONSISTENT_DEGREES = 5.0  # two templates from either half of the good parts must agree on each part's turn this well (std)
MIN_HALF = 4  # good parts per half, at least, to fit the two templates


def _channel_mean(image: np.ndarray) -> np.ndarray:
    """Gray for the match: a colour part's channels averaged (a print in any hue counts)."""
    image = np.asarray(image, np.float32)
    return image.mean(axis=2) if image.ndim == 3 else image


def signature(work: np.ndarray, centre: tuple[float, float], reach: float) -> np.ndarray:
    """(ANGLE_BINS, RADIUS_BINS) float32: the part unrolled around ``centre`` out to ``reach`` px, band-passed
    along the angle (blurred over ``FINE_DEGREES``, minus its blur over ``SMOOTH_DEGREES``), weighted by
    the square root of the radius (arc length in the product). Not normalised: see ``TurnModel.prepare``."""
    polar = cv2.warpPolar(
        _channel_mean(work), (RADIUS_BINS, ANGLE_BINS), (float(centre[0]), float(centre[1])), float(reach),
        cv2.INTER_LINEAR | cv2.WARP_POLAR_LINEAR | cv2.WARP_FILL_OUTLIERS,
    )
    detail = _blur_along_angle(polar, FINE_DEGREES) - _blur_along_angle(polar, SMOOTH_DEGREES)
    return (detail * np.sqrt((np.arange(RADIUS_BINS, dtype=np.float32) + 0.5) / RADIUS_BINS)[None, :]).astype(np.float32)


def _blur_along_angle(polar: np.ndarray, degrees: float) -> np.ndarray:
    """Gaussian blur of the rows (angles), wrapping round."""
    pad = ANGLE_BINS // 2
    wrapped = np.concatenate([polar[-pad:], polar, polar[:pad]], axis=0)
    sigma = degrees * ANGLE_BINS / 360.0
    return cv2.GaussianBlur(wrapped, (1, 0), sigmaX=0.1, sigmaY=sigma)[pad : pad + ANGLE_BINS]


def _unit(array: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(array))
    return (array / norm if norm > 0 else array).astype(np.float32)


def correlation(sig: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(ANGLE_BINS,) correlation of ``sig`` with ``template`` turned by each whole degree: entry k is
    high when ``sig`` shows the template's features k degrees further round."""
    spectrum = np.fft.rfft(sig, axis=0) * np.conj(np.fft.rfft(template, axis=0))
    return np.fft.irfft(spectrum.sum(axis=1), n=ANGLE_BINS, axis=0)


def best_turn(sig: np.ndarray, template: np.ndarray) -> tuple[float, float]:
    """(degrees, correlation): how far round ``sig`` shows the template, refined between whole degrees
    by the parabola through the peak and its neighbours."""
    values = correlation(sig, template)
    peak = int(np.argmax(values))
    left, centre, right = values[(peak - 1) % ANGLE_BINS], values[peak], values[(peak + 1) % ANGLE_BINS]
    curvature = left - 2.0 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float((peak + offset) * 360.0 / ANGLE_BINS), float(centre)


def turned(sig: np.ndarray, degrees: float) -> np.ndarray:
    """``sig`` turned back by ``degrees`` (a fraction of a degree too, by a phase shift): its features
    ``degrees`` earlier round."""
    k = np.fft.rfftfreq(ANGLE_BINS)[:, None]
    spectrum = np.fft.rfft(sig, axis=0) * np.exp(2j * math.pi * k * degrees * ANGLE_BINS / 360.0)
    return np.fft.irfft(spectrum, n=ANGLE_BINS, axis=0).astype(np.float32)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def reach_of(masks: list[np.ndarray]) -> float:
    """The radius the signature covers: the 98th percentile of the parts' farthest pixel from their centroid, plus 5 %."""
    reaches = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        reaches.append(float(np.sqrt(((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2).max())))
    return 1.05 * float(np.percentile(reaches, 98))


@dataclass(frozen=True)
class TurnModel:
    """What turns a part to the crop's orientation: the template of the good parts and what stays put."""

    template: np.ndarray  # (ANGLE_BINS, RADIUS_BINS), unit norm, in the crop's orientation
    fixed: np.ndarray  # (ANGLE_BINS, RADIUS_BINS): the good parts' mean signature where they lay (what the light, not the part, puts there)
    reach: float  # px of the work image

    def prepare(self, sig: np.ndarray) -> np.ndarray:
        return _unit(sig - self.fixed)

    def angle(self, work: np.ndarray, mask: np.ndarray) -> float:
        """The pose angle (degrees) that brings the part in ``work`` to the template's orientation."""
        return best_turn(self.prepare(signature(work, centroid(mask), self.reach)), self.template)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"template": np.round(self.template, 6).tolist(), "fixed": np.round(self.fixed, 6).tolist(), "reach": self.reach}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnModel:
        template, fixed = np.asarray(data["template"], np.float32), np.asarray(data["fixed"], np.float32)
        if template.shape != (ANGLE_BINS, RADIUS_BINS) or fixed.shape != template.shape:
            raise ValueError(f"turn template must be {ANGLE_BINS}x{RADIUS_BINS}, got {template.shape} and {fixed.shape}")
        return cls(template, fixed, float(data["reach"]))


def fit_turn(works: list[np.ndarray], masks: list[np.ndarray], axis_angles: list[float] | None = None) -> TurnModel:
    """Fit the template to good parts (``works`` with their ``masks``): each part turned to the
    template, averaged, ``TEMPLATE_ROUNDS`` times from the first part. ``axis_angles``: the parts'
    principal axis angles (degrees), to lay the template's long axis along the crop's x (a long part
    then fills a long crop); None: keep the first part's orientation."""
    reach = reach_of(masks)
    raw = [signature(w, centroid(m), reach) for w, m in zip(works, masks, strict=True)]
    fixed = np.mean(raw, axis=0).astype(np.float32)
    signatures = [_unit(r - fixed) for r in raw]
    template = signatures[0]
    for _ in range(TEMPLATE_ROUNDS):
        turns = [best_turn(s, template)[0] for s in signatures]
        template = _unit(np.mean([turned(s, t) for s, t in zip(signatures, turns, strict=True)], axis=0))
    if axis_angles is not None:
        turns = [best_turn(s, template)[0] for s in signatures]
        doubled = np.radians(2.0 * (np.asarray(axis_angles, np.float64) - np.asarray(turns)))
        axis = math.degrees(math.atan2(np.mean(np.sin(doubled)), np.mean(np.cos(doubled)))) / 2.0
        template = turned(template, axis)  # the template's axis now lies at 0 degrees
    return TurnModel(template, fixed, reach)


@dataclass(frozen=True)
class TurnChoice:
    """Whether the good parts are turned by appearance, and the figures the choice was made from."""

    model: TurnModel | None  # None: keep the mask's alignment
    consistency: float  # degrees: spread of the turns two templates (fitted on either half) give each part
    spread: float  # degrees: spread of the parts' turns
    reason: str


def choose_turn(works: list[np.ndarray], masks: list[np.ndarray], axis_angles: list[float] | None = None, force: bool = False) -> TurnChoice:
    """Turn parts by appearance when it is well defined and needed: templates fitted on either half of the
    good parts must agree on every part's turn within ``CONSISTENT_DEGREES`` (a round part with no mark, or a
    long one whose two ends look alike all over, has no such turn: its templates lock on each part's own
    mottling and disagree; a hex nut, alike every 60 degrees, too), and the parts must turn by more than
    ``FIXTURED_ANGLE`` degrees. ``force`` (``preprocess.turn_by_appearance: true``): turned whatever the figures say."""
    if len(works) < 2 * MIN_HALF:
        return TurnChoice(None, float("nan"), float("nan"), f"too few parts ({len(works)}) to fit a turn template")
    halves = [fit_turn(works[i::2], masks[i::2], None if axis_angles is None else axis_angles[i::2]) for i in (0, 1)]
    turns = [np.array([h.angle(w, m) for w, m in zip(works, masks, strict=True)]) for h in halves]
    consistency, spread = circular_spread(turns[0] - turns[1]), circular_spread(turns[0])
    figures = f"two half templates agree on each part's turn within {consistency:.1f} deg (std), the parts turn by {spread:.1f} deg"
    if force:
        return TurnChoice(fit_turn(works, masks, axis_angles), consistency, spread, f"turned by appearance, as preprocess.turn_by_appearance says ({figures})")
    if consistency >= CONSISTENT_DEGREES:
        return TurnChoice(None, consistency, spread, f"no turn by appearance: it is not well defined ({figures})")
    if spread < FIXTURED_ANGLE:
        return TurnChoice(None, consistency, spread, f"no turn by appearance: the parts do not turn ({figures})")
    model = fit_turn(works, masks, axis_angles)
    return TurnChoice(model, consistency, spread, f"turned by appearance ({figures})")
