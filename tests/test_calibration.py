"""Calibration: leave-one-out statistics, the max-statistic threshold, calibration.json round trip and errors."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from scae_tf.calibration import Calibration, calibrate, calibrate_residuals
from scae_tf.config import PostprocessConfig
from scae_tf.errors import ScaeError
from scae_tf.preprocessing import Prepared

SHAPE = (32, 64)


def config(**overrides) -> PostprocessConfig:
    base = dict(patch_size=8, patch_stride=4, zones=4, top_fraction=0.1, per_position_zscore=True, analysis_dilation=0)
    base.update(overrides)
    return PostprocessConfig(**base)


def object_mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    cv2.ellipse(mask, (32, 16), (30, 12), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def good_residuals(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pattern = np.tile(np.linspace(0.0, 0.2, SHAPE[1], dtype=np.float32), (SHAPE[0], 1))  # fixed per-position pattern
    return [(pattern + 0.02 * rng.random(SHAPE)).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    residuals = good_residuals(12)
    return calibrate_residuals(residuals, [object_mask()] * 12, config(), names=[f"good/{i:03d}.png" for i in range(12)])


def test_calibration_records_the_rule_and_its_false_alarm_rates(calibration):
    assert calibration.n_images == 12 and len(calibration.max_statistics) == 12
    assert calibration.image_names[3] == "good/003.png"
    assert calibration.threshold >= calibration.config.k_sigma
    stats = np.asarray(calibration.max_statistics)
    assert calibration.false_alarm_rate == pytest.approx(np.mean(stats > calibration.threshold))
    assert calibration.false_alarm_rate_zones_k == pytest.approx(np.mean(stats > calibration.config.k_sigma))
    assert calibration.zone_sigma.shape == (4,) and np.all(calibration.zone_sigma > 0)
    assert np.all(calibration.zone_sigma >= calibration.config.zone_sigma_floor * calibration.pooled_sigma - 1e-12)


def test_round_trip_keeps_everything(tmp_path, calibration):
    path = tmp_path / "calibration.json"
    calibration.save(path)
    loaded = Calibration.load(path)
    assert loaded.config == calibration.config
    assert loaded.crop_shape == calibration.crop_shape
    assert loaded.threshold == calibration.threshold
    assert loaded.pooled_threshold == calibration.pooled_threshold
    assert loaded.max_statistics == calibration.max_statistics
    assert loaded.image_names == calibration.image_names
    assert (loaded.false_alarm_rate, loaded.false_alarm_rate_pooled_k) == (
        calibration.false_alarm_rate,
        calibration.false_alarm_rate_pooled_k,
    )
    np.testing.assert_array_equal(loaded.zone_sigma, calibration.zone_sigma)
    np.testing.assert_array_equal(loaded.position_stats.mean, calibration.position_stats.mean)
    np.testing.assert_array_equal(loaded.position_stats.std, calibration.position_stats.std)
    assert loaded.residual_level == calibration.residual_level is not None
    probe = good_residuals(1, seed=9)[0]
    probe[10:18, 20:28] += 0.5
    a = calibration.postprocessor()(probe, object_mask())
    b = loaded.postprocessor()(probe, object_mask())
    assert a.score == b.score and a.anomalous == b.anomalous and a.anomalous
    assert not (tmp_path / "calibration.json.tmp").exists()


def test_threshold_is_measured_out_of_sample_leave_one_out():
    residuals = good_residuals(8, seed=2)
    masks = [object_mask()] * 8
    cfg = config(per_position_zscore=False, residual_level_percentile=0.0)  # the levels' median and maximum include the image (second order)
    full = calibrate_residuals(residuals, masks, cfg)
    for i in (0, 5):
        others = calibrate_residuals(residuals[:i] + residuals[i + 1 :], masks[1:], cfg)
        assert full.max_statistics[i] == pytest.approx(others.postprocessor()(residuals[i], masks[i]).score, rel=1e-9)


def test_per_position_statistics_are_exact_without_smoothing():
    residuals = good_residuals(6, seed=4)
    mask = np.ones(SHAPE, bool)
    partial = mask.copy()
    partial[:, :8] = False  # the first image does not cover the left columns
    cfg = config(zscore_smooth_sigma=0.0, stats_downsample=1, zscore_std_floor=0.0, residual_level_percentile=0.0)
    calibration = calibrate_residuals(residuals, [partial] + [mask] * 5, cfg)
    stack = np.stack(residuals)
    np.testing.assert_allclose(calibration.position_stats.mean[:, 8:], stack[:, :, 8:].mean(0), atol=1e-6)
    np.testing.assert_allclose(calibration.position_stats.std[:, 8:], stack[:, :, 8:].std(0), atol=1e-5)
    np.testing.assert_allclose(calibration.position_stats.mean[:, :8], stack[1:, :, :8].mean(0), atol=1e-6)


def test_std_floor_keeps_quiet_positions_from_exploding():
    residuals = [np.full(SHAPE, 0.1, np.float32) for _ in range(5)]
    for i, r in enumerate(residuals):
        r[:, 24:] += 0.01 * i  # only the right 40 of 64 columns vary (population std 0.01 * sqrt(2))
    calibration = calibrate_residuals(residuals, [np.ones(SHAPE, bool)] * 5, config(zscore_smooth_sigma=0.0, stats_downsample=1, residual_level_percentile=0.0))
    std = calibration.position_stats.std
    varying = 0.01 * np.sqrt(2.0)
    np.testing.assert_allclose(std[:, 24:], varying, rtol=1e-4)
    np.testing.assert_allclose(std[:, :24], 0.5 * varying, rtol=1e-4)  # floor = 0.5 x median object std


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda text: text[: len(text) // 2], "corrupt calibration"),
        (lambda text: json.dumps({**json.loads(text), "version": 99}), "version"),
        (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "threshold"}), "corrupt calibration"),
        (
            lambda text: json.dumps({**json.loads(text), "position_stats": {**json.loads(text)["position_stats"], "mean_npy_base64": "@@"}}),
            "corrupt calibration",
        ),
        (lambda text: json.dumps({**json.loads(text), "zone_sigma": [1.0, 2.0]}), "corrupt calibration"),
        (lambda text: "[1, 2]", "not a JSON object"),
    ],
)
def test_load_rejects_corrupt_files_with_a_clear_error(tmp_path, calibration, mutate, message):
    path = tmp_path / "calibration.json"
    calibration.save(path)
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ScaeError, match=message) as info:
        Calibration.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_too_few_images(tmp_path):
    with pytest.raises(ScaeError, match="calibration not found"):
        Calibration.load(tmp_path / "calibration.json")
    with pytest.raises(ScaeError, match="at least 4 good images"):
        calibrate_residuals(good_residuals(3), [object_mask()] * 3, config())
    with pytest.raises(ScaeError, match="no object patch"):
        calibrate_residuals(good_residuals(5), [np.zeros(SHAPE, bool)] * 5, config())


def test_compatibility_check(calibration):
    calibration.check_compatible(dataclasses.replace(calibration.config, k_sigma=4.0), SHAPE)  # only tau depends on k
    with pytest.raises(ScaeError, match="patch_size"):
        calibration.check_compatible(dataclasses.replace(calibration.config, patch_size=16), SHAPE)
    with pytest.raises(ScaeError, match="crops"):
        calibration.check_compatible(calibration.config, (64, 64))


class ThresholdBackend:
    """Segment = threshold, reconstruct = blur: enough to drive the calibration plumbing."""

    def segment(self, image):
        return (image > 0.5).astype(np.float32)

    def reconstruct(self, crop):
        return cv2.GaussianBlur(crop, (5, 5), 1.0)


class IdentityPreprocessor:
    """The crop is the work image itself; the mask is the segmenter's output above 0.5."""

    def prepare_image(self, segment, image, **_):
        work = image
        mask = segment(work) > 0.5
        if not mask.any():
            return Prepared(work, mask, reason="no part found")
        return Prepared(work, mask, work.astype(np.float32), mask, None)

    def reconstruct(self, reconstruct, crop, mask=None):
        return reconstruct(crop)

    def analysis_box(self, crop_mask):
        return None


