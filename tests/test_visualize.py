"""scae_tf.visualize: zone lines agree with the post-processor's zones, profiles, figures from real results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scae_tf import visualize as viz
from scae_tf.calibration import calibrate_residuals
from scae_tf.config import PostprocessConfig, PreprocessConfig
from scae_tf.pipeline import InspectionPipeline
from scae_tf.postprocess import patch_grid, zone_ids
from scae_tf.preprocessing import PreprocessState


@pytest.mark.parametrize("zones", [2, 3, 8])
def test_zone_bounds_separate_the_postprocessors_zones(zones):
    grid = patch_grid(32, 96, 8, 4)
    ids = zone_ids(grid, zones)[0]
    bounds = viz.zone_bounds(96, zones)
    assert bounds.size == zones - 1
    # a patch centre (imshow coordinates: pixel centres at integers) lies between its zone's lines
    centres = grid.xs + (grid.patch_size - 1) / 2.0
    edges = np.concatenate([[-np.inf], bounds, [np.inf]])
    for centre, zone in zip(centres, ids, strict=True):
        assert edges[zone] <= centre <= edges[zone + 1]


def test_zone_bounds_none_for_one_or_finest_zones():
    assert viz.zone_bounds(96, 1).size == 0 and viz.zone_bounds(96, 0).size == 0 and viz.zone_bounds(96, -1).size == 0


def test_axis_profile_is_the_masked_column_mean():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.array([[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]], bool)
    profile = viz.axis_profile([a, a + 1], [mask, mask])
    assert profile[0] == pytest.approx(np.mean([0, 4, 1, 5]))
    assert np.isnan(profile[1]) and np.isnan(profile[3])
    assert profile[2] == pytest.approx(np.mean([2, 10, 3, 11]))


class _FakeBackend:
    """Segments dark pixels; 'reconstructs' a blurred crop, so the residual is real but not zero."""

    def segment(self, image):
        return (image < 0.5).astype(np.float32)

    def reconstruct(self, crop):
        import cv2

        return cv2.GaussianBlur(crop, (5, 5), 1.5)


def _bar_image(rng, defect: bool) -> np.ndarray:
    image = np.full((64, 64), 0.8, np.float32)
    image[26:38, 8:56] = 0.3 + 0.02 * rng.standard_normal((12, 48))
    image[26:38, 8:14] = 0.2  # a head on the left
    if defect:
        image[30:33, 36:39] = 0.6
    return image


def test_figures_render_from_real_results():
    plt = pytest.importorskip("matplotlib.pyplot")
    rng = np.random.default_rng(0)
    pre = PreprocessConfig(work_size=64, seg_size=64, crop_height=16, crop_width=48, normalize_illumination=False)
    state = PreprocessState(config=pre, crop_scale=0.9, illumination=None)
    post = PostprocessConfig(patch_size=8, patch_stride=4, zones=3, per_position_zscore=False)
    plain = InspectionPipeline(_FakeBackend(), state, None, post)
    goods = [plain.inspect(_bar_image(rng, False)) for _ in range(6)]
    calibration = calibrate_residuals([r.residual for r in goods], [r.crop_mask for r in goods], post)
    pipeline = InspectionPipeline(_FakeBackend(), state, calibration, post)
    image = _bar_image(rng, True)
    result = pipeline.inspect(image)
    defect = np.zeros((64, 64), bool)
    defect[30:33, 36:39] = True

    figures = [
        viz.image_grid([image, image], ["a", "b"], contours=[[(result.object_mask, "lime")], [(None, "red")]]),
        viz.patch_decision_figure(result, "bar", zones=3, defect_mask=defect),
        viz.reconstruction_figure([result], ["bar"]),
        viz.axis_profile_figure(goods, zones=3, crop=goods[0].crop),
        viz.zone_sigma_figure(calibration),
        viz.max_statistic_figure(calibration),
        viz.roc_figure({"m": (np.array([0.0, 1.0]), np.array([0.0, 1.0]))}),
    ]
    for figure in figures:
        assert figure.axes
        figure.canvas.draw()  # renders without error
        assert figure.number not in plt.get_fignums()  # detached from pyplot: shown once in notebooks
    assert figures[2].axes[1].get_title() == "CAE reconstruction"
    by_texture = dataclasses.replace(result, reconstruction=result.crop)  # a surface judged by texture: no CAE run
    assert viz.reconstruction_figure([by_texture], ["bar"]).axes[1].get_title().startswith("not reconstructed")
    # the patch figure draws one rectangle per object patch plus candidates and flags
    boxes = [p for p in figures[1].axes[0].patches]
    assert len(boxes) == len(result.patches) + int(result.patches.candidate.sum())
