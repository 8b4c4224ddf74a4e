"""Synthetic screw: an elongated dark part with a head and threads on a light background.

Each image is drawn analytically in the screw's own coordinates (``u`` along the axis from the
head, ``v`` across), supersampled and downscaled for anti-aliasing, and composited on a textured,
unevenly lit background with a soft shadow and sensor noise.

A defect is an additive intensity field on the object. The same part is rendered with and
without it (same noise), so the defect mask is exactly the set of pixels of the saved image that
changed by more than :data:`MASK_THRESHOLD`.

Defect strength: real MVTec screw defects (dev split) cover ~0.3 % of the image (~3 % of the
part) and stand out of the part's texture by a visibility (``defect_visibility``: inpainting the
defect vs the same shape elsewhere on the part) of 1.4-2.9 per type, median ~2.2. Version 2 drew
each defect's amplitude directly (~0.25 of the part's intensity): visibility 0.9-1.6, fainter than
every real type, and the demo's detector caught 6 of 32. Version 3 keeps version 2's shapes and
good images and scales each defect, like the painters of the other kinds, to a signal/clutter
drawn from :data:`TARGET_SIGNAL_TO_CLUTTER`, never beyond :data:`MAX_DEFECT_CONTRAST` of the local
intensity (the flattened thread stops at that cap, below the target, like the real thread_side).
The screw's defects are drawn in its own (u, v) coordinates (the thread defect needs the thread's
shading), not with the generic painters of :mod:`scae_tf.synthetic.defects`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from scae_tf.synthetic.common import (
    GOOD,
    MASK_THRESHOLD,
    MAX_DEFECT_CONTRAST,
    TARGET_SIGNAL_TO_CLUTTER,
    SyntheticSample,
    change_mask,
    finish,
    quantise,
    signal_to_clutter,
)
from scae_tf.synthetic.common import smooth_noise as _smooth_noise

DEFECT_TYPES = ("scratch", "pit", "thread", "contamination")
SUPERSAMPLE = 2
_STRENGTH_STEPS = 4  # gain refinements towards the drawn signal/clutter (the mask grows with the gain)
_MAX_GAIN = 4.0  # beyond this the contrast cap holds every pixel: more gain changes nothing


@dataclass(frozen=True)
class _Screw:
    """Geometry (final-image pixels) and appearance of one screw."""

    length: float
    head_radius: float
    cap_depth: float  # half-depth of the visible head face ellipse along the axis
    cone_length: float
    shank_radius: float
    thread_start: float
    tip_length: float
    core_radius: float
    crest_radius: float
    pitch: float
    helix_slope: float
    thread_phase: float
    recess_angle: float
    recess_torx: bool
    albedo: float
    cap_level: float
    centre: tuple[float, float]
    angle: float
    light: tuple[float, float]  # light direction in the image plane (unit)

    @property
    def body_start(self) -> float:
        return self.cap_depth + self.cone_length

    @property
    def tip_start(self) -> float:
        return self.length - self.tip_length



def _sample_screw(rng: np.random.Generator, size: int) -> _Screw:
    length = rng.uniform(0.78, 0.85) * size
    head_radius = rng.uniform(0.105, 0.12) * size
    shank_radius = head_radius * rng.uniform(0.46, 0.52)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    cos_a, sin_a = abs(math.cos(angle)), abs(math.sin(angle))
    half_x = length / 2 * cos_a + head_radius * sin_a
    half_y = length / 2 * sin_a + head_radius * cos_a
    margin = 0.03 * size
    cx = rng.uniform(half_x + margin, size - half_x - margin) if size - 2 * (half_x + margin) > 0 else size / 2
    cy = rng.uniform(half_y + margin, size - half_y - margin) if size - 2 * (half_y + margin) > 0 else size / 2
    light_angle = rng.uniform(-2.6, -2.0)  # from the upper left, like the reference photos
    return _Screw(
        length=length,
        head_radius=head_radius,
        cap_depth=head_radius * rng.uniform(0.32, 0.42),
        cone_length=head_radius * rng.uniform(0.9, 1.1),
        shank_radius=shank_radius,
        thread_start=length * rng.uniform(0.4, 0.48),
        tip_length=length * rng.uniform(0.07, 0.09),
        core_radius=shank_radius * rng.uniform(0.78, 0.84),
        crest_radius=shank_radius * rng.uniform(1.3, 1.4),
        pitch=length * rng.uniform(0.07, 0.08),
        helix_slope=rng.uniform(0.25, 0.35),
        thread_phase=rng.uniform(0.0, 1.0),
        recess_angle=rng.uniform(0.0, math.pi),
        recess_torx=bool(rng.random() < 0.5),
        albedo=rng.uniform(0.44, 0.54),
        cap_level=rng.uniform(0.45, 0.55),
        centre=(cx, cy),
        angle=angle,
        light=(math.cos(light_angle), math.sin(light_angle)),
    )


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Light paper-like surface with uneven illumination, texture and a few faint specks."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.06, 0.06, size=2)
    hx, hy = rng.uniform(-0.3, 0.3, size=2)
    hot = np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * rng.uniform(0.25, 0.45) ** 2))
    bg = rng.uniform(0.76, 0.84) + gx * xx + gy * yy + rng.uniform(0.03, 0.07) * hot
    bg += rng.uniform(0.005, 0.01) * _smooth_noise(rng, (size, size), 6)
    bg += rng.uniform(0.004, 0.008) * _smooth_noise(rng, (size, size), max(8, size // 6))
    for _ in range(int(rng.integers(2, 8))):
        sx, sy = rng.uniform(0, size, size=2)
        radius = rng.uniform(0.5, 1.5) * size / 256
        bg -= rng.uniform(0.03, 0.08) * np.exp(-((xx + 0.5 - sx / size) ** 2 + (yy + 0.5 - sy / size) ** 2) * size**2 / (2 * radius**2))
    return bg.astype(np.float32)


def _screw_box(screw: _Screw, size: int) -> tuple[int, int, int, int]:
    """Final-pixel bounding box (x0, y0, x1, y1) of the screw, clipped to the frame."""
    cos_a, sin_a = math.cos(screw.angle), math.sin(screw.angle)
    half_x = screw.length / 2 * abs(cos_a) + screw.head_radius * abs(sin_a) + 3
    half_y = screw.length / 2 * abs(sin_a) + screw.head_radius * abs(cos_a) + 3
    cx, cy = screw.centre
    return (max(0, int(cx - half_x)), max(0, int(cy - half_y)), min(size, int(math.ceil(cx + half_x)) + 1), min(size, int(math.ceil(cy + half_y)) + 1))


def _screw_coords(screw: _Screw, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in final pixels for every supersampled pixel centre of ``box``."""
    x0, y0, x1, y1 = box
    s = SUPERSAMPLE
    xs = (np.arange(x0 * s, x1 * s, dtype=np.float32) + 0.5) / s - 0.5 - screw.centre[0]
    ys = (np.arange(y0 * s, y1 * s, dtype=np.float32) + 0.5) / s - 0.5 - screw.centre[1]
    cos_a, sin_a = math.cos(screw.angle), math.sin(screw.angle)
    u = xs[None, :] * cos_a + ys[:, None] * sin_a + screw.length / 2
    v = -xs[None, :] * sin_a + ys[:, None] * cos_a
    return u.astype(np.float32), v.astype(np.float32)


