"""Outline channel of the post-processor: missing material counts although the mask excludes it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scae_tf.calibration import Calibration, calibrate_residuals
from scae_tf.config import PostprocessConfig
from scae_tf.errors import ScaeError
from scae_tf.postprocess import expected_region, outline_deviation, outline_sums, stats_from_sums

SHAPE = (32, 96)


def part_mask(rng: np.random.Generator, cut_tip: int = 0) -> np.ndarray:
    """A bar along the axis with jittered ends and edges (like good screws), optionally a cut tip."""
    mask = np.zeros(SHAPE, bool)
    top, bottom = 8 + int(rng.integers(0, 2)), 24 - int(rng.integers(0, 2))
    left, right = 6 + int(rng.integers(0, 2)), 90 - int(rng.integers(0, 2))
    mask[top:bottom, left : right - cut_tip] = True
    return mask


def residual(rng: np.random.Generator) -> np.ndarray:
    return (0.01 + 0.002 * rng.standard_normal(SHAPE)).astype(np.float32)


def config(weight: float) -> PostprocessConfig:
    return PostprocessConfig(patch_size=8, patch_stride=4, zones=4, outline_weight=weight, zscore_smooth_sigma=1.0)


@pytest.fixture(scope="module")
def goods():
    rng = np.random.default_rng(0)
    return [residual(rng) for _ in range(12)], [part_mask(rng) for _ in range(12)]


def test_outline_statistics_and_deviation():
    masks = [part_mask(np.random.default_rng(i)) for i in range(6)]
    total = outline_sums(masks[0])
    for m in masks[1:]:
        total = total + outline_sums(m)
    stats = stats_from_sums(total, 0.0, 0.0, 1, absolute_floor=0.1)
    np.testing.assert_allclose(stats.mean, np.mean(masks, axis=0), atol=1e-6)
    assert stats.std.min() == pytest.approx(0.1)  # floored where every good part agrees
    region = expected_region(stats)
    assert region[16, 48] and not region[2, 48]
    cut = masks[0].copy()
    cut[:, 70:] = False  # 20 px of material missing where every good part has it
    deviation = outline_deviation(cut, stats)
    assert deviation[16, 80] == pytest.approx(10.0, rel=1e-4)  # (1 - 0) / 0.1
    assert deviation[16, 48] == pytest.approx(0.0, abs=1e-6)


def test_missing_tip_is_flagged_only_with_the_outline_channel(goods):
    residuals, masks = goods
    rng = np.random.default_rng(99)
    cut = part_mask(rng, cut_tip=14)
    probe = residual(rng)  # the residual itself is as good as any good part's
    with_outline = calibrate_residuals(residuals, masks, config(1.0))
    without = calibrate_residuals(residuals, masks, config(0.0))
    assert with_outline.outline_stats is not None and without.outline_stats is None
    result = with_outline.postprocessor()(probe, cut)
    assert result.anomalous and result.score > max(with_outline.max_statistics)
    flagged_x = result.patches.boxes[result.patches.flagged][:, 0]
    assert flagged_x.min() >= 90 - 14 - 8  # at the missing tip
    assert not without.postprocessor()(probe, cut).anomalous
    good = part_mask(rng)
    assert not with_outline.postprocessor()(probe, good).anomalous


def test_outline_statistics_survive_the_file_round_trip(tmp_path, goods):
    residuals, masks = goods
    calibration = calibrate_residuals(residuals, masks, config(1.0))
    path = tmp_path / "calibration.json"
    calibration.save(path)
    loaded = Calibration.load(path)
    np.testing.assert_array_equal(loaded.outline_stats.compact_mean, calibration.outline_stats.compact_mean)
    probe, cut = residuals[0], part_mask(np.random.default_rng(5), cut_tip=14)
    assert loaded.postprocessor()(probe, cut).score == calibration.postprocessor()(probe, cut).score
    data = json.loads(path.read_text())
    data["outline_stats"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(ScaeError, match="outline"):
        Calibration.load(path)
    del data["outline_stats"]
    data["config"]["outline_weight"] = 0.0  # files from before the outline channel still load
    path.write_text(json.dumps(data))
    assert Calibration.load(path).outline_stats is None
