"""Pre-processing state and Preprocessor: shapes, dtypes, save/load, crop scale, real-data pose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_pose import draw_nail

from scae_tf.config import PreprocessConfig
from scae_tf.errors import ScaeError
from scae_tf.illumination import IlluminationReference
from scae_tf.imageio import read_image
from scae_tf.pose import warp_to_crop
from scae_tf.preprocessing import (
    Preprocessor,
    PreprocessState,
    fill_holes,
    fit_preprocess_state,
    largest_component,
)
from scae_tf.segmentation_targets import classical_object_mask

SMALL = PreprocessConfig(work_size=256, seg_size=64, crop_height=48, crop_width=144)


def nail_image(angle: float, length: float = 150.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask, _ = draw_nail(angle, length=length)
    work = np.full(mask.shape, 0.8, np.float32) + rng.normal(0, 0.01, mask.shape).astype(np.float32)
    work[mask] = 0.3 + rng.normal(0, 0.05, int(mask.sum()))
    return np.clip(work, 0, 1).astype(np.float32), mask


def small_state() -> PreprocessState:
    works, masks = zip(*(nail_image(a, seed=i) for i, a in enumerate([0, 50, 130, 250])), strict=True)
    return fit_preprocess_state(list(works), list(masks), SMALL)


def test_fit_crop_scale_fills_crop_width():
    state = small_state()
    # drawn length 150 (+1 px of pixel coverage), fills 0.9 of 144 px; the head (36 px wide) fits 48 px
    assert abs(state.crop_scale - 0.9 * 144 / 151) < 0.02
    assert state.illumination is not None


def test_crop_scale_is_clamped_so_the_head_fits():
    config = PreprocessConfig(work_size=256, seg_size=64, crop_height=24, crop_width=144)
    work, mask = nail_image(20)
    state = fit_preprocess_state([work], [mask], config)
    _, _, pose = Preprocessor(state).canonical(work, mask)
    crop_mask = warp_to_crop(mask, pose)
    rows = np.nonzero(crop_mask.any(axis=1))[0]
    assert rows[0] > 0 and rows[-1] < 23


def test_state_save_load_round_trip(tmp_path):
    state = small_state()
    path = tmp_path / "preprocessing.json"
    state.save(path)
    loaded = PreprocessState.load(path)
    assert loaded.config == state.config
    assert loaded.crop_scale == state.crop_scale
    assert loaded.illumination == state.illumination
    assert json.loads(path.read_text())["version"] == 2
    assert (loaded.kind, loaded.alignment, loaded.channels, loaded.ranges) == (state.kind, state.alignment, state.channels, state.ranges)
    assert not (tmp_path / "preprocessing.json.tmp").exists()


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ScaeError, match="nope.json"):
        PreprocessState.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScaeError, match="corrupt"):
        PreprocessState.load(bad)
    state = small_state().to_dict()
    for change, message in [({"version": 99}, "version"), ({"crop_scale": -1}, "crop_scale"), ({"illumination": None}, "illumination")]:
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps({**state, **change}))
        with pytest.raises(ScaeError, match=message):
            PreprocessState.load(broken)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**state, "config": {**state["config"], "bogus": 1}}))
    with pytest.raises(ScaeError, match="bogus"):
        PreprocessState.load(unknown)


def test_preprocessor_shapes_and_dtypes():
    pre = Preprocessor(small_state())
    rgb = np.random.default_rng(0).random((300, 400, 3)).astype(np.float64)
    work = pre.work_image(rgb)
    assert work.shape == (256, 256) and work.dtype == np.float32
    assert pre.seg_input(work).shape == (64, 64) and pre.seg_input(work).dtype == np.float32
    nail, mask = nail_image(75)
    crop, crop_mask, pose = pre.canonical(nail, mask)
    assert crop.shape == (48, 144) and crop.dtype == np.float32
    assert crop_mask.shape == (48, 144) and crop_mask.dtype == bool
    assert 0.0 <= crop.min() and crop.max() <= 1.0
    assert pose.crop_size == (48, 144)
    with pytest.raises(ScaeError):
        pre.work_image(np.zeros((4,), np.float32))


def test_mask_from_prob_cleans_up():
    pre = Preprocessor(small_state())
    prob = np.zeros((64, 64), np.float32)
    prob[20:40, 10:50] = 0.9
    prob[28:32, 25:30] = 0.1  # a hole (specular highlight)
    prob[2:5, 2:5] = 0.9  # a speck
    mask = pre.mask_from_prob(prob)
    assert mask.shape == (256, 256) and mask.dtype == bool
    assert not mask[10, 10]  # speck removed
    assert mask[120, 110]  # hole filled
    assert abs(mask.sum() - 80 * 160) < 0.05 * 80 * 160
    assert not pre.mask_from_prob(np.zeros((64, 64), np.float32)).any()


def test_largest_component_and_fill_holes():
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True
    mask[5, 5] = False
    mask[15:17, 15:17] = True
    cleaned = fill_holes(largest_component(mask))
    assert cleaned[5, 5] and not cleaned[16, 16]
    assert not largest_component(np.zeros((5, 5), bool)).any()


def test_whole_frame_mode_uses_identity_pose():
    config = PreprocessConfig(work_size=256, seg_size=64, crop_height=48, crop_width=144, canonical_pose=False)
    work, mask = nail_image(30)
    state = fit_preprocess_state([work], [mask], config)
    crop, crop_mask, pose = Preprocessor(state).canonical(work, mask)
    assert pose.angle == 0.0 and crop.shape == (48, 144)
    assert abs(crop_mask.mean() - mask.mean()) < 0.01


def test_illumination_normalisation_can_be_switched_off():
    config = PreprocessConfig(work_size=256, seg_size=64, crop_height=48, crop_width=144, normalize_illumination=False)
    work, mask = nail_image(30)
    state = fit_preprocess_state([work], [mask], config)
    assert state.illumination is None
    crop, _, pose = Preprocessor(state).canonical(work, mask)
    np.testing.assert_array_equal(crop, warp_to_crop(work, pose))


def test_brightness_change_does_not_change_canonical_crop():
    pre = Preprocessor(small_state())
    work, mask = nail_image(110, seed=3)
    crop, _, _ = pre.canonical(work, mask)
    darker, _, _ = pre.canonical(work * 0.9, mask)
    assert np.abs(crop - darker).max() < 0.01


def head_flips(crops: list[np.ndarray]) -> int:
    """How many crops correlate better with the rotated (180 degrees) median crop than with the median."""
    median = np.median(np.stack(crops), axis=0)
    rotated = median[::-1, ::-1]
    flips = 0
    for crop in crops:
        same = np.corrcoef(crop.ravel(), median.ravel())[0, 1]
        turned = np.corrcoef(crop.ravel(), rotated.ravel())[0, 1]
        flips += int(turned > same)
    return flips


@pytest.mark.real_data
def test_no_head_flips_on_real_train_images(real_data_root):
    paths = sorted((real_data_root / "train" / "good").glob("*.png"))[::8]
    works = [read_image(p) for p in paths]
    masks = [classical_object_mask(w) for w in works]
    state = fit_preprocess_state(works, masks, PreprocessConfig())
    pre = Preprocessor(state)
    crops = [pre.canonical(w, m)[0] for w, m in zip(works, masks, strict=True)]
    assert head_flips(crops) == 0
    assert isinstance(state.illumination, IlluminationReference)