def _thread_phase(screw: _Screw, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u - screw.thread_start + screw.helix_slope * v) / screw.pitch + screw.thread_phase


@dataclass
class _Fields:
    sdf: np.ndarray  # signed distance to the silhouette (final px, > 0 inside)
    intensity: np.ndarray  # object intensity
    thread_term: np.ndarray  # the thread's share of the intensity (for thread damage)
    thread_zone: np.ndarray  # 1 where the thread is fully formed (not neck, not tip)


def _screw_fields(screw: _Screw, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> _Fields:
    """Silhouette and shading of the screw on the (u, v) grid."""
    s = screw
    abs_v = np.abs(v)
    lu = s.light[0] * math.cos(s.angle) + s.light[1] * math.sin(s.angle)  # light along the axis
    lv = -s.light[0] * math.sin(s.angle) + s.light[1] * math.cos(s.angle)  # light across the axis

    # Head face: an ellipse (the countersunk top seen from the side), exact-ish signed distance.
    du = u - s.cap_depth
    q = (du / s.cap_depth) ** 2 + (v / s.head_radius) ** 2
    grad = 2 * np.sqrt((du / s.cap_depth**2) ** 2 + (v / s.head_radius**2) ** 2) + 1e-6
    cap_sdf = (1 - q) / grad

    # Body radius along the axis: cone, smooth shank, threads, pointed tip.
    t_cone = np.clip((u - s.cap_depth) / s.cone_length, 0, 1)
    cone_r = s.head_radius + (s.shank_radius - s.head_radius) * t_cone
    phase = _thread_phase(s, u, v)
    tri = 1 - np.abs(2 * (phase - np.floor(phase)) - 1)  # 1 on a crest, 0 between crests
    crest = tri**5  # thin fins, wide gaps between them
    ramp_in = np.clip((u - s.thread_start) / s.pitch, 0, 1)
    taper = np.clip((s.length - u) / s.tip_length, 0, 1)
    thread_r = (s.core_radius + (s.crest_radius - s.core_radius) * crest * ramp_in) * taper**0.8
    neck_to_core = s.shank_radius + (s.core_radius - s.shank_radius) * ramp_in
    thread_r = np.where(u < s.thread_start, s.shank_radius, np.maximum(thread_r, neck_to_core * taper**0.8))
    radius = np.where(u < s.body_start, cone_r, thread_r)
    body_sdf = np.minimum(np.minimum(radius - abs_v, u - s.cap_depth), s.length - u)
    sdf = np.maximum(cap_sdf, body_sdf)

    # Cylinder shading across the body: Lambert with the in-plane light, plus a specular streak.
    shade_r = np.where(u < s.body_start, cone_r, np.where(u < s.thread_start, s.shank_radius, s.core_radius * np.maximum(taper, 0.05)))
    n = np.clip(v / shade_r, -1, 1)
    nz = np.sqrt(1 - n**2)
    lambert = 0.6 * nz + 0.4 * n * lv
    spec = np.exp(-(((n - 0.5 * lv) / 0.16) ** 2))
    grain = 0.02 * _smooth_noise(rng, u.shape, max(8, u.shape[1] // 12))
    body = s.albedo * (0.35 + 0.75 * lambert) + 0.22 * spec + grain * s.albedo
    cone_dark = np.where(u < s.body_start, 0.85 + 0.15 * t_cone, 1.0)
    body = body * cone_dark

    # Threads: bright flank facing the light, dark flank behind, fading on the edges.
    zone = ramp_in * np.clip((s.length - u) / (0.5 * s.tip_length), 0, 1)
    frac = phase - np.floor(phase)
    facing = 1.0 if lu >= 0 else -1.0
    flank = np.sin(2 * math.pi * phase + 0.6 * facing)
    crest_line = np.exp(-(((frac - 0.5) / 0.06) ** 2))  # lit edge of the fin
    shadow_line = np.exp(-(((frac - 0.5 - 0.13 * facing) / 0.07) ** 2))  # the fin's shadow on the core
    thread_term = zone * (0.04 * flank + 0.16 * crest_line - 0.18 * shadow_line) * (0.5 + 0.5 * nz)
    thread_term = np.where(u < s.body_start, 0, thread_term).astype(np.float32)
    body = body + thread_term

    # Head face: lighter disc with a dark cross or torx recess and a bright rim.
    p_u, p_v = du / s.cap_depth, v / s.head_radius  # unit-disc coordinates of the face
    ca, sa = math.cos(s.recess_angle), math.sin(s.recess_angle)
    ru, rv = p_u * ca - p_v * sa, p_u * sa + p_v * ca
    if s.recess_torx:
        rho, theta = np.sqrt(ru**2 + rv**2), np.arctan2(rv, ru)
        recess = np.clip((0.36 + 0.06 * np.cos(6 * theta) - rho) / 0.05, 0, 1)
    else:
        arm = np.minimum(np.maximum(np.abs(ru) / 0.1, np.abs(rv) / 0.45), np.maximum(np.abs(rv) / 0.1, np.abs(ru) / 0.45))
        recess = np.clip((1 - arm) / 0.25, 0, 1)
    rim = np.exp(-((q - 0.85) / 0.12) ** 2)
    face = s.cap_level * (1 - 0.55 * recess) + 0.12 * rim + 0.06 * p_v * lv + grain * 0.5
    intensity = np.where(cap_sdf > body_sdf - 0.5, face, body)
    zone_full = np.where(u < s.thread_start + s.pitch, 0.0, np.clip((s.tip_start - u) / s.pitch, 0, 1))
    return _Fields(sdf.astype(np.float32), intensity.astype(np.float32), thread_term, zone_full.astype(np.float32))


def _place_on_body(rng: np.random.Generator, screw: _Screw, u_lo: float, u_hi: float, v_frac: float) -> tuple[float, float]:
    u = rng.uniform(u_lo, u_hi)
    radius = screw.shank_radius if u < screw.thread_start else screw.core_radius
    return u, rng.uniform(-v_frac, v_frac) * radius


def _defect_field(kind: str, rng: np.random.Generator, screw: _Screw, u: np.ndarray, v: np.ndarray, fields: _Fields, size: int) -> np.ndarray:
    """Additive intensity change of one subtle defect, in final-image intensity units."""
    k = size / 256.0
    obj = fields.intensity
    if kind == "scratch":
        uc, vc = _place_on_body(rng, screw, screw.body_start * 0.6, screw.tip_start - 0.03 * size, 0.55)
        length = rng.uniform(0.10, 0.17) * size
        direction = rng.uniform(0, math.pi)
        bend = rng.uniform(-0.15, 0.15) * length
        t = np.linspace(-0.5, 0.5, max(16, int(length))).astype(np.float32)
        pu = uc + t * length * math.cos(direction) + (1 - 4 * t**2) * bend * -math.sin(direction)
        pv = vc + t * length * math.sin(direction) + (1 - 4 * t**2) * bend * math.cos(direction)
        dist = _distance_to_points(u, v, pu, pv, reach=5 * k + 3)
        width = rng.uniform(0.8, 1.1) * max(k, 1.0)  # stays visible below 256 px
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return sign * rng.uniform(0.22, 0.32) * obj * np.exp(-0.5 * (dist / width) ** 2)
    if kind == "pit":
        uc, vc = _place_on_body(rng, screw, screw.body_start * 0.8, screw.tip_start - 0.03 * size, 0.5)
        radius = rng.uniform(0.016, 0.024) * size
        dist = np.sqrt((u - uc) ** 2 + (v - vc) ** 2)
        depth = rng.uniform(0.22, 0.32)
        dent = -depth * np.exp(-((dist / radius) ** 2) * 1.5)
        rim = 0.6 * depth * np.exp(-(((dist - 1.15 * radius) / (0.35 * radius)) ** 2))
        return obj * (dent + rim)
    if kind == "thread":
        uc, vc = _place_on_body(rng, screw, screw.thread_start + 1.5 * screw.pitch, screw.tip_start - screw.pitch, 0.45)
        window = np.exp(-(((u - uc) / (rng.uniform(0.6, 0.8) * screw.pitch)) ** 4) - ((v - vc) / (rng.uniform(0.6, 0.9) * screw.core_radius)) ** 4)
        window = window * fields.thread_zone
        flatten = rng.uniform(0.8, 1.0)
        phase = _thread_phase(screw, u, v)
        crest = (1 - np.abs(2 * (phase - np.floor(phase)) - 1)) ** 2
        return window * (-flatten * fields.thread_term - rng.uniform(0.12, 0.2) * obj * crest)
    if kind == "contamination":
        uc, vc = _place_on_body(rng, screw, screw.body_start * 0.7, screw.tip_start - 0.03 * size, 0.5)
        blob = np.zeros_like(u)
        base = rng.uniform(0.012, 0.018) * size
        for _ in range(int(rng.integers(3, 7))):
            ou, ov = rng.normal(0, base * 0.8, size=2)
            r = base * rng.uniform(0.5, 1.0)
            blob += np.exp(-((u - uc - ou) ** 2 + (v - vc - ov) ** 2) / (r * r))
        shape = np.clip((blob - 0.35) / 0.25, 0, 1)
        shape = shape * shape * (3 - 2 * shape)
        sign = -1.0 if rng.random() < 0.75 else 1.0
        return sign * rng.uniform(0.26, 0.34) * obj * shape
    raise ValueError(f"unknown defect type {kind!r}; known: {', '.join(DEFECT_TYPES)}")


def _distance_to_points(u: np.ndarray, v: np.ndarray, pu: np.ndarray, pv: np.ndarray, reach: float) -> np.ndarray:
    """Distance from each pixel to a densely sampled curve, computed only near the curve."""
    dist = np.full(u.shape, np.inf, dtype=np.float32)
    near = (u > pu.min() - reach) & (u < pu.max() + reach) & (v > pv.min() - reach) & (v < pv.max() + reach)
    if near.any():
        du = u[near][:, None] - pu[None, :]
        dv = v[near][:, None] - pv[None, :]
        dist[near] = np.sqrt((du * du + dv * dv).min(axis=1))
    return dist


def _downscale(field: np.ndarray) -> np.ndarray:
    h, w = field.shape
    return cv2.resize(field, (w // SUPERSAMPLE, h // SUPERSAMPLE), interpolation=cv2.INTER_AREA)


def render_screw(rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, color: bool = False) -> SyntheticSample:
    """Render one screw (``defect_type`` "good" or one of :data:`DEFECT_TYPES`) from ``rng``.

    The screw is plain steel: gray only (``color`` must be False)."""
    if color:
        raise ValueError("the synthetic screw is gray only; colour exists for the round part and the surface")
    if defect_type != GOOD and defect_type not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect_type!r}; known: good, {', '.join(DEFECT_TYPES)}")
    screw = _sample_screw(rng, size)
    background = _background(rng, size)
    box = _screw_box(screw, size)
    u, v = _screw_coords(screw, box)
    fields = _screw_fields(screw, u, v, rng)
    alpha_ss = np.clip(0.5 + fields.sdf * SUPERSAMPLE, 0, 1)
    interior = np.clip(fields.sdf - 1.5, 0, 1)  # defects stay >= 1.5 px inside the silhouette
    limit = MAX_DEFECT_CONTRAST * fields.intensity  # subtle by construction
    field_ss = np.zeros_like(u)
    defect_rng = np.random.default_rng(rng.integers(0, 2**63))  # good/defective share everything else
    if defect_type != GOOD:
        for _ in range(20):  # resample the rare defect that lands where it changes nothing visible
            field_ss = _defect_field(defect_type, defect_rng, screw, u, v, fields, size)
            if np.abs(np.clip(field_ss, -limit, limit) * interior).max() > 3 * MASK_THRESHOLD:
                break

    x0, y0, x1, y1 = box
    alpha = np.zeros((size, size), np.float32)
    alpha[y0:y1, x0:x1] = _downscale(alpha_ss)
    clean_obj = np.zeros((size, size), np.float32)
    clean_obj[y0:y1, x0:x1] = _downscale(alpha_ss * fields.intensity)

    shift = np.float32([[1, 0, 0.012 * size * -screw.light[0]], [0, 1, 0.012 * size * -screw.light[1]]])
    shadow = cv2.warpAffine(alpha, shift, (size, size), borderValue=0)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.015 * size)
    background = background * (1 - rng.uniform(0.18, 0.3) * shadow)
    noise = rng.normal(0, rng.uniform(0.004, 0.009), size=(size, size)).astype(np.float32)
    clean = background * (1 - alpha) + clean_obj + noise
    clean_q = quantise(clean)

    def rendered(gain: float) -> np.ndarray:
        delta = np.zeros((size, size), np.float32)
        delta[y0:y1, x0:x1] = _downscale(alpha_ss * np.clip(gain * field_ss, -limit, limit) * interior)
        return quantise(clean + delta)

    image_q = clean_q
    if defect_type != GOOD:
        target, gain = float(defect_rng.uniform(*TARGET_SIGNAL_TO_CLUTTER)), 1.0
        for _ in range(_STRENGTH_STEPS):
            image_q = rendered(gain)
            mask = change_mask(image_q, clean_q)
            if mask.sum() < 4:
                break
            factor = target / max(signal_to_clutter(image_q, clean_q, mask), 1e-6)
            new_gain = min(gain * factor, _MAX_GAIN)
            if abs(new_gain / gain - 1) < 0.03:
                break
            gain = new_gain
    return finish(clean_q, image_q, alpha >= 0.5, defect_type)  # the mask: what the saved image shows

