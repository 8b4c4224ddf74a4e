"""Each part's residual in units of its own level (scae_tf/postprocess/level.py): a part rebuilt worse all over
within the good parts' range scores like the others, a local defect still stands out, and a part worse all over
than any good one keeps its excess."""

from __future__ import annotations

import numpy as np
import pytest

from scae_tf.calibration import calibrate_residuals
from scae_tf.config import PostprocessConfig
from scae_tf.postprocess import ResidualLevel, part_level

SHAPE = (32, 96)
MASK = np.zeros(SHAPE, bool)
MASK[4:28, 4:92] = True


def config(**overrides) -> PostprocessConfig:
    base = dict(patch_size=8, patch_stride=4, zones=4, analysis_dilation=0, threshold_method="quantile")
    base.update(overrides)
    return PostprocessConfig(**base)


def good_residual(rng: np.random.Generator, gain: float) -> np.ndarray:
    """A fixed pattern plus noise, all of it times ``gain`` (a part lit or finished a little differently)."""
    pattern = np.tile(np.linspace(0.01, 0.03, SHAPE[1], dtype=np.float32), (SHAPE[0], 1))
    return (gain * (pattern + 0.01 * rng.random(SHAPE))).astype(np.float32)


@pytest.fixture(scope="module")
def goods():
    rng = np.random.default_rng(3)
    return [good_residual(rng, gain) for gain in np.linspace(0.6, 1.6, 16)]


def test_the_level_is_a_percentile_over_the_part_and_kept_within_the_good_range():
    residual = np.zeros(SHAPE, np.float32)
    residual[MASK] = np.linspace(0.0, 1.0, int(MASK.sum()))
    residual[~MASK] = 50.0  # background never counts
    assert part_level(residual, MASK, 90) == pytest.approx(0.9, abs=1e-3)
    level = ResidualLevel(90.0, low=0.5, high=2.0)
    probe = residual.copy()
    probe[~MASK] = 1.0
    scaled, excess = level.scale(probe, MASK)
    np.testing.assert_allclose(scaled, probe / 0.9, rtol=2e-3)
    assert excess == pytest.approx(0.45, abs=1e-3)
    np.testing.assert_allclose(level(0.1 * probe, MASK), 0.1 * probe / 0.5, rtol=1e-6)  # a quiet part is not amplified
    scaled, excess = level.scale(10 * probe, MASK)
    np.testing.assert_allclose(scaled, 10 * probe / 2.0, rtol=1e-6)  # beyond every good part: the excess stays
    assert excess == pytest.approx(4.5, abs=1e-2)
    assert ResidualLevel.from_dict(level.to_dict()) == level
    with pytest.raises(ValueError):
        ResidualLevel.from_dict({"percentile": 90, "low": 0.0, "high": 1.0})


def test_a_part_rebuilt_worse_all_over_scores_like_the_others(goods):
    scaled = calibrate_residuals(goods, [MASK] * len(goods), config())
    raw = calibrate_residuals(goods, [MASK] * len(goods), config(residual_level_percentile=0.0))
    assert scaled.residual_level.low < scaled.residual_level.high
    worse = good_residual(np.random.default_rng(8), 1.6)  # as bad all over as the worst good part
    on, off = scaled.postprocessor()(worse, MASK), raw.postprocessor()(worse, MASK)
    assert not on.anomalous and on.score < off.score
    assert on.level_excess == pytest.approx(1.0, abs=0.1) and np.isnan(off.level_excess)


def test_a_local_defect_still_stands_out_and_a_part_worse_than_any_good_one_keeps_its_excess(goods):
    processor = calibrate_residuals(goods, [MASK] * len(goods), config()).postprocessor()
    rng = np.random.default_rng(9)
    defect = good_residual(rng, 1.6)
    defect[12:20, 40:48] += 0.1
    assert processor(defect, MASK).anomalous
    unlike = good_residual(rng, 6.0)
    result = processor(unlike, MASK)
    assert result.anomalous and result.level_excess > 3.0
    assert result.score > processor(good_residual(rng, 1.0), MASK).score
