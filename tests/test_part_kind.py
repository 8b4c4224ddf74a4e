"""Part kinds, foreground without polarity assumption, aspect-keeping frames, colour, skipped
images, the no-part verdict and out-of-distribution warnings (small synthetic images, no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from scae_tf.calibration import calibrate, good_references
from scae_tf.config import PostprocessConfig, PreprocessConfig
from scae_tf.imageio import write_png
from scae_tf.part_kind import foreground_mask, infer_part_kind, part_is_darker
from scae_tf.pipeline import InspectionPipeline
from scae_tf.preprocessing import (
    Preprocessor,
    PreprocessState,
    fit_preprocess_state,
    initial_state,
    seg_shape_for,
)
from scae_tf.runtime.inspection import Record, record_json, record_line

SHAPE = (96, 128)  # (height, width): not square


def ellipse_image(rng, centre, axes, angle, part=0.25, background=0.7, shape=SHAPE, noise=0.01):
    image = (background + noise * rng.standard_normal(shape)).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), angle, 0, 360, 1, -1)
    image[mask > 0] = part + noise * rng.standard_normal(int(mask.sum()))
    return np.clip(image, 0, 1), mask > 0


def headed_bar(rng, centre, angle_deg, length=40, half_width=5, head=10):
    """Mask of a screw-like bar: a thin rod with a round head at one end (a head to turn it by)."""
    mask = np.zeros(SHAPE, np.uint8)
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    start, end = np.asarray(centre) - direction * length / 2, np.asarray(centre) + direction * length / 2
    cv2.line(mask, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, 2 * half_width)
    cv2.circle(mask, tuple(int(v) for v in start), head, 1, -1)
    return mask > 0


def iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_kind_inference_on_synthetic_shapes():
    rng = np.random.default_rng(0)
    bars = [headed_bar(rng, rng.uniform(44, 84, 2), rng.uniform(0, 360)) for _ in range(10)]
    decision = infer_part_kind(bars)
    assert decision.kind == "elongated" and decision.alignment == "pose" and decision.end_ratio > 1.5

    fixed = [ellipse_image(rng, (64 + rng.uniform(-0.5, 0.5), 48), (26, 20), 0)[1] for _ in range(10)]
    decision = infer_part_kind(fixed)
    assert decision.kind == "compact" and decision.alignment == "none" and decision.fixtured

    moving = [ellipse_image(rng, (rng.uniform(35, 93), rng.uniform(30, 66)), (22, 20), 0)[1] for _ in range(10)]
    decision = infer_part_kind(moving)
    assert decision.kind == "compact" and decision.alignment == "translation"

    turning = [ellipse_image(rng, (64, 48), (28, 17), rng.uniform(0, 180))[1] for _ in range(10)]
    assert infer_part_kind(turning).alignment == "rotation"

    # a nail: a head only 3 % of its length, a pointed tip: still a head to turn it by
    nails = []
    for _ in range(10):
        mask = np.zeros((256, 256), np.uint8)
        cv2.rectangle(mask, (28, 125), (228, 131), 1, -1)
        cv2.rectangle(mask, (28, 120), (34, 136), 1, -1)
        cv2.fillPoly(mask, [np.array([[228, 125], [238, 128], [228, 131]])], 1)
        rotation = cv2.getRotationMatrix2D((128, 128), rng.uniform(0, 360), 1.0)
        nails.append(cv2.warpAffine(mask, rotation, (256, 256), flags=cv2.INTER_NEAREST) > 0)
    assert infer_part_kind(nails).kind == "elongated"
    # long but alike at both ends (a capsule, a pin): the head rule would flip it at random, so it is aligned as a compact part
    capsules = [ellipse_image(rng, (64 + rng.uniform(-1, 1), 48), (40, 9), rng.uniform(-1, 1))[1] for _ in range(10)]
    decision = infer_part_kind(capsules)
    assert decision.kind == "compact" and decision.alignment == "none" and decision.end_ratio < 1.15
    assert "ends look alike" in decision.reason
    spinning = [ellipse_image(rng, (64, 48), (40, 9), rng.uniform(0, 180))[1] for _ in range(10)]
    assert infer_part_kind(spinning).kind == "compact" and infer_part_kind(spinning).alignment == "rotation"

    full = [np.ones(SHAPE, bool) for _ in range(4)]
    assert infer_part_kind(full).kind == "surface"
    # an override wins, and says so
    forced = infer_part_kind(bars, kind="compact", fixtured=False)
    assert forced.kind == "compact" and forced.alignment != "none" and "--kind" in forced.reason


@pytest.mark.parametrize("part, background", [(0.2, 0.7), (0.8, 0.3)])
def test_foreground_either_polarity(part, background):
    rng = np.random.default_rng(1)
    image, truth = ellipse_image(rng, (64, 48), (30, 22), 20, part=part, background=background)
    mask = foreground_mask(image)
    assert iou(mask, truth) > 0.85
    assert part_is_darker(image, mask) == (part < background)


def test_foreground_texture_and_colour_only():
    rng = np.random.default_rng(2)
    _, truth = ellipse_image(rng, (64, 48), (30, 22), 0)
    textured = np.full(SHAPE, 0.5, np.float32)
    textured[truth] += 0.15 * rng.standard_normal(int(truth.sum())).astype(np.float32)  # same mean, only texture
    assert iou(foreground_mask(np.clip(textured, 0, 1)), truth) > 0.75
    colour = np.empty((*SHAPE, 3), np.float32)
    colour[:] = (0.2, 0.3, 0.6)  # blue background
    colour[truth] = (0.37, 0.37, 0.37)  # a gray part of about the same brightness
    colour += 0.01 * rng.standard_normal(colour.shape).astype(np.float32)
    assert iou(foreground_mask(colour), truth) > 0.85
    assert not foreground_mask(np.full(SHAPE, 0.5, np.float32) + 0.01 * rng.standard_normal(SHAPE).astype(np.float32)).any()


def compact_state(channels: int = 1, ranges: bool = True):
    """A fixtured compact part on non-square images, fitted like training does."""
    rng = np.random.default_rng(3)
    config = PreprocessConfig(work_size=96, seg_size=64, crop_height=64, crop_width=64)
    images = [ellipse_image(rng, (64, 48), (30, 22), 0)[0] for _ in range(8)]
    if channels == 3:
        images = [np.stack([i, i * 0.8, i * 0.6], axis=-1) for i in images]
    decision = infer_part_kind([foreground_mask(i) for i in images])
    base = initial_state(config, decision, channels, seg_shape_for(images[0].shape[:2], 64, 16))
    pre = Preprocessor(base)
    works = [pre.work_image(i) for i in images]
    masks = [foreground_mask(w) for w in works]
    return fit_preprocess_state(works, masks, config, base, 16), images


def test_non_square_and_small_images_keep_their_aspect(tmp_path):
    state, images = compact_state()
    pre = Preprocessor(state)
    assert state.kind == "compact" and state.alignment == "none"
    assert pre.work_image(images[0]).shape == (96, 128)  # short side = work_size, aspect kept
    assert pre.work_image(np.zeros((64, 200), np.float32)).shape == (96, 300)  # another size in the same dataset
    assert pre.seg_input(pre.work_image(images[0])).shape == (64, 80)  # seg frame: same aspect, multiples of 16
    crop_h, crop_w = pre.crop_size
    assert crop_h % 16 == 0 and crop_w % 16 == 0 and crop_w > crop_h  # the crop follows the wide part
    state.save(tmp_path / "preprocessing.json")
    loaded = PreprocessState.load(tmp_path / "preprocessing.json")
    assert (loaded.kind, loaded.alignment, loaded.keep_aspect, loaded.seg_shape, loaded.config) == (
        state.kind, state.alignment, True, state.seg_shape, state.config)


def test_a_compact_crop_keeps_the_work_images_resolution_beyond_the_elongated_budget():
    """The elongated crop's pixel budget would shrink a part that fills its crop in both directions
    (and its small defects with it); compact_crop_pixels sets a larger budget, never finer than the work image."""
    rng = np.random.default_rng(4)
    images = [ellipse_image(rng, (64, 48), (36, 36), 0)[0] for _ in range(6)]  # a disc 72 px across
    masks = [foreground_mask(i) for i in images]
    decision = infer_part_kind(masks)
    scales = {}
    for pixels in (0, 3600, 10**6):  # the disc's box is ~85x85 = 7225 px
        config = PreprocessConfig(work_size=96, seg_size=64, crop_height=32, crop_width=32, compact_crop_pixels=pixels)
        base = initial_state(config, decision, 1, seg_shape_for(images[0].shape[:2], 64, 16))
        state = fit_preprocess_state(images, masks, config, base, 16)
        assert state.kind == "compact"
        scales[pixels] = state.crop_scale
        crop_h, crop_w = Preprocessor(state).crop_size
        assert min(crop_h, crop_w) >= state.crop_scale * 72  # the whole part fits at that scale
    assert scales[0] < 0.4 and abs(scales[3600] - 0.7) < 0.03 and scales[10**6] == 1.0, scales


def test_old_state_defaults_to_an_elongated_gray_square_frame(tmp_path):
    state, _ = compact_state()
    data = state.to_dict()
    old = {k: data[k] for k in ("config", "crop_scale", "illumination")} | {"version": 1}
    (tmp_path / "preprocessing.json").write_text(json.dumps(old))
    loaded = PreprocessState.load(tmp_path / "preprocessing.json")
    assert (loaded.kind, loaded.alignment, loaded.channels, loaded.keep_aspect) == ("elongated", "pose", 1, False)
    assert Preprocessor(loaded).work_image(np.zeros((60, 80), np.float32)).shape == (96, 96)


def test_colour_round_trip():
    state, images = compact_state(channels=3)
    pre = Preprocessor(state)
    work = pre.work_image(images[0])
    assert work.shape == (96, 128, 3) and pre.seg_input(work).shape == (64, 80, 3)
    prepared = pre.prepare(work, np.asarray(foreground_mask(work), np.float32)[::1, ::1])
    assert prepared.found and prepared.crop.shape == (*pre.crop_size, 3)
    assert pre.work_image(images[0][..., 0]).shape == (96, 128, 3)  # a gray input to a colour model
    assert "gray image" in pre.channel_warning(images[0][..., 0]) and pre.channel_warning(images[0]) is None  # said in its result
    from scae_tf.training.run import is_colour

    assert is_colour(images[0]) and not is_colour(np.repeat(images[0][..., :1], 3, axis=2))


class ThresholdBackend:
    """segment: the part is where the image differs from the background; reconstruct: a blur."""

    def segment(self, image):
        gray = image.mean(axis=2) if image.ndim == 3 else image
        return (np.abs(gray - 0.7) > 0.2).astype(np.float32)

    def reconstruct(self, crop):
        return cv2.GaussianBlur(crop, (0, 0), 1.5)


@pytest.fixture(scope="module")
def compact_pipeline():
    state, images = compact_state()
    pre = Preprocessor(state)
    post = PostprocessConfig(patch_size=8, patch_stride=8, zones=1)
    works = [pre.work_image(i) for i in images]
    calibration = calibrate(ThresholdBackend(), pre, post, works)
    return InspectionPipeline(ThresholdBackend(), state, calibration, post), images


def test_no_part_is_an_anomalous_verdict_with_a_reason(compact_pipeline, tmp_path):
    pipeline, _ = compact_pipeline
    empty = np.full(SHAPE, 0.7, np.float32)
    result = pipeline.inspect(empty)
    assert result.anomalous and result.score == float("inf") and "no part found" in result.reason
    line = record_json(Record(tmp_path / "x.png", result=result, image_size=SHAPE))
    assert line["verdict"] == "anomalous" and line["reason"] == result.reason and line["score"] is None
    assert "no part found" in record_line(Record(tmp_path / "x.png", result=result))
    from scae_tf.overlay import result_overlay

    assert result_overlay(empty, result).shape == (*SHAPE, 3)
    speck = empty.copy()
    speck[40:43, 60:63] = 0.2  # a 3x3 speck is no part either (far smaller than any training part)
    assert pipeline.inspect(speck).reason is not None


def test_out_of_distribution_warning(compact_pipeline):
    pipeline, images = compact_pipeline
    assert pipeline.inspect(images[0]).warnings == []
    rng = np.random.default_rng(9)
    shifted, _ = ellipse_image(rng, (40, 40), (20, 16), 0)  # smaller and elsewhere
    warnings = pipeline.inspect(shifted).warnings
    assert any("part area" in w for w in warnings) and any("position" in w for w in warnings)
    brighter, _ = ellipse_image(rng, (64, 48), (30, 22), 0, part=0.45)
    assert any("intensity" in w for w in pipeline.inspect(brighter).warnings)


def test_odd_training_images_are_skipped_and_named(tmp_path, caplog):
    from scae_tf.training.run import _drop_without_part, _read_images

    good = tmp_path / "good.png"
    write_png(good, np.full((80, 100), 0.5, np.float32))
    small = tmp_path / "small.png"
    write_png(small, np.full((40, 100), 0.5, np.float32))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    skipped: dict[str, list[str]] = {}
    with caplog.at_level(logging.WARNING):
        kept, images = _read_images([str(good), str(small), str(broken)], skipped)
        paths, _, _ = _drop_without_part(kept * 2, images * 2, [np.zeros((80, 100), bool), np.ones((80, 100), bool)], skipped)
    assert kept == [str(good)] and len(paths) == 1
    assert skipped == {"too_small": [str(small)], "unreadable": [str(broken)], "no_part_found": [str(good)]}
    assert all(name in caplog.text for name in (str(small), str(broken)))


def test_surface_is_analysed_whole_in_tiles():
    """A texture filling the frame: no segmentation, the frame reconstructed tile by tile (overlaps
    averaged), per-position statistics off; a planted scratch is flagged where it is."""
    from scae_tf.preprocessing import tile_origins

    assert tile_origins(100, 64) == [0, 32, 36] and tile_origins(64, 64) == [0]
    rng = np.random.default_rng(4)

    def texture(scratch=False):
        image = cv2.GaussianBlur(rng.random((96, 160)).astype(np.float32), (0, 0), 1.2) * 0.6 + 0.2
        if scratch:
            image[40:43, 60:100] = 0.95
        return image

    config = PreprocessConfig(work_size=96, seg_size=64, crop_height=64, crop_width=64)
    images = [texture() for _ in range(8)]
    decision = infer_part_kind([foreground_mask(i) for i in images])
    assert decision.kind == "surface"
    base = initial_state(config, decision, 1, seg_shape_for((96, 160), 64, 16))
    pre = Preprocessor(base)
    works = [pre.work_image(i) for i in images]
    state = fit_preprocess_state(works, [np.ones((96, 160), bool)] * 8, config, base, 16)
    pre = Preprocessor(state)
    assert state.frame_shape == (96, 160) and state.tile == 64 and pre.cae_shape == (64, 64) and pre.crop_size == (96, 160)
    assert len(pre.cae_inputs(pre.work_image(images[0]))) == 2 * 4
    assert pre.work_image(np.zeros((120, 200), np.float32)).shape == (96, 160)  # one frame for every image

    class TileBackend:
        def segment(self, image):
            raise AssertionError("a surface is not segmented")

        def reconstruct(self, tile):
            assert tile.shape == (64, 64)
            return cv2.GaussianBlur(tile, (0, 0), 1.0)

    post = PostprocessConfig(patch_size=8, patch_stride=8, zones=1, per_position_zscore=False)
    calibration = calibrate(TileBackend(), pre, post, [pre.work_image(texture()) for _ in range(8)])
    pipeline = InspectionPipeline(TileBackend(), state, calibration, post)
    result = pipeline.inspect(texture(scratch=True))
    assert result.anomalous and result.object_mask.all() and result.reconstruction.shape == (96, 160)
    peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), result.anomaly_map.shape)
    assert 32 <= peak_y <= 51 and 52 <= peak_x <= 108

    # judged against good texture (what `scae train` does for surfaces): the scratch is still found, and with the
    # texture alone (texture_weight 1, the default) the CAE is never run, in calibration or inspection
    class NoCae(TileBackend):
        def reconstruct(self, tile):
            raise AssertionError("a surface judged by its texture alone needs no reconstruction")

    textured = dataclasses.replace(post, texture_model=True, reference_neighbours=0)
    texture_model = good_references(TileBackend(), pre, [pre.work_image(texture()) for _ in range(8)], texture=True)
    calibration = calibrate(NoCae(), pre, textured, [pre.work_image(texture()) for _ in range(8)], references=texture_model)
    assert calibration.references is texture_model
    scratched = texture(scratch=True)
    result = InspectionPipeline(NoCae(), state, calibration, textured).inspect(scratched)
    peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), result.anomaly_map.shape)
    assert result.anomalous and 32 <= peak_y <= 51 and 52 <= peak_x <= 108
    assert result.reconstruction is result.crop and result.timings["reconstruct"] < 0.05
    with_cae = dataclasses.replace(textured, texture_weight=0.5)  # a weight below 1 mixes in the CAE's residual
    goods = [pre.work_image(texture()) for _ in range(8)]
    with pytest.raises(AssertionError, match="needs no reconstruction"):
        calibrate(NoCae(), pre, with_cae, goods, references=texture_model)
    calibration = calibrate(TileBackend(), pre, with_cae, goods, references=texture_model)
    with pytest.raises(AssertionError, match="needs no reconstruction"):
        InspectionPipeline(NoCae(), state, calibration, with_cae).inspect(scratched)
    assert InspectionPipeline(TileBackend(), state, calibration, with_cae).inspect(scratched).anomalous


def test_surfaces_of_any_size_keep_their_aspect_and_grain():
    """Surface images of many sizes and aspects (cut tiles, strips): each keeps its shape and one
    scale, centred in a frame holding the largest; outside the image the frame is not the part. A
    scratch on a strip of a shape no training image had is found where it is; the same strip
    without it is not flagged (stretching it into one frame would change its grain)."""
    from scae_tf.preprocessing import SURFACE_FRAME_LIMIT, surface_frame

    rng = np.random.default_rng(7)

    def texture(shape, scratch=False):
        image = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 1.2) * 0.6 + 0.2
        if scratch:
            image[20:22, 40:90] = 0.95
        return image

    assert surface_frame([(100, 100), (60, 300), (120, 80)]) == (120, 200)  # largest per side, at most 2x the median
    assert SURFACE_FRAME_LIMIT == 2.0
    shapes = [(96, 160), (64, 192), (160, 96), (120, 120), (80, 200), (96, 128)] * 2
    images = [texture(s) for s in shapes]
    config = PreprocessConfig(work_size=96, seg_size=64, crop_height=64, crop_width=64, normalize_illumination=False)
    base = initial_state(config, infer_part_kind([foreground_mask(i) for i in images]), 1, seg_shape_for((96, 160), 64, 16))
    base.work_scale = 1.0
    pre = Preprocessor(base)
    works = [pre.work_image(i) for i in images]
    assert [w.shape for w in works] == shapes  # one scale: nothing stretched
    state = fit_preprocess_state(works, [np.ones(w.shape, bool) for w in works], config, base, 16)
    pre = Preprocessor(state)
    assert state.frame_shape == (160, 200) and pre.crop_size == (160, 200)
    assert pre.work_image(np.zeros((400, 400), np.float32)).shape == (160, 160)  # larger than any: shrunk to fit, aspect kept

    strip = texture((48, 150))
    prepared = pre.prepare_image(None, strip)
    assert prepared.work.shape == (48, 150) and prepared.crop_mask.sum() == 48 * 150
    rows, cols = np.nonzero(prepared.crop_mask)
    np.testing.assert_allclose(prepared.crop[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], strip, atol=1e-5)

    class TileBackend:
        calls = 0

        def segment(self, image):
            raise AssertionError("a surface is not segmented")

        def reconstruct(self, tile):
            TileBackend.calls += 1
            return cv2.GaussianBlur(tile, (0, 0), 1.0)

    small = pre.prepare_image(None, texture((40, 60)))
    pre.reconstruct(TileBackend().reconstruct, small.crop, small.crop_mask)
    assert 0 < TileBackend.calls < len(pre.cae_inputs(small.crop))  # the frame around a small image is not reconstructed
    post = PostprocessConfig(patch_size=8, patch_stride=8, zones=1, per_position_zscore=False, texture_model=True, reference_neighbours=0)
    model = good_references(TileBackend(), pre, [pre.work_image(texture(s)) for s in shapes], texture=True)
    calibration = calibrate(TileBackend(), pre, post, [pre.work_image(texture(s)) for s in shapes], references=model)
    pipeline = InspectionPipeline(TileBackend(), state, calibration, post)
    scratched = pipeline.inspect(texture((48, 150), scratch=True))
    assert scratched.anomalous and scratched.anomaly_map.shape == (48, 150)
    peak_y, peak_x = np.unravel_index(np.argmax(scratched.anomaly_map), scratched.anomaly_map.shape)
    assert 14 <= peak_y <= 28 and 34 <= peak_x <= 96
    assert not pipeline.inspect(texture((48, 150))).anomalous
    assert not any("larger than the training" in w for w in scratched.warnings)
    assert any("shrunk by 0.53" in w for w in pipeline.inspect(texture((300, 200))).warnings)  # 300 rows into a 160-row frame


def test_an_unfinished_run_can_be_rerun_with_other_settings(tmp_path, caplog):
    import dataclasses

    from scae_tf.artifacts import RunDir
    from scae_tf.config import RunConfig, save_json
    from scae_tf.errors import ScaeError
    from scae_tf.training.run import _check_resume_compatible

    run = RunDir(tmp_path)
    run.checkpoints.mkdir()
    save_json(RunConfig(), run.config_file)
    other = dataclasses.replace(RunConfig(), preprocess=PreprocessConfig(work_size=256))
    with caplog.at_level(logging.WARNING):
        _check_resume_compatible(other, tmp_path)  # failed earlier: discarded, starts over
    assert not run.config_file.exists() and not run.checkpoints.exists() and "starts over" in caplog.text
    save_json(RunConfig(), run.config_file)
    run.summary_file.write_text("{}")  # a finished run keeps its settings
    with pytest.raises(ScaeError, match="different settings"):
        _check_resume_compatible(other, tmp_path)


@pytest.mark.parametrize(
    ("kind", "references", "shift", "bands", "subpixel"), [("elongated", 5, 1, 12, 2), ("compact", 5, 2, 4, 1), ("surface", 0, 1, 12, 2)]
)
def test_nearest_good_references_for_aligned_parts_and_good_texture_only_for_surfaces(kind, references, shift, bands, subpixel):
    from scae_tf.config import RunConfig
    from scae_tf.part_kind import KindDecision
    from scae_tf.training.run import _with_kind

    decision = KindDecision(kind, "none" if kind == "compact" else "pose", 1.0, 0.1, 3.0, 0.0, 0.0, "test")
    post = _with_kind(RunConfig(), decision).postprocess
    assert post.reference_neighbours == references
    assert post.reference_shift == shift  # a fixtured compact part moves a pixel or two more than a canonical pose
    assert post.reference_bands == bands  # a square compact crop cut in 12 tall strips let references explain its defects away
    assert post.reference_subpixel == subpixel  # half-pixel steps for a thread's crests; a compact part's 2-px shift in whole pixels
    assert post.texture_model == (kind == "surface")
    assert post.per_position_zscore == (kind != "surface")
    assert post.missing_material_map == (kind == "elongated")  # around a fixtured washer it lit the textured background


def test_another_aspect_is_a_warning_except_for_a_surface(tmp_path):
    """Surfaces (``Preprocessor.keeps_shape``) take any aspect without a word; for other models another aspect
    changes the part's scale or shape, so it is a warning (on the image's result), never an error that stops an
    evaluation."""
    from types import SimpleNamespace

    from scae_tf.evaluation.runner import ShapeGuard
    from scae_tf.runtime.inspection import aspect_warning, keeps_shape

    surface = SimpleNamespace(preprocessor=SimpleNamespace(keeps_shape=True))
    part = SimpleNamespace(preprocessor=SimpleNamespace(keeps_shape=False))
    assert keeps_shape(surface) and not keeps_shape(part) and not keeps_shape(object())
    shapes = {(100, 100): tmp_path / "a.png"}
    assert ShapeGuard(shapes, surface).check((50, 300), tmp_path / "b.png") is None
    assert "aspect ratio" in ShapeGuard(shapes, part).check((50, 300), tmp_path / "b.png")
    assert ShapeGuard(shapes, part).check((200, 201), tmp_path / "b.png") is None  # another size, same aspect
    mixed = {(100, 100): tmp_path / "a.png", (50, 300): tmp_path / "c.png"}  # calibration images of two aspects
    assert ShapeGuard(mixed, part).check((100, 600), tmp_path / "b.png") is None
    assert "aspect ratio" in ShapeGuard(mixed, part).check((100, 200), tmp_path / "b.png")
    assert aspect_warning((50, 300), [100, 100], 100, surface) is None
    assert aspect_warning((50, 300), [100, 100], 100, part) == aspect_warning((50, 300), [100, 100], 100)


def test_report_thumbnails_keep_the_images_aspect():
    """A portrait or strip image is shown as it is in report.html (long side at the thumbnail size),
    not squashed to a square; flagged patch corners follow the same scale."""
    from types import SimpleNamespace

    from scae_tf.data.layout import Sample
    from scae_tf.evaluation.runner import make_thumbnail

    image = np.zeros((600, 450, 3), np.float32)  # a portrait tyre photo
    patch = SimpleNamespace(corners=np.array([[99.5, 299.5], [199.5, 299.5], [199.5, 399.5], [99.5, 399.5]], np.float32))
    result = SimpleNamespace(anomaly_map=np.zeros((600, 450), np.float32), object_mask=np.ones((600, 450), bool),
                             flagged=[patch], score=2.0, threshold=1.0, anomalous=True)
    thumb = make_thumbnail(Sample(Path("t.png"), 1, "cut"), image, result, np.zeros((600, 450), bool), 256)
    assert thumb.image.shape[:2] == thumb.anomaly_map.shape == thumb.ground_truth.shape == thumb.object_mask.shape == (256, 192)
    np.testing.assert_allclose(thumb.flagged_corners[0][0], [(100 * 192 / 450) - 0.5, (300 * 256 / 600) - 0.5], atol=1e-4)
