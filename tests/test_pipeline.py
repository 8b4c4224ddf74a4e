"""InspectionPipeline end to end with a fake back-end on synthetic screws (no TensorFlow).

Fake back-end: segment = threshold, reconstruct = Gaussian blur. A blur cannot reproduce a patch
of high-frequency damage on the shaft, so the planted defect has a much larger residual than
its neighbours, while the thread, which the blur also reproduces badly but in the same way on
every good part, is calibrated away.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types

import cv2
import numpy as np
import pytest

from scae_tf.calibration import calibrate
from scae_tf.config import PostprocessConfig, PreprocessConfig, RunConfig, save_json
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, resize, write_png
from scae_tf.pipeline import STAGES, InspectionPipeline, load_pipeline
from scae_tf.pose import warp_to_image
from scae_tf.postprocess.processor import MISSING_MATERIAL_REACH
from scae_tf.preprocessing import Preprocessor, fit_preprocess_state
from scae_tf.references import GoodReferences, part_residual

SIZE = 256
INPUT_SHAPE = (320, 384)  # (height, width): inputs are not square and not the work size
PRE = PreprocessConfig(work_size=256, seg_size=128, crop_height=64, crop_width=192)
# The blur standing in for the CAE smears every silhouette, which a learned CAE does not, and gives a few of
# these 12 calibration parts outlying scores at some angles: the tests check the pipeline's mechanics on the
# exact mask (analysis_dilation 0) with the empirical threshold (the calibration maximum), not the tail model.
POST = PostprocessConfig(patch_size=8, patch_stride=8, neighbour_ring=3, zones=4, analysis_dilation=0, threshold_method="quantile")  # ring 3 at stride 8: 24 px, as the default at stride 4


def draw_screw(rng: np.random.Generator, defect_at: tuple[float, float] | None = None):
    """(input image, defect centre in input pixels or None): head + threaded shaft at a random angle."""
    image = (0.15 + 0.01 * rng.standard_normal((SIZE, SIZE))).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    centre = np.array([128.0, 128.0]) + rng.uniform(-5, 5, 2)
    axis = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-axis[1], axis[0]])
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    u = (xx - centre[0]) * axis[0] + (yy - centre[1]) * axis[1]
    v = (xx - centre[0]) * across[0] + (yy - centre[1]) * across[1]
    head = (u + 60) ** 2 + v**2 < 20**2
    shaft = (u > -55) & (u < 80) & (np.abs(v) < 10)
    on_object = head | shaft
    value = np.where(head, 0.75, 0.6 + 0.12 * np.sin(2 * np.pi * u / 8))
    image[on_object] = value[on_object]
    point = None
    if defect_at is not None:
        point = centre + defect_at[0] * axis + defect_at[1] * across
        spot = on_object & ((xx - point[0]) ** 2 + (yy - point[1]) ** 2 < 16)
        image[spot] = np.clip(image[spot] + 0.35 * rng.standard_normal(int(spot.sum())), 0, 1)
        point = point * np.array([INPUT_SHAPE[1] / SIZE, INPUT_SHAPE[0] / SIZE])  # into input pixels
    stretched = cv2.resize(image, (INPUT_SHAPE[1], INPUT_SHAPE[0]), interpolation=cv2.INTER_LINEAR)
    return stretched, point


class FakeBackend:
    def segment(self, image: np.ndarray) -> np.ndarray:
        return (image > 0.4).astype(np.float32)

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(crop, (0, 0), 2.0)


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    works = [resize(draw_screw(rng)[0], SIZE) for _ in range(12)]
    state = fit_preprocess_state(works, [w > 0.4 for w in works], PRE)
    calibration = calibrate(FakeBackend(), Preprocessor(state), POST, works, names=[f"good/{i}" for i in range(12)])
    return state, calibration


@pytest.fixture(scope="module")
def pipeline(trained):
    state, calibration = trained
    return InspectionPipeline(FakeBackend(), state, calibration, POST)


def test_planted_defect_is_flagged_where_it_is(pipeline):
    rng = np.random.default_rng(7)
    for along in (-20.0, 15.0, 45.0):
        image, point = draw_screw(rng, defect_at=(along, rng.uniform(-3, 3)))
        result = pipeline.inspect(image)
        assert result.anomalous and result.score > result.threshold
        assert result.flagged
        hits = [f for f in result.flagged if f.box[0] - 4 <= point[0] <= f.box[2] + 4 and f.box[1] - 4 <= point[1] <= f.box[3] + 4]
        assert hits, (point, [f.box for f in result.flagged])
        # the anomaly map peaks on the defect (work coordinates)
        peak_y, peak_x = np.unravel_index(np.argmax(result.anomaly_map), result.anomaly_map.shape)
        work_point = point * np.array([SIZE / INPUT_SHAPE[1], SIZE / INPUT_SHAPE[0]])
        assert np.hypot(peak_x - work_point[0], peak_y - work_point[1]) < 16


def test_good_parts_pass(pipeline):
    rng = np.random.default_rng(11)
    for _ in range(3):
        result = pipeline.inspect(draw_screw(rng)[0])
        assert not result.anomalous and not result.flagged
        assert result.score <= result.threshold
        assert not result.warnings


def test_a_part_unlike_the_good_ones_all_over_is_anomalous_and_says_so(trained):
    """The residual's level is scaled away only within the range the good parts showed (postprocess/level.py)."""

    class Blurrier(FakeBackend):
        def reconstruct(self, crop: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(crop, (0, 0), 4.0)  # twice the calibration's blur: a worse rebuild everywhere

    state, calibration = trained
    result = InspectionPipeline(Blurrier(), state, calibration, POST).inspect(draw_screw(np.random.default_rng(11))[0])
    assert result.anomalous
    assert any("all over" in w for w in result.warnings), result.warnings


def test_result_follows_the_contract(pipeline):
    rng = np.random.default_rng(3)
    image, _ = draw_screw(rng, defect_at=(10.0, 0.0))
    result = pipeline.inspect(image)
    assert result.anomaly_map.shape == (SIZE, SIZE) and result.anomaly_map.dtype == np.float32
    assert result.object_mask.shape == (SIZE, SIZE) and result.object_mask.dtype == bool
    # the map covers the analysed region (the object grown by analysis_dilation crop px) and, for an elongated
    # part, the missing-material band of MISSING_MATERIAL_REACH patch lengths around it, where a cut tip shows
    config = pipeline.postprocessor.config
    reach = config.analysis_dilation + (MISSING_MATERIAL_REACH * config.patch_size if config.missing_material_map else 0)
    radius = math.ceil(reach / pipeline.state.crop_scale) + 1
    grown = cv2.dilate(result.object_mask.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)).astype(bool)
    assert result.anomaly_map[~grown].max() == 0.0 and result.anomaly_map.min() >= 0.0
    assert np.array_equal(result.anomaly_map, warp_to_image(result.crop_anomaly_map, result.pose, (SIZE, SIZE)))
    assert result.crop.shape == result.reconstruction.shape == result.residual.shape == (64, 192)
    assert result.crop_mask.shape == (64, 192) and result.crop_anomaly_map.shape == (64, 192)
    assert result.input_shape == INPUT_SHAPE
    assert set(result.timings) == set(STAGES) and all(v >= 0 for v in result.timings.values())
    assert result.timings["decode"] == 0.0
    assert result.anomalous == (result.score > result.threshold)
    table = result.patches
    assert table.flagged.sum() == len(result.flagged) and np.all(table.candidate[table.flagged])
    for patch in result.flagged:
        x0, y0, x1, y1 = patch.box
        assert 0 <= x0 < x1 <= INPUT_SHAPE[1] and 0 <= y0 < y1 <= INPUT_SHAPE[0]
        assert patch.corners.shape == (4, 2)
        assert np.all(patch.corners[:, 0] >= x0 - 1) and np.all(patch.corners[:, 0] <= x1)
        # the crop box centre maps into the image box
        cx, cy = (patch.box_crop[0] + patch.box_crop[2]) / 2 - 0.5, (patch.box_crop[1] + patch.box_crop[3]) / 2 - 0.5
        inverse = result.pose.inverse_matrix()
        wx, wy = inverse @ np.array([cx, cy, 1.0])
        ix, iy = (wx + 0.5) * INPUT_SHAPE[1] / SIZE - 0.5, (wy + 0.5) * INPUT_SHAPE[0] / SIZE - 0.5
        assert x0 <= ix <= x1 and y0 <= iy <= y1