def test_calibrate_runs_segment_crop_reconstruct_residual():
    rng = np.random.default_rng(5)
    works = []
    for _ in range(6):
        work = np.full(SHAPE, 0.2, np.float32)
        work[object_mask()] = 0.7 + 0.1 * rng.random(int(object_mask().sum()))
        works.append(work)
    works.insert(2, np.full(SHAPE, 0.2, np.float32))  # the segmenter finds no part here
    calibration = calibrate(ThresholdBackend(), IdentityPreprocessor(), config(), iter(works), names=[str(i) for i in range(7)])
    assert calibration.n_images == 6 and calibration.crop_shape == SHAPE
    assert calibration.image_names == ["0", "1", "3", "4", "5", "6"]
    assert calibration.skipped_images == ["2"]
    assert np.isfinite(calibration.threshold)
    with pytest.raises(ScaeError, match="no part found"):
        calibrate(ThresholdBackend(), IdentityPreprocessor(), config(), works[:3] + [works[2]] * 3)


def test_file_written_before_neighbour_ring_keeps_the_rule_it_was_made_with(tmp_path):
    residuals = good_residuals(8)
    old = calibrate_residuals(residuals, [object_mask()] * 8, config(neighbour_ring=1))
    path = tmp_path / "calibration.json"
    old.save(path)
    data = json.loads(path.read_text())
    for name in ("neighbour_ring", "analysis_dilation"):
        del data["config"][name]  # as written before these fields existed
    path.write_text(json.dumps(data))
    loaded = Calibration.load(path)
    assert (loaded.config.neighbour_ring, loaded.config.analysis_dilation) == (1, 0)
    # an old run config has no neighbour_ring either and so takes today's default: still compatible
    loaded.check_compatible(config(neighbour_ring=2), SHAPE)
    assert loaded.postprocessor().config.neighbour_ring == 1
    old.save(tmp_path / "new.json")
    with pytest.raises(ScaeError, match="neighbour_ring"):
        Calibration.load(tmp_path / "new.json").check_compatible(config(neighbour_ring=2), SHAPE)


