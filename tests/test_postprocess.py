"""The patch post-processor on hand-made error maps: every step checked against exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scae_tf.calibration import calibrate_residuals
from scae_tf.config import PostprocessConfig
from scae_tf.errors import ScaeError
from scae_tf.postprocess import (
    PostProcessor,
    analysis_region,
    gumbel_quantile,
    image_threshold,
    neighbour_deviation,
    patch_grid,
    patch_means,
    select_top,
    top_count,
    zone_ids,
)


def block_map(errors: np.ndarray, size: int) -> np.ndarray:
    """A pixel map whose non-overlapping ``size`` patches have exactly ``errors``."""
    return np.kron(np.asarray(errors, dtype=np.float64), np.ones((size, size))).astype(np.float32)


def config(**overrides) -> PostprocessConfig:
    base = dict(
        patch_size=4, patch_stride=4, zones=0, per_position_zscore=False, neighbour_statistic="median", neighbour_ring=1,
        analysis_dilation=0,  # these tests check the mechanics on the exact mask
    )
    base.update(overrides)
    return PostprocessConfig(**base)


# --- grid and object fraction -------------------------------------------------------------------


def test_grid_positions_cover_the_crop_with_a_flush_last_patch():
    grid = patch_grid(32, 48, 16, 8)
    assert grid.ys.tolist() == [0, 8, 16]
    assert grid.xs.tolist() == [0, 8, 16, 24, 32]
    ragged = patch_grid(30, 30, 16, 8)
    assert ragged.ys.tolist() == [0, 8, 14]  # last patch flush with the border
    assert grid.boxes()[1, 2].tolist() == [16, 8, 32, 24]
    with pytest.raises(ValueError):
        patch_grid(8, 40, 16, 8)


def test_patch_means_use_object_pixels_only_and_report_the_fraction():
    values = np.arange(64, dtype=np.float32).reshape(8, 8)
    mask = np.zeros((8, 8), bool)
    mask[:, :2] = True  # half of the top-left 4x4 patch
    mask[4:, 4:] = True  # all of the bottom-right patch
    grid = patch_grid(8, 8, 4, 4)
    means, fraction = patch_means(values, mask, grid)
    assert fraction.tolist() == [[0.5, 0.0], [0.5, 1.0]]
    assert means[0, 0] == pytest.approx(values[:4, :2].mean())
    assert means[1, 1] == pytest.approx(values[4:, 4:].mean())
    assert np.isnan(means[0, 1])


def test_object_fraction_threshold_is_inclusive():
    residual = np.ones((8, 8), np.float32)
    mask = np.zeros((8, 8), bool)
    mask[:4, :2] = True  # patch (0,0): exactly 0.5
    mask[4:, :1] = True  # patch (1,0): 0.25
    mask[4:, 4:] = True  # patch (1,1): 1.0
    mask[0, 4] = True  # patch (0,1): 1/16
    out = PostProcessor(config(min_object_fraction=0.5), (8, 8))(residual, mask)
    assert sorted(map(tuple, out.patches.grid_index.tolist())) == [(0, 0), (1, 1)]


# --- top fraction ---------------------------------------------------------------------------------


def test_top_count_is_ceil_of_the_fraction_and_at_least_one():
    assert top_count(20, 0.1) == 2
    assert top_count(21, 0.1) == 3  # ceil(2.1)
    assert top_count(5, 0.1) == 1  # minimum one
    assert top_count(0, 0.1) == 0
    assert top_count(3, 1.0) == 3


def test_select_top_picks_the_largest_and_breaks_ties_by_position():
    errors = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.0, 0.5, 0.4, 0.6, 0.7, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
    assert np.flatnonzero(select_top(errors, 0.1)).tolist() == [1, 19]
    ties = np.array([1.0, 2.0, 2.0, 2.0, 0.0])
    assert np.flatnonzero(select_top(ties, 0.4)).tolist() == [1, 2]  # exactly two of the three tied
    assert np.flatnonzero(select_top(np.array([0.3, 0.7, 0.1]), 0.1)).tolist() == [1]


# --- neighbour deviation ----------------------------------------------------------------------------


def test_neighbour_deviation_median_and_mean_over_8_neighbours():
    errors = np.array([[1.0, 2.0, 3.0], [4.0, 10.0, 6.0], [7.0, 8.0, 9.0]])
    everything = np.ones((3, 3), bool)
    median_dev, count = neighbour_deviation(errors, everything, "median")
    assert count.tolist() == [[3, 5, 3], [5, 8, 5], [3, 5, 3]]
    assert median_dev[1, 1] == pytest.approx(10.0 - 5.0)  # median of 1,2,3,4,6,7,8,9
    assert median_dev[0, 0] == pytest.approx(1.0 - 4.0)  # neighbours 2, 4, 10
    mean_dev, _ = neighbour_deviation(errors, everything, "mean")
    assert mean_dev[1, 1] == pytest.approx(10.0 - 5.0)
    assert mean_dev[0, 0] == pytest.approx(1.0 - 16.0 / 3.0)
    assert mean_dev[0, 1] == pytest.approx(2.0 - (1 + 3 + 4 + 10 + 6) / 5.0)


def test_neighbour_deviation_ignores_non_object_cells_and_handles_isolated_patches():
    errors = np.array([[5.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 9.0], [100.0, 0.0, 0.0, 0.0]])
    is_object = np.array([[True, True, False, False], [True, True, False, True], [False, False, False, False]])
    deviation, count = neighbour_deviation(errors, is_object, "mean")
    assert count[0, 0] == 3 and count[1, 1] == 3
    assert deviation[0, 0] == pytest.approx(5.0 - 1.0)  # the 100 below is not object
    assert deviation[1, 1] == pytest.approx(1.0 - (5 + 1 + 1) / 3.0)
    assert count[1, 3] == 0  # isolated: compared with the median of all object patches (1, 1, 1, 5, 9)
    assert deviation[1, 3] == pytest.approx(9.0 - 1.0)
    assert np.isnan(deviation[2, 0]) and np.isnan(deviation[0, 2])


def test_single_object_patch_gets_zero_deviation_against_itself():
    deviation, count = neighbour_deviation(np.array([[3.0, 7.0]]), np.array([[False, True]]), "median")
    assert count[0, 1] == 0 and deviation[0, 1] == 0.0


# --- zones ------------------------------------------------------------------------------------------


def test_zone_ids_split_the_axis_by_patch_centre():
    grid = patch_grid(16, 64, 16, 16)  # centres at x = 8, 24, 40, 56
    assert zone_ids(grid, 2).tolist() == [[0, 0, 1, 1]]
    assert zone_ids(grid, 4).tolist() == [[0, 1, 2, 3]]
    assert zone_ids(grid, 0).tolist() == [[0, 0, 0, 0]]
    assert zone_ids(grid, 1).tolist() == [[0, 0, 0, 0]]
    finest = zone_ids(patch_grid(32, 64, 16, 16), -1)
    assert finest.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


# --- decision -----------------------------------------------------------------------------------------


def test_k_sigma_rule_with_known_zone_sigmas():
    # 2 x 4 grid of 4x4 patches; zones = 2 (left / right halves of the width).
    errors = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 4.0, 1.0, 6.0]])
    residual = block_map(errors, 4)
    mask = np.ones(residual.shape, bool)
    sigmas = np.array([1.0, 2.0])
    processor = PostProcessor(config(zones=2, top_fraction=0.25), residual.shape, zone_sigma=sigmas, threshold=2.0)
    out = processor(residual, mask)
    table = out.patches
    assert len(table) == 8
    # candidates: the top 2 of 8 patches (errors 6 and 4)
    assert {tuple(g) for g in table.grid_index[table.candidate].tolist()} == {(1, 1), (1, 3)}
    by_cell = {tuple(g): i for i, g in enumerate(table.grid_index.tolist())}
    i4, i6 = by_cell[(1, 1)], by_cell[(1, 3)]
    assert table.deviations[i4] == pytest.approx(3.0)  # median of 5 x 1.0 neighbours
    assert table.deviations[i6] == pytest.approx(5.0)  # neighbours 1, 1, 1
    assert table.normalised[i4] == pytest.approx(3.0 / 1.0)  # zone 0
    assert table.normalised[i6] == pytest.approx(5.0 / 2.0)  # zone 1
    assert table.flagged[i4] and table.flagged[i6]
    assert out.score == pytest.approx(3.0) and out.anomalous
    strict = PostProcessor(config(zones=2, top_fraction=0.25), residual.shape, zone_sigma=sigmas, threshold=2.6)(residual, mask)
    assert strict.patches.flagged.tolist().count(True) == 1 and strict.anomalous
    assert strict.score > strict.threshold


def test_only_positive_deviations_and_only_candidates_are_flagged():
    errors = np.array([[5.0, 5.0, 5.0], [5.0, 0.0, 5.0], [5.0, 5.0, 5.0]])  # a cold hole in the middle
    residual = block_map(errors, 4)
    out = PostProcessor(config(top_fraction=1.0), residual.shape, zone_sigma=np.ones(1), threshold=3.0)(
        residual, np.ones(residual.shape, bool)
    )
    assert out.patches.normalised.min() == pytest.approx(-5.0)
    assert not out.anomalous and not out.patches.flagged.any()
    hot = block_map(np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 9.0]]), 4)
    # top 10 % of 9 patches = 1 candidate (the 9); the 5 has d = 5 > 3 but is not a candidate
    out = PostProcessor(config(top_fraction=0.1), hot.shape, zone_sigma=np.ones(1), threshold=3.0)(hot, np.ones(hot.shape, bool))
    assert out.patches.candidate.sum() == 1 and out.patches.flagged.sum() == 1
    assert out.patches.errors[out.patches.flagged][0] == pytest.approx(9.0)


def test_mask_touching_the_crop_border_uses_object_neighbours_only():
    errors = np.zeros((3, 4))
    errors[:, 0] = [2.0, 8.0, 2.0]  # a hot patch on the left crop border
    residual = block_map(errors, 4)
    mask = np.zeros(residual.shape, bool)
    mask[:, :8] = True  # object = the two left columns of patches, touching top, bottom and left borders
    residual[~mask] = 100.0  # background must not leak into anything
    out = PostProcessor(config(top_fraction=0.1), residual.shape, zone_sigma=np.ones(1), threshold=3.0)(residual, mask)
    table = out.patches
    assert len(table) == 6
    by_cell = {tuple(g): i for i, g in enumerate(table.grid_index.tolist())}
    assert table.deviations[by_cell[(1, 0)]] == pytest.approx(8.0 - 0.0)  # median of 2, 0, 0, 0, 2
    assert table.deviations[by_cell[(0, 0)]] == pytest.approx(2.0 - 0.0)  # median of 8, 0, 0
    assert out.anomalous and table.flagged[by_cell[(1, 0)]]
    assert out.pixel_map[~mask].max() == 0.0


def test_pixel_map_is_the_max_d_of_the_covering_patches():
    residual = np.zeros((8, 8), np.float32)
    residual[2:4, 2:4] = 1.0
    cfg = config(patch_size=4, patch_stride=2, top_fraction=1.0)
    processor = PostProcessor(cfg, (8, 8), zone_sigma=np.ones(1), threshold=100.0)
    out = processor(residual, np.ones((8, 8), bool))
    table = out.patches
    d = np.full((3, 3), -np.inf)
    d[table.grid_index[:, 0], table.grid_index[:, 1]] = table.normalised
    expected = np.zeros((8, 8))
    for y in range(8):
        for x in range(8):
            covering = [d[r, c] for r in range(3) for c in range(3) if 2 * r <= y < 2 * r + 4 and 2 * c <= x < 2 * c + 4]
            expected[y, x] = max(0.0, max(covering))
    np.testing.assert_allclose(out.pixel_map, expected, atol=1e-6)


def test_pixel_map_also_shows_per_position_deviations_of_either_sign():
    """With per-position statistics, a region rebuilt better than on good parts (residual far below
    its usual level) lights up the map although no patch deviation is positive there."""
    from scae_tf.postprocess.position_stats import PositionStats

    shape = (16, 16)
    stats = PositionStats(np.full(shape, 1.0, np.float32), np.full(shape, 0.1, np.float32), shape)
    residual = np.ones(shape, np.float32)
    residual[4:8, 4:8] = 0.0  # z = -10 there
    cfg = config(per_position_zscore=True, zscore_smooth_sigma=1.0, top_fraction=1.0)
    out = PostProcessor(cfg, shape, position_stats=stats, zone_sigma=np.ones(1), threshold=100.0)(residual, np.ones(shape, bool))
    assert out.patches.normalised.max() <= 1e-6  # the patch logic only counts positive deviations
    assert out.pixel_map[5:7, 5:7].min() > 5.0 and out.pixel_map[12:, 12:].max() < 1e-3
    no_stats = PostProcessor(config(top_fraction=1.0), shape, zone_sigma=np.ones(1), threshold=100.0)(residual, np.ones(shape, bool))
    assert no_stats.pixel_map.max() == 0.0  # raw residual units never mix into the d map


def test_empty_mask_is_anomalous_with_an_infinite_score():
    out = PostProcessor(config(), (8, 8), zone_sigma=np.ones(1), threshold=3.0)(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool))
    assert out.anomalous and math.isinf(out.score) and len(out.patches) == 0


def test_uncalibrated_processor_never_flags():
    residual = block_map(np.array([[0.0, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.0, 0.0]]), 4)
    out = PostProcessor(config(), residual.shape)(residual, np.ones(residual.shape, bool))
    assert out.score == pytest.approx(50.0) and out.threshold == math.inf and not out.anomalous


# --- threshold on the max statistic -------------------------------------------------------------------


def test_image_threshold_quantile_and_gumbel_with_floor_k():
    samples = np.arange(1, 101, dtype=np.float64)  # 1..100
    assert image_threshold(samples, 0.05, 3.0, "quantile") == pytest.approx(96.0)  # 'higher' 0.95 quantile
    assert image_threshold(samples / 100.0, 0.05, 3.0, "quantile") == 3.0  # floored at k
    # Least squares of the lower 90 % of the order statistics on their Gumbel reduced variates.
    positions = (np.arange(1, 101) - 0.44) / 100.12
    body = positions <= 0.9
    reduced = -np.log(-np.log(positions))
    beta, mu = np.polyfit(reduced[body], samples[body], 1)
    expected = mu - beta * math.log(-math.log(0.99))
    assert gumbel_quantile(samples, 0.99) == pytest.approx(expected)
    assert image_threshold(samples, 0.01, 3.0, "gumbel") == pytest.approx(expected)
    assert image_threshold(samples / 100.0, 0.01, 3.0, "gumbel") == 3.0  # floored at k


def test_gumbel_threshold_is_not_set_by_one_unusual_good_part():
    rng = np.random.default_rng(1)
    scores = rng.gumbel(5.0, 1.2, 60)
    true = 5.0 - 1.2 * math.log(-math.log(0.99))
    with_outlier = np.append(scores[:-1], 41.0)
    assert gumbel_quantile(scores, 0.99) == pytest.approx(true, abs=1.5)
    assert abs(gumbel_quantile(with_outlier, 0.99) - gumbel_quantile(scores, 0.99)) < 1.0


def test_gumbel_threshold_recovers_the_quantile_of_a_known_max_distribution():
    rng = np.random.default_rng(0)
    # max of 12 standard normal patch deviations per image, 400 images
    maxima = rng.standard_normal((400, 12)).max(axis=1)
    tau = image_threshold(maxima, 0.05, 0.0, "gumbel")
    reference = np.quantile(rng.standard_normal((200_000, 12)).max(axis=1), 0.95)
    # Maxima of normals have a lighter tail than a Gumbel law: the extrapolation errs on the safe side.
    assert reference - 0.05 <= tau <= reference + 0.2
    # a single patch's k = 1.645 (5 % one-sided) is far below the max statistic's 5 % point
    assert tau > 1.645 + 0.5


# --- zones against a thread-like, always-poor zone -------------------------------------------------------


def _good_residual(rng: np.random.Generator, shape=(32, 128)) -> np.ndarray:
    """Calm residual except columns 64-96: a 'thread' the CAE always reconstructs poorly (hot, patchy)."""
    residual = 0.02 + 0.01 * rng.random(shape)
    blobs = 0.3 + 0.15 * rng.random((shape[0] // 8, 4))
    residual[:, 64:96] += np.kron(blobs, np.ones((8, 8)))
    return residual.astype(np.float32)


@pytest.fixture(scope="module")
def thread_data():
    rng = np.random.default_rng(1)
    goods = [_good_residual(rng) for _ in range(40)]
    return goods, _good_residual(rng), np.ones((32, 128), bool)


def test_calibrated_zone_sigma_silences_the_thread_and_flags_a_planted_patch(thread_data):
    goods, fresh_good, mask = thread_data
    cfg = config(patch_size=8, patch_stride=8, zones=4, top_fraction=0.1, residual_level_percentile=0.0)  # the naive rule below reads raw residuals
    calibration = calibrate_residuals(goods, [mask] * len(goods), cfg)
    assert calibration.zone_sigma[2] > 5 * calibration.zone_sigma[0]  # the thread zone (x 64-96)
    assert calibration.false_alarm_rate_pooled_k > 0.5  # plain pooled d > 3 alarms on good parts
    assert calibration.false_alarm_rate <= 0.05
    naive = PostProcessor(cfg, mask.shape, zone_sigma=np.full(4, calibration.pooled_sigma), threshold=cfg.k_sigma)
    assert naive(fresh_good, mask).anomalous  # the thread raises an alarm without zone sigmas
    processor = calibration.postprocessor()
    assert not processor(fresh_good, mask).anomalous
    planted = fresh_good.copy()
    planted[8:16, 16:24] += 0.8
    hit = processor(planted, mask)
    assert hit.anomalous
    assert hit.patches.boxes[hit.patches.flagged].tolist() == [[16, 8, 24, 16]]
    # ablation: the same calibrated max-statistic rule with one pooled sigma needs a higher threshold
    pooled = calibration.postprocessor(zones=False)
    assert calibration.pooled_threshold > calibration.threshold
    assert not pooled(fresh_good, mask).anomalous
    assert pooled(planted, mask).score < hit.score


def test_per_position_zscore_lets_a_calm_zone_compete_with_the_thread(thread_data):
    goods, fresh_good, mask = thread_data
    planted = fresh_good.copy()
    planted[8:16, 16:24] += 0.12  # far cooler than the thread: never a top-10 % candidate on raw errors
    for zscore, expected in ((False, False), (True, True)):
        cfg = config(patch_size=8, patch_stride=8, zones=4, top_fraction=0.1, per_position_zscore=zscore)
        processor = calibrate_residuals(goods, [mask] * len(goods), cfg).postprocessor()
        assert processor(planted, mask).anomalous is expected
        assert not processor(fresh_good, mask).anomalous


def test_neighbour_statistic_none_keeps_the_patch_error():
    errors = np.array([[1.0, 2.0, 3.0], [4.0, 9.0, 6.0], [7.0, 8.0, 5.0]])
    is_object = np.ones((3, 3), bool)
    is_object[0, 0] = False
    deviation, count = neighbour_deviation(errors, is_object, "none")
    assert np.isnan(deviation[0, 0])
    np.testing.assert_array_equal(deviation[is_object], errors[is_object])
    assert count[1, 1] == 7
    with pytest.raises(ValueError, match="neighbour_statistic"):
        neighbour_deviation(errors, is_object, "max")


def test_neighbour_ring_compares_with_cells_at_that_distance_so_a_wide_defect_is_not_cancelled():
    errors = np.zeros((9, 9))
    errors[3:6, 3:6] = 5.0  # a defect three cells wide: its adjacent neighbours are hot too
    errors[4, 4] = 6.0
    everything = np.ones((9, 9), bool)
    adjacent, count1 = neighbour_deviation(errors, everything, "median")
    assert adjacent[4, 4] == pytest.approx(1.0)  # the median of 8 hot neighbours cancels the level
    ring2, count2 = neighbour_deviation(errors, everything, "median", ring=2)
    assert ring2[4, 4] == pytest.approx(6.0)  # the ring at distance 2 lies outside the defect
    assert count1[4, 4] == 8 and count2[4, 4] == 16
    assert count2[0, 0] == 5  # cells beyond the grid are no neighbours
    assert ring2[0, 0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="neighbour_ring"):
        neighbour_deviation(errors, everything, "median", ring=0)


def test_neighbour_ring_reaches_the_processor_and_the_calibration_check():
    errors = np.zeros((9, 9))
    errors[3:6, 3:6] = 5.0
    errors[4, 4] = 6.0
    mask = np.ones((36, 36), bool)
    near = PostProcessor(config(), (36, 36)).analyse(block_map(errors, 4), mask)
    far = PostProcessor(config(neighbour_ring=2), (36, 36)).analyse(block_map(errors, 4), mask)
    assert near.deviation[4, 4] == pytest.approx(1.0)
    assert far.deviation[4, 4] == pytest.approx(6.0)
    rng = np.random.default_rng(0)
    goods = [rng.random((36, 36)).astype(np.float32) for _ in range(6)]
    calibration = calibrate_residuals(goods, [mask] * 6, config(neighbour_ring=2))
    with pytest.raises(ScaeError, match="neighbour_ring"):
        calibration.check_compatible(config(), (36, 36), "calibration.json")


def test_analysis_dilation_reaches_error_just_outside_the_mask():
    mask = np.zeros((32, 32), bool)
    mask[:, :16] = True  # the part; the segmenter cut away what lies right of column 16
    residual = np.zeros((32, 32), np.float32)
    residual[8:16, 16:20] = 1.0  # the CAE draws the missing material there: error outside the mask
    assert analysis_region(mask, config()).sum() == mask.sum()
    grown = analysis_region(mask, config(analysis_dilation=4))
    assert grown[:, :20].all() and not grown[:, 21:].any()
    plain = PostProcessor(config(neighbour_statistic="none"), (32, 32))
    dilated = PostProcessor(config(neighbour_statistic="none", analysis_dilation=4), (32, 32))
    assert plain(residual, mask).score == pytest.approx(0.0)
    assert dilated(residual, mask).score == pytest.approx(1.0)


def test_map_shows_missing_material_just_outside_the_part_without_changing_the_decision():
    """A segmenter that works cuts a missing tip out of the mask; the CAE rebuilds the tip there, so the
    residual is high just outside the part. The map shows it (within two patch lengths of the analysed
    region), the score does not change, and background farther away stays 0."""
    from scae_tf.postprocess.position_stats import PositionStats

    shape = (32, 64)
    stats = PositionStats(np.full(shape, 1.0, np.float32), np.full(shape, 0.5, np.float32), shape)
    mask = np.zeros(shape, bool)
    mask[8:24, :40] = True  # the part, its tip cut off at column 40
    residual = np.ones(shape, np.float32)  # z = 0 wherever good parts' level is met
    residual[:, 48:] = 0.0  # background reconstructed better than the part's usual level: z < 0, never shown
    residual[10:22, 40:46] = 4.0  # the rebuilt tip: z = 6 just outside the mask
    kw = dict(per_position_zscore=True, zscore_smooth_sigma=1.0, top_fraction=1.0, patch_size=4, patch_stride=4)
    shown = PostProcessor(config(**kw), shape, position_stats=stats, zone_sigma=np.ones(1), threshold=100.0)(residual, mask)
    hidden = PostProcessor(config(missing_material_map=False, **kw), shape, position_stats=stats, zone_sigma=np.ones(1), threshold=100.0)(residual, mask)
    assert PostprocessConfig().missing_material_map
    assert shown.pixel_map[12:20, 41:45].min() > 4.0  # the missing tip lights up
    assert hidden.pixel_map[:, 40:].max() == 0.0  # before: nothing outside the part
    assert shown.pixel_map[:, 49:].max() == 0.0 and shown.pixel_map[0:2, :36].max() < 1e-3  # background stays dark
    assert shown.pixel_map[:, 40 + 2 * 4 + 1 :].max() == 0.0  # no farther than two patch lengths
    assert shown.score == hidden.score and np.array_equal(shown.patches.flagged, hidden.patches.flagged)
    np.testing.assert_array_equal(shown.pixel_map[mask], hidden.pixel_map[mask])


def test_default_compares_with_patches_three_lengths_away_so_a_defect_wider_than_a_patch_keeps_its_level():
    defaults = PostprocessConfig()
    assert (defaults.patch_size, defaults.patch_stride, defaults.neighbour_ring) == (8, 4, 6)
    mask = np.ones((96, 96), bool)
    scores = {}
    residual = np.zeros((96, 96), np.float32)
    residual[40:56, 40:56] = 3.0  # two patches wide: every adjacent (stride 4) neighbour of its centre is hot
    for ring in (1, 2, 6):
        processor = PostProcessor(PostprocessConfig(per_position_zscore=False, zones=0, neighbour_ring=ring, analysis_dilation=0), (96, 96))
        scores[16, ring] = processor(residual, mask).score
    assert scores[16, 1] == pytest.approx(1.5)  # half the level is cancelled by the hot adjacent (stride 4) neighbours
    assert scores[16, 2] == pytest.approx(3.0) == scores[16, 6]  # rings 2 and 6 lie off a defect two patches wide
    # a soft defect wider than a patch (a stain, a smear; sigma 8 px): the ring at 2 (8 px) still lies on it
    yy, xx = np.mgrid[:96, :96]
    soft = (3.0 * np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / (2 * 8.0**2))).astype(np.float32)
    for ring in (2, 6):
        processor = PostProcessor(PostprocessConfig(per_position_zscore=False, zones=0, neighbour_ring=ring, analysis_dilation=0), (96, 96))
        scores["soft", ring] = processor(soft, mask).score
    assert scores["soft", 2] < 1.5 < 2.5 < scores["soft", 6]