def test_inspect_path_decodes_and_times_it(tmp_path, pipeline):
    rng = np.random.default_rng(5)
    image, _ = draw_screw(rng, defect_at=(20.0, 0.0))
    path = tmp_path / "part.png"
    write_png(path, image)
    from_file = pipeline.inspect_path(path)
    direct = pipeline.inspect(read_image(path))
    assert from_file.score == pytest.approx(direct.score) and from_file.anomalous == direct.anomalous
    assert from_file.timings["decode"] > 0.0
    assert from_file.timings["total"] >= from_file.timings["decode"]
    with pytest.raises(ScaeError, match="no such image"):
        pipeline.inspect_path(tmp_path / "missing.png")


def test_uncalibrated_pipeline_scores_but_never_flags(trained):
    state, _ = trained
    rng = np.random.default_rng(2)
    result = InspectionPipeline(FakeBackend(), state, None, POST).inspect(draw_screw(rng, defect_at=(10.0, 0.0))[0])
    assert not result.anomalous and result.threshold == float("inf") and np.isfinite(result.score)


def test_calibration_made_with_other_settings_is_rejected(trained):
    state, calibration = trained
    with pytest.raises(ScaeError, match="patch_size"):
        InspectionPipeline(FakeBackend(), state, calibration, dataclasses.replace(POST, patch_size=16))