def test_false_alarm_rate_can_be_reset_without_images(calibration):
    """A line re-sets tau from the stored out-of-sample good scores; statistics stay the same."""
    looser = calibration.with_false_alarm_rate(0.2)
    scores = np.asarray(calibration.max_statistics)
    assert looser.threshold <= calibration.threshold
    assert looser.config.target_false_alarm_rate == 0.2
    assert looser.false_alarm_rate == pytest.approx(float(np.mean(scores > looser.threshold)))
    assert looser.false_alarm_rate >= calibration.false_alarm_rate
    np.testing.assert_array_equal(looser.zone_sigma, calibration.zone_sigma)
    assert looser.postprocessor().threshold == looser.threshold
    with pytest.raises(ScaeError, match="false-alarm rate"):
        calibration.with_false_alarm_rate(0.0)



def test_training_images_floor_the_spread_a_rare_good_detail_is_judged_by():
    """A detail one calibration image in twelve has (a bright spot) rests on that image alone: left out,
    it scores far above the rest. Training images that show the detail now and then floor the spread
    there, so the same good image scores lower; the statistics' mean stays the calibration images'."""
    from scae_tf.postprocess import PositionSums, stats_from_sums, with_std_floor

    residuals = good_residuals(12)
    residuals[0][14:18, 30:34] += 0.3
    masks = [object_mask()] * 12
    cfg = config(residual_level_percentile=0.0)  # the floor's statistics are made here, from unscaled residuals
    plain = calibrate_residuals(residuals, masks, cfg)
    training = good_residuals(40, seed=1)
    for i in range(0, 40, 5):  # every fifth training image has the detail
        training[i][14:18, 30:34] += 0.3
    sums = PositionSums.of(training[0], object_mask())
    for residual in training[1:]:
        sums = sums + PositionSums.of(residual, object_mask())
    floor = stats_from_sums(sums, cfg.zscore_smooth_sigma, cfg.zscore_std_floor, cfg.stats_downsample)
    floored = calibrate_residuals(residuals, masks, cfg, std_floor=floor)
    assert floored.max_statistics[0] < 0.5 * plain.max_statistics[0]  # the rare good part, left out
    np.testing.assert_array_equal(floored.position_stats.compact_mean, plain.position_stats.compact_mean)
    assert np.all(floored.position_stats.compact_std >= plain.position_stats.compact_std)
    assert with_std_floor(plain.position_stats, None) is plain.position_stats
    with pytest.raises(ValueError, match="does not match"):
        with_std_floor(plain.position_stats, stats_from_sums(sums, 0.0, 0.5, 1))


def test_calibrate_takes_the_floor_from_training_images_when_asked():
    rng = np.random.default_rng(7)

    def part(bright_spot: bool) -> np.ndarray:
        work = np.full(SHAPE, 0.2, np.float32)
        work[object_mask()] = 0.7 + 0.05 * rng.random(int(object_mask().sum()))
        if bright_spot:
            work[14:18, 30:34] = 1.0
        return work

    works = [part(i == 0) for i in range(8)]
    training = [part(i % 4 == 0) for i in range(24)] + [np.full(SHAPE, 0.2, np.float32)]  # one without a part: skipped
    plain = calibrate(ThresholdBackend(), IdentityPreprocessor(), config(), works)
    floored = calibrate(ThresholdBackend(), IdentityPreprocessor(), config(), works, training_works=iter(training))
    off = calibrate(ThresholdBackend(), IdentityPreprocessor(), config(zscore_training_floor=False), works, training_works=iter(training))
    assert np.all(floored.position_stats.compact_std >= plain.position_stats.compact_std)
    assert np.any(floored.position_stats.compact_std > plain.position_stats.compact_std)
    assert floored.max_statistics[0] < plain.max_statistics[0]
    np.testing.assert_array_equal(off.position_stats.compact_std, plain.position_stats.compact_std)
