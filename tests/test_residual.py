"""Residual maps: SSIM against a direct reference computation, squared error, the combination."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scae_tf.config import PostprocessConfig
from scae_tf.residual import residual_map, squared_error, ssim_map


def reference_ssim_at(x: np.ndarray, y: np.ndarray, row: int, col: int, sigma: float = 1.5) -> float:
    """SSIM at one pixel with explicit Gaussian weights (Wang et al. 2004), for comparison."""
    radius = int(round(3.5 * sigma))
    offsets = np.arange(-radius, radius + 1)
    g = np.exp(-(offsets**2) / (2 * sigma**2))
    w = np.outer(g, g)
    w /= w.sum()
    px = x[row - radius : row + radius + 1, col - radius : col + radius + 1].astype(np.float64)
    py = y[row - radius : row + radius + 1, col - radius : col + radius + 1].astype(np.float64)
    mx, my = (w * px).sum(), (w * py).sum()
    vx = (w * px * px).sum() - mx * mx
    vy = (w * py * py).sum() - my * my
    cov = (w * px * py).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


@pytest.fixture()
def pair():
    rng = np.random.default_rng(0)
    x = rng.random((40, 56)).astype(np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    return x, y


def test_ssim_map_matches_the_reference_formula(pair):
    x, y = pair
    ssim = ssim_map(x, y)
    for row, col in [(10, 10), (20, 30), (29, 45)]:
        assert ssim[row, col] == pytest.approx(reference_ssim_at(x, y, row, col), abs=1e-4)


def test_identical_images_have_ssim_one_and_zero_residual(pair):
    x, _ = pair
    np.testing.assert_allclose(ssim_map(x, x), 1.0, atol=1e-4)
    for kind in ("ssim", "l2", "ssim+l2"):
        assert np.abs(residual_map(x, x, PostprocessConfig(residual=kind))).max() < 1e-4


def test_l2_and_combination_without_smoothing(pair):
    x, y = pair
    raw = PostprocessConfig(residual="l2", residual_smooth_sigma=0.0)
    np.testing.assert_allclose(residual_map(x, y, raw), (x - y) ** 2, rtol=1e-6)
    np.testing.assert_allclose(squared_error(x, y), (x - y) ** 2, rtol=1e-6)
    dssim = (1 - ssim_map(x, y)) / 2
    only_ssim = residual_map(x, y, PostprocessConfig(residual="ssim", residual_smooth_sigma=0.0))
    np.testing.assert_allclose(only_ssim, dssim, atol=1e-6)
    mixed = residual_map(x, y, PostprocessConfig(residual="ssim+l2", ssim_weight=0.25, residual_smooth_sigma=0.0))
    np.testing.assert_allclose(mixed, 0.25 * dssim + 0.75 * (x - y) ** 2, atol=1e-6)


def test_smoothing_preserves_a_constant_map_and_spreads_a_spike():
    x = np.full((32, 32), 0.5, np.float32)
    y = x.copy()
    y[16, 16] = 1.0
    smooth = residual_map(x, y, PostprocessConfig(residual="l2", residual_smooth_sigma=1.0))
    assert smooth[16, 16] < 0.25 and smooth[16, 17] > 0
    assert smooth.sum() == pytest.approx(0.25, rel=1e-3)  # a Gaussian blur keeps the total
    assert smooth.dtype == np.float32


def test_a_local_defect_stands_out_in_every_residual_kind():
    rng = np.random.default_rng(3)
    x = (0.5 + 0.05 * rng.standard_normal((48, 48))).astype(np.float32)
    y = x.copy()
    y[20:26, 20:26] = 0.1  # the reconstruction lacks a dark spot the input has (or vice versa)
    for kind in ("ssim", "l2", "ssim+l2"):
        residual = residual_map(x, y, PostprocessConfig(residual=kind))
        inside = residual[21:25, 21:25].mean()
        outside = residual[:10, :10].mean()
        assert inside > 10 * max(outside, 1e-6), kind
        assert math.isfinite(float(residual.max()))


def test_bad_arguments_raise():
    x = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError):
        residual_map(x, np.zeros((8, 9), np.float32), PostprocessConfig())
    with pytest.raises(ValueError):
        residual_map(x, x, PostprocessConfig(residual="mae"))


def test_default_residual_is_the_smoothed_squared_error():
    rng = np.random.default_rng(4)
    x = rng.random((24, 40)).astype(np.float32)
    y = np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    config = PostprocessConfig()
    expected = residual_map(x, y, PostprocessConfig(residual="l2", residual_smooth_sigma=config.residual_smooth_sigma))
    np.testing.assert_array_equal(residual_map(x, y, config), expected)
    assert config.residual == "l2"


def test_brightness_weight_judges_a_dark_spot_in_the_shadow_like_one_under_the_highlight():
    """A black part under a highlight: a spot changing a shadowed place by 50 % and one changing the
    highlight by 50 %. In intensity units the highlight's spot is (0.8 / 0.08)^2 = 100x louder; with
    ``residual_brightness_power`` 2 (relative errors) both are about equally loud, and with it off (the
    config's default, -1, until scae train chooses) the residual is as it was."""
    from scae_tf.references import part_residual
    from scae_tf.residual import brightness_weight

    reconstruction = np.full((48, 96), 0.08, np.float32)
    reconstruction[:, 48:] = 0.8  # the highlight
    crop = reconstruction.copy()
    crop[20:26, 18:24] *= 0.5  # a dark spot in the shadow
    crop[20:26, 70:76] *= 0.5  # the same relative change under the highlight
    plain = PostprocessConfig(reference_neighbours=0)
    relative = PostprocessConfig(reference_neighbours=0, residual_brightness_power=2.0, residual_brightness_floor=0.0)
    assert brightness_weight(reconstruction, plain) is None
    assert np.array_equal(part_residual(crop, reconstruction, plain, None), residual_map(crop, reconstruction, plain))
    before = part_residual(crop, reconstruction, plain, None)
    after = part_residual(crop, reconstruction, relative, None)
    assert before[23, 73] > 50 * before[23, 21]
    assert 0.5 < after[23, 21] / after[23, 73] < 2.0
    floored = PostprocessConfig(reference_neighbours=0, residual_brightness_power=2.0, residual_brightness_floor=0.08)
    weight = brightness_weight(reconstruction, floored)
    assert weight[23, 10] == pytest.approx(1 / 0.16**2, rel=1e-3)  # the floor bounds the gain in black
    colour = brightness_weight(np.repeat(reconstruction[..., None], 3, axis=2), relative)
    assert np.allclose(colour, brightness_weight(reconstruction, relative))  # a colour crop's brightness: its channel mean


def test_scae_train_judges_a_dark_part_by_relative_errors_and_leaves_light_parts_and_a_set_value():
    """A black part (median brightness 0.07 on its mask, as the real tyre's) gets relative errors; a light part
    with a dark hole (a washer) and a surface do not; a value set in the config is kept."""
    import dataclasses

    from scae_tf.config import RunConfig
    from scae_tf.residual import DARK_PART_POWER, brightness_power_for, part_brightness
    from scae_tf.training.run import _with_brightness_power

    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    dark = np.full((32, 32, 3), 0.5, np.float32)  # a light background does not count: the part's own pixels do
    dark[mask] = 0.07
    light = np.full((32, 32), 0.1, np.float32)
    light[mask] = 0.6
    light[14:18, 14:18] = 0.05  # its hole, inside the mask
    assert part_brightness([dark, dark], [mask, mask]) == pytest.approx(0.07)
    assert brightness_power_for(part_brightness([dark], [mask])) == DARK_PART_POWER
    assert brightness_power_for(part_brightness([light], [mask])) == 0.0
    auto = RunConfig()
    assert auto.postprocess.residual_brightness_power < 0  # left to scae train
    assert _with_brightness_power(auto, [dark], [mask], "compact").postprocess.residual_brightness_power == DARK_PART_POWER
    assert _with_brightness_power(auto, [light], [mask], "compact").postprocess.residual_brightness_power == 0.0
    assert _with_brightness_power(auto, [dark], [mask], "surface").postprocess.residual_brightness_power == 0.0
    chosen = dataclasses.replace(auto, postprocess=dataclasses.replace(auto.postprocess, residual_brightness_power=1.0))
    assert _with_brightness_power(chosen, [dark], [mask], "compact").postprocess.residual_brightness_power == 1.0


def test_relative_errors_smooth_the_sensor_noise_of_a_black_shadow_before_squaring():
    """A black shadow (0.03) beside a lit face (0.3), sensor noise 0.015 on both (the real tyre's), a dark spot
    on the lit face. Relative errors divide the shadow's noise by its brightness, so unsmoothed it is ~5x the
    spot's residual; smoothing the difference by ``residual_brightness_denoise`` px before squaring averages the
    noise away and keeps the spot, for the CAE's residual and the references' alike. Without relative errors the
    setting changes nothing."""
    from scae_tf.references import GoodReferences, part_residual

    rng = np.random.default_rng(7)
    reconstruction = np.full((48, 96), 0.03, np.float32)
    reconstruction[:, 48:] = 0.3

    def shot() -> np.ndarray:
        return np.clip(reconstruction + rng.normal(0, 0.015, reconstruction.shape), 0, 1).astype(np.float32)

    crop = shot()
    crop[20:25, 70:75] -= 0.09  # 30 % darker
    references = GoodReferences.from_crops(np.stack([shot() for _ in range(4)]))

    def noise_over_spot(neighbours: int, denoise: float, power: float = 2.0) -> float:
        config = PostprocessConfig(
            reference_neighbours=neighbours, reference_shift=0, residual_brightness_power=power, residual_brightness_denoise=denoise
        )
        residual = part_residual(crop, reconstruction, config, references if neighbours else None)
        return float(residual[:, 4:44].max() / residual[21:24, 71:74].mean())

    for neighbours in (0, 2):
        raw, smoothed = noise_over_spot(neighbours, 0.0), noise_over_spot(neighbours, 1.0)
        assert raw > 3.0
        assert smoothed < raw / 2.0
    assert noise_over_spot(2, 1.0, power=0.0) == noise_over_spot(2, 0.0, power=0.0)