def _write_run_dir(folder, trained) -> None:
    state, calibration = trained
    folder.mkdir()
    state.save(folder / "preprocessing.json")
    calibration.save(folder / "calibration.json")
    save_json(RunConfig(preprocess=PRE, postprocess=POST), folder / "config.json")


def test_load_pipeline_opens_a_run_dir_with_the_keras_backend(tmp_path, trained, monkeypatch):
    loaded = []
    fake_module = types.ModuleType("scae_tf.backends.keras_backend")
    fake_module.load_keras_model = loaded.append
    fake_module.KerasBackend = lambda segmenter, cae: FakeBackend()
    monkeypatch.setitem(sys.modules, "scae_tf.backends.keras_backend", fake_module)
    run_dir = tmp_path / "run"
    _write_run_dir(run_dir, trained)
    pipeline = load_pipeline(run_dir)
    assert loaded == [run_dir / "segmenter.keras", run_dir / "cae.keras"]
    rng = np.random.default_rng(7)
    image, _ = draw_screw(rng, defect_at=(15.0, 0.0))
    assert pipeline.inspect(image).anomalous


@pytest.mark.parametrize("missing", ["calibration.json", "preprocessing.json"])
def test_load_pipeline_names_the_missing_file(tmp_path, trained, missing):
    run_dir = tmp_path / "run"
    _write_run_dir(run_dir, trained)
    (run_dir / missing).unlink()
    with pytest.raises(ScaeError, match=missing.replace(".", r"\.")):
        load_pipeline(run_dir)


def test_load_pipeline_rejects_a_non_folder_and_a_corrupt_calibration(tmp_path, trained):
    with pytest.raises(ScaeError, match="not a folder"):
        load_pipeline(tmp_path / "nothing")
    run_dir = tmp_path / "run"
    _write_run_dir(run_dir, trained)
    (run_dir / "calibration.json").write_text("{")
    with pytest.raises(ScaeError, match="corrupt calibration"):
        load_pipeline(run_dir)


def test_the_residual_is_taken_with_the_calibrations_settings(trained):
    """A bundle's config.json written before a residual setting existed takes today's default for it; the
    calibration knows the value its statistics were made with, and inspection must use that one."""
    state, calibration = trained
    rng = np.random.default_rng(4)
    pre = Preprocessor(state)
    crops = [pre.prepare_image(FakeBackend().segment, resize(draw_screw(rng)[0], SIZE), work=True).crop for _ in range(6)]
    references = GoodReferences.from_crops(np.roll(np.stack(crops), 4, axis=2))  # out of phase: sliding matters
    made_before = dataclasses.replace(
        calibration,
        config=dataclasses.replace(calibration.config, reference_axial_search=0),
        references=references,
        legacy_fields=("reference_axial_search",),
    )
    assert POST.reference_axial_search > 0  # today's default, as an older config.json reads
    result = InspectionPipeline(FakeBackend(), state, made_before, POST).inspect(draw_screw(rng)[0])
    as_made = part_residual(result.crop, result.reconstruction, made_before.config, references)
    assert np.array_equal(result.residual, as_made)
    assert not np.array_equal(as_made, part_residual(result.crop, result.reconstruction, POST, references))
