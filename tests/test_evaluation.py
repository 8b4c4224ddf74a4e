"""scae evaluate: the real InspectionPipeline with a fake back-end (segment = classical threshold,
reconstruct = blur) on a tiny synthetic dataset, plus unit tests of baselines, shortcut check,
brightness control, patch truth and bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from scae_tf.calibration import calibrate
from scae_tf.config import PostprocessConfig, PreprocessConfig
from scae_tf.errors import ScaeError
from scae_tf.evaluation import calibration_images, evaluate
from scae_tf.evaluation.baselines import EdgeEnergy, ObjectResidualMax, ObjectResidualZMax, WholeImageError
from scae_tf.evaluation.brightness import background_level, match_background
from scae_tf.evaluation.patch_figures import patch_truth
from scae_tf.evaluation.runner import calibrated_threshold, select_samples
from scae_tf.evaluation.shortcut import shortcut_check
from scae_tf.imageio import read_image, write_png
from scae_tf.pipeline import InspectionPipeline
from scae_tf.preprocessing import Preprocessor, fit_preprocess_state
from scae_tf.segmentation_targets import classical_object_mask

REQUIRED = ("image_auroc", "pixel_auroc", "aupro", "accuracy", "precision", "recall", "f1", "confusion_matrix")
METHODS = ("segmentation_guided", "whole_image_error", "object_residual_max", "object_residual_zmax", "edge_energy")


class ThresholdBlurBackend:
    """Back-end contract without networks: classical mask as 'segmentation', a blur as 'reconstruction'."""

    def segment(self, image: np.ndarray) -> np.ndarray:
        return classical_object_mask(image).astype(np.float32)

    def reconstruct(self, crop: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(crop, (0, 0), 1.5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from scae_tf.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("eval") / "screw", seed=3, size=128, n_train=10, n_test_good=4, n_per_defect=2)


@pytest.fixture(scope="module")
def setup(dataset: Path) -> tuple[InspectionPipeline, list[Path]]:
    """Pipeline fitted on 6 train images, calibrated on the 4 others (the 'calibration split')."""
    train = sorted((dataset / "train" / "good").glob("*.png"))
    works = [read_image(p) for p in train]
    state = fit_preprocess_state(works[:6], [classical_object_mask(w) for w in works[:6]],
                                 PreprocessConfig(work_size=128, seg_size=64, crop_height=32, crop_width=96))
    config = PostprocessConfig(patch_size=8, patch_stride=4)
    backend = ThresholdBlurBackend()
    preprocessor = Preprocessor(state)
    calibration = calibrate(backend, preprocessor, config, [preprocessor.work_image(w) for w in works[6:]], [str(p) for p in train[6:]])
    return InspectionPipeline(backend, state, calibration, config), train[6:]


@pytest.fixture(scope="module")
def evaluated(setup, dataset: Path, tmp_path_factory):
    pipeline, calibration = setup
    out = tmp_path_factory.mktemp("report") / "nested" / "report"  # created with its parents
    return evaluate(pipeline, dataset, out, calibration, pixel_size=64, source="fake"), out


def test_evaluate_writes_metrics_plots_and_report(evaluated) -> None:
    evaluation, out = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == evaluation.metrics
    assert metrics["n_images"] == 12 and metrics["n_good"] == 4 and metrics["n_defective"] == 8
    for block in (metrics, metrics["brightness_controlled"]):
        for key in REQUIRED:
            assert key in block
        assert set(block["methods"]) == set(METHODS)
        for method in block["methods"].values():
            assert sum(method["confusion_matrix"].values()) == 12
            for key in ("image_auroc", "pixel_auroc", "aupro"):
                assert 0.0 <= method[key] <= 1.0
        assert block["patch_level"]["n_patches"] > 0
        assert set(block["shortcut"]["statistics"]) == {"mean_brightness", "contrast"}
    assert set(metrics["detection_rates"]) == {"good", "scratch", "pit", "thread", "contamination"}
    assert metrics["detection_rates"]["good"]["n"] == 4
    assert set(metrics["methods"]["edge_energy"]["per_type_auroc"]) == {"scratch", "pit", "thread", "contamination"}
    assert len(metrics["images"]) == 12
    for name in ("roc.png", "confusion_matrix.png", "score_vs_brightness.png"):
        assert (out / name).stat().st_size > 1000
    cm = metrics["confusion_matrix"]
    examples = {"examples_caught.png": cm["tp"], "examples_missed.png": cm["fn"], "examples_false_alarms.png": cm["fp"]}
    for name, count in examples.items():
        assert (out / name).is_file() == (count > 0)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 + sum(count > 0 for count in examples.values())
    assert "http://" not in html and "https://" not in html
    assert "object_residual_max" in html and "Shortcut check" in html
    assert not list(out.glob("*.tmp*"))


def test_report_opens_with_the_verdict_then_examples(evaluated) -> None:
    evaluation, out = evaluated
    cm = evaluation.metrics["confusion_matrix"]
    html = (out / "report.html").read_text()
    verdict = f"Caught {cm['tp']} of {cm['tp'] + cm['fn']} defective parts"
    flagged = f"flagged {cm['fp']} of {cm['fp'] + cm['tn']} good parts"
    assert verdict in html and flagged in html
    assert "1 % false-alarm target" in html and f"{evaluation.metrics['threshold']:.3f}" in html
    order = [html.index(text) for text in (verdict, "Caught defects", "Missed defects", "False alarms",
                                           "Method vs baselines")]
    assert order == sorted(order)
    assert "green contour" not in html and "ground-truth defect outline (magenta)" in html
    assert "object outline (green)" in html


def test_verdict_says_plainly_when_few_defects_are_caught() -> None:
    from scae_tf.evaluation.verdict import verdict_sentences

    counts = {"caught": 1, "defective": 32, "flagged": 0, "good": 16, "threshold": 13.1,
              "target_false_alarm_rate": 0.01, "image_auroc": 0.61}
    headline, setting, reading = verdict_sentences(counts)
    assert headline.startswith("Caught 1 of 32 defective parts (3 %); flagged 0 of 16 good parts (0 %)")
    assert "13.100" in setting and "1 % false-alarm target" in setting
    assert reading.startswith("It misses most defects: its scores barely separate")
    ranked = verdict_sentences({**counts, "image_auroc": 0.9})[2]
    assert "the threshold sits above most defects' scores" in ranked
    good = verdict_sentences({**counts, "caught": 31, "flagged": 2, "image_auroc": 0.99})[2]
    assert good.startswith("It catches nearly every defect") and "More good parts were flagged" in good


def test_examples_are_kept_per_outcome_and_spread_over_types() -> None:
    from scae_tf.evaluation.examples import CAUGHT, FALSE_ALARM, MISSED, ExampleKeeper, outcome, pick

    assert outcome("good", True) == FALSE_ALARM and outcome("pit", True) == CAUGHT and outcome("pit", False) == MISSED
    keeper = ExampleKeeper(per_type=2)
    assert [keeper.wants("pit", True) for _ in range(3)] == [True, True, False]
    assert keeper.wants("pit", False) and keeper.wants("good", True)

    class Thumb:
        def __init__(self, defect_type: str, anomalous: bool):
            self.defect_type, self.anomalous = defect_type, anomalous

    thumbs = [Thumb("pit", True), Thumb("pit", True), Thumb("scratch", True), Thumb("scratch", False), Thumb("good", True)]
    assert [t.defect_type for t in pick(thumbs, CAUGHT, 2)] == ["pit", "scratch"]
    assert [t.defect_type for t in pick(thumbs, CAUGHT)] == ["pit", "scratch", "pit"]
    assert pick(thumbs, FALSE_ALARM) == [thumbs[4]] and pick(thumbs, MISSED) == [thumbs[3]]


def test_method_figures_follow_the_pipeline_verdicts(evaluated, setup, dataset: Path) -> None:
    evaluation, _ = evaluated
    pipeline, _ = setup
    metrics = evaluation.metrics
    first = metrics["images"][0]
    result = pipeline.inspect(read_image(dataset / "test" / first["name"]))
    assert first["scores"]["segmentation_guided"] == pytest.approx(result.score)
    assert first["predicted"]["segmentation_guided"] == result.anomalous
    assert metrics["threshold"] == pytest.approx(pipeline.threshold)
    predicted = np.array([image["predicted"]["segmentation_guided"] for image in metrics["images"]])
    labels = np.array([image["label"] for image in metrics["images"]])
    assert metrics["confusion_matrix"]["tp"] == int(np.sum(predicted & (labels == 1)))


def test_baseline_thresholds_come_from_calibration_images_only(evaluated, setup, dataset: Path, tmp_path: Path) -> None:
    evaluation, _ = evaluated
    pipeline, calibration = setup
    # Recompute the whole-image baseline threshold from the calibration images by hand.
    scores = [float(pipeline.inspect(read_image(p)).residual.mean()) for p in calibration]
    expected = calibrated_threshold(scores, pipeline.config.target_false_alarm_rate, pipeline.config.threshold_method)
    assert evaluation.metrics["methods"]["whole_image_error"]["threshold"] == pytest.approx(expected)
    # A different test subset (other labels) leaves every threshold unchanged.
    subset = evaluate(pipeline, dataset, tmp_path, calibration, pixel_size=64, limit=5, brightness_control=False)
    assert subset.metrics["n_images"] == 5
    for name in METHODS:
        assert subset.metrics["methods"][name]["threshold"] == evaluation.metrics["methods"][name]["threshold"]
    assert "brightness_controlled" not in subset.metrics


def test_method_operating_points_use_its_out_of_sample_calibration_scores(evaluated, setup, dataset: Path, tmp_path: Path) -> None:
    evaluation, _ = evaluated
    pipeline, calibration = setup
    method = evaluation.metrics["methods"]["segmentation_guided"]
    loo = pipeline.calibration.max_statistics
    in_sample = [pipeline.inspect(read_image(p)).score for p in calibration]
    assert max(in_sample) < max(loo)  # scored against statistics that include it, a good image looks better
    rule = pipeline.config.threshold_method
    for rate, point in method["at_false_alarm_rate"].items():
        assert point["threshold"] == pytest.approx(calibrated_threshold(loo, float(rate), rule))
    assert method["calibration_scores"]["max"] == pytest.approx(max(loo))
    # The baselines' calibration images do not change the method's operating points.
    others = sorted((dataset / "train" / "good").glob("*.png"))[:4]
    elsewhere = evaluate(pipeline, dataset, tmp_path, others, pixel_size=64, limit=4, brightness_control=False)
    points = elsewhere.metrics["methods"]["segmentation_guided"]["at_false_alarm_rate"]
    assert {rate: p["threshold"] for rate, p in points.items()} == {rate: p["threshold"] for rate, p in method["at_false_alarm_rate"].items()}


@pytest.fixture(scope="module")
def biased_dataset(dataset: Path, tmp_path_factory) -> Path:
    """The same test set with every defective image 25 % brighter (the MVTec screw bias, inverted)."""
    root = tmp_path_factory.mktemp("biased") / "screw"
    shutil.copytree(dataset, root)
    for path in (root / "test").rglob("*.png"):
        if path.parent.name != "good":
            write_png(path, np.clip(read_image(path) * 1.25, 0, 1))
    return root


def test_shortcut_warning_and_brightness_control(setup, biased_dataset: Path, tmp_path: Path, caplog) -> None:
    pipeline, calibration = setup
    with caplog.at_level(logging.WARNING):
        evaluation = evaluate(pipeline, biased_dataset, tmp_path, calibration, pixel_size=64)
    raw = evaluation.metrics["shortcut"]
    assert raw["statistics"]["mean_brightness"]["auroc_either_direction"] == 1.0
    assert raw["statistics"]["mean_brightness"]["direction"] == "higher = defective"
    assert raw["warning"] and "mean brightness" in raw["warning"]
    assert any("trivial global statistics" in r.message for r in caplog.records)
    controlled = evaluation.metrics["brightness_controlled"]["shortcut"]["statistics"]["mean_brightness"]
    assert controlled["auroc_either_direction"] < 0.9
    assert "Brightness-controlled" in (tmp_path / "report.html").read_text()


def test_shortcut_check_orientation_and_correlations() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    brightness = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    contrast = np.array([0.5, 0.1, 0.4, 0.2, 0.3, 0.35])
    follows = brightness * 2
    result = shortcut_check(labels, {"mean_brightness": -brightness, "contrast": contrast}, {"m": follows})
    assert result["statistics"]["mean_brightness"]["auroc"] == 0.0
    assert result["statistics"]["mean_brightness"]["auroc_either_direction"] == 1.0
    assert result["statistics"]["mean_brightness"]["direction"] == "lower = defective"
    assert result["warning"] is not None and "contrast" not in result["warning"]
    assert result["spearman_score_vs_brightness"]["m"]["all"] == pytest.approx(-1.0)
    quiet = shortcut_check(labels, {"mean_brightness": np.array([1, 2, 3, 3, 2, 1.0]), "contrast": contrast}, {})
    assert quiet["warning"] is None


def test_background_level_and_match_background() -> None:
    image = np.full((20, 20), 0.4, np.float32)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    image[mask] = 0.1
    assert background_level(image, mask) == pytest.approx(0.4)
    assert background_level(cv2.resize(image, (40, 40), interpolation=cv2.INTER_NEAREST), mask) == pytest.approx(0.4)
    scaled = match_background(image, 0.4, 0.6)
    assert background_level(scaled, mask) == pytest.approx(0.6)
    assert scaled[mask].mean() == pytest.approx(0.15)
    assert match_background(image, 0.4, 4.0).max() == 1.0  # clipped


class _View:
    def __init__(self, crop, crop_mask, residual):
        self.crop, self.crop_mask, self.residual = crop, crop_mask, residual


def test_baselines_on_hand_made_crops() -> None:
    mask = np.zeros((32, 64), bool)
    mask[8:24, 8:56] = True
    residual = np.zeros((32, 64), np.float32)
    residual[0:2, 0:2] = 1.0  # off the object (beyond the smoothing reach): counts for the whole-image error only
    view = _View(np.where(mask, 0.3, 0.8).astype(np.float32), mask, residual)
    assert WholeImageError().score_map(view)[0] == pytest.approx(4 / (32 * 64))
    assert ObjectResidualMax().score_map(view)[0] == pytest.approx(0.0, abs=1e-6)
    residual[16, 30] = 1.0
    score, crop_map = ObjectResidualMax().score_map(view)
    assert score > 0.01 and not crop_map[~mask].any()
    # Edge baseline: good crops vary slightly; a new edge on the object stands out at its position.
    rng = np.random.default_rng(0)
    goods = [_View(view.crop + rng.normal(0, 0.01, mask.shape).astype(np.float32), mask, residual) for _ in range(6)]
    edge = EdgeEnergy()
    edge.fit(goods)
    good_score = max(edge.score_map(g)[0] for g in goods)
    scratched = view.crop.copy()
    scratched[14:16, 20:40] = 0.9
    score, z = edge.score_map(_View(scratched, mask, residual))
    assert score > 3 * good_score
    assert np.unravel_index(np.argmax(z), z.shape)[1] in range(18, 42)
    # Residual z-max: a residual that is always high at one place (a thread) is normal there; a new one is not.
    base = np.zeros(mask.shape, np.float32)
    base[10:14, 40:50] = 0.5
    goods = [_View(view.crop, mask, base + rng.normal(0, 0.01, mask.shape).astype(np.float32)) for _ in range(6)]
    zmax = ObjectResidualZMax()
    zmax.fit(goods)
    assert zmax.score_map(_View(view.crop, mask, base))[0] < 3.0
    spot = base.copy()
    spot[18:20, 20:22] = 0.5
    assert zmax.score_map(_View(view.crop, mask, spot))[0] > 5.0
    assert ObjectResidualMax().score_map(_View(view.crop, mask, spot))[0] <= ObjectResidualMax().score_map(_View(view.crop, mask, base))[0]


def test_patch_truth_counts_overlap() -> None:
    defect = np.zeros((16, 32), bool)
    defect[4, 10] = True
    boxes = np.array([[0, 0, 8, 8], [8, 0, 16, 8], [8, 8, 16, 16], [28, 12, 40, 20]])
    assert patch_truth(boxes, defect).tolist() == [False, True, False, False]
    defect[12:14, 30:32] = True  # 4 pixels inside the last (clipped) box
    assert patch_truth(boxes, defect, min_overlap_pixels=4).tolist() == [False, False, False, True]


def test_select_samples_keeps_every_type(dataset: Path) -> None:
    from scae_tf.data import list_dataset

    samples = list_dataset(dataset, "test")
    chosen = select_samples(samples, 5)
    assert len(chosen) == 5
    assert {s.label for s in chosen} == {0, 1}
    assert select_samples(samples, None) == samples


def test_calibration_images_from_split_manifest_and_override(setup, dataset: Path, tmp_path: Path) -> None:
    _, calibration = setup
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ScaeError, match="no calibration image list"):
        calibration_images(run, dataset)
    (run / "split.json").write_text(json.dumps({"version": 1, "train": [], "validation": [str(p) for p in calibration],
                                                "calibration": [str(p) for p in calibration]}))
    assert calibration_images(run, dataset) == calibration
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"source_run": str(run), "calibration_images": 64}))
    assert calibration_images(bundle, dataset) == calibration
    assert calibration_images(bundle, dataset, override=dataset / "train" / "good")[0].name == "000.png"
    (run / "split.json").write_text(json.dumps({"calibration": ["/nowhere/x.png"]}))
    with pytest.raises(ScaeError, match="not found"):
        calibration_images(run, dataset)


def test_bad_input_errors_and_no_partial_metrics(setup, dataset: Path, tmp_path: Path) -> None:
    pipeline, calibration = setup
    out = tmp_path / "out"
    no_test = tmp_path / "no_test"
    shutil.copytree(dataset / "train", no_test / "train")
    with pytest.raises(ScaeError, match="no test/"):
        evaluate(pipeline, no_test, out, calibration)
    # A defective image whose mask is missing.
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    next((broken / "ground_truth" / "scratch").glob("*.png")).unlink()
    with pytest.raises(ScaeError, match="missing defect mask"):
        evaluate(pipeline, broken, out, calibration)
    # Calibration images taken from the test set would leak test data into the thresholds.
    leaked = sorted((dataset / "test" / "good").glob("*.png"))
    with pytest.raises(ScaeError, match="also test images"):
        evaluate(pipeline, dataset, out, leaked)
    # Too few calibration images.
    with pytest.raises(ScaeError, match="calibration images"):
        evaluate(pipeline, dataset, out, calibration[:1])


def test_resized_test_images_warn(setup, dataset: Path, tmp_path: Path, caplog) -> None:
    pipeline, calibration = setup
    bigger = tmp_path / "bigger"
    shutil.copytree(dataset, bigger)
    for path in (bigger / "test" / "good").glob("*.png"):
        write_png(path, cv2.resize(read_image(path), (192, 192), interpolation=cv2.INTER_LINEAR))
    with caplog.at_level(logging.WARNING):
        evaluation = evaluate(pipeline, bigger, tmp_path / "out", calibration, pixel_size=64, brightness_control=False)
    assert evaluation.metrics["n_images"] == 12
    assert sum("the calibration images are" in r.message for r in caplog.records) == 1


def test_an_unreadable_test_image_is_skipped_named_and_counted(setup, dataset: Path, tmp_path: Path, caplog) -> None:
    """One corrupt file never stops an evaluation: it is skipped with a warning naming it and listed in the
    metrics; only when no good or no defective image is left is it an error."""
    pipeline, calibration = setup
    odd = tmp_path / "odd"
    shutil.copytree(dataset, odd)
    corrupt = sorted((odd / "test" / "good").glob("*.png"))[0]
    corrupt.write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING):
        evaluation = evaluate(pipeline, odd, tmp_path / "out", calibration, pixel_size=64, brightness_control=False)
    assert evaluation.metrics["skipped"] == [f"good/{corrupt.name}"] and evaluation.metrics["n_images"] == 11
    assert f"good/{corrupt.name}" not in [image["name"] for image in evaluation.metrics["images"]]
    assert any(corrupt.name in r.message and "skipped" in r.message for r in caplog.records)
    assert f"1 not evaluated: the image or its mask could not be read: good/{corrupt.name}" in (tmp_path / "out" / "report.html").read_text()
    for path in (odd / "test" / "good").glob("*.png"):
        path.write_bytes(b"not an image")
    with pytest.raises(ScaeError, match="after skipping .* only defective images"):
        evaluate(pipeline, odd, tmp_path / "out2", calibration, pixel_size=64, brightness_control=False)
    assert not (tmp_path / "out2" / "metrics.json").exists()


def test_an_image_of_another_aspect_is_evaluated_with_a_warning(setup, dataset: Path, tmp_path: Path) -> None:
    """One odd image never stops an evaluation: it is judged, its aspect warning on its result and in the
    out-of-distribution list."""
    pipeline, calibration = setup
    odd = tmp_path / "odd"
    shutil.copytree(dataset, odd)
    last = sorted((odd / "test" / "thread").glob("*.png"))[-1]
    write_png(last, cv2.resize(read_image(last), (200, 128), interpolation=cv2.INTER_AREA))
    mask = odd / "ground_truth" / "thread" / f"{last.stem}_mask.png"
    write_png(mask, cv2.resize(read_image(mask), (200, 128), interpolation=cv2.INTER_NEAREST))
    evaluation = evaluate(pipeline, odd, tmp_path / "out", calibration, pixel_size=64, brightness_control=False)
    assert evaluation.metrics["n_images"] == 12 and (tmp_path / "out" / "metrics.json").is_file()
    assert evaluation.metrics["out_of_distribution"] == [f"thread/{last.name}"]
    assert f"judged with a warning: unlike the training parts or images (size, aspect, pose, intensity): thread/{last.name}" in (
        tmp_path / "out" / "report.html"
    ).read_text()


def test_cli_evaluate(setup, dataset: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from scae_tf import cli

    pipeline, calibration = setup
    run = tmp_path / "run"
    run.mkdir()
    out = tmp_path / "report"
    # A run dir without calibration: a one-line error, exit 2, nothing written.
    (run / "split.json").write_text(json.dumps({"calibration": [str(p) for p in calibration]}))
    pipeline.state.save(run / "preprocessing.json")
    code = cli.main(["evaluate", "--bundle", str(run), "--data", str(dataset), "--out", str(out)])
    assert code == 2
    assert "calibration.json" in capsys.readouterr().err
    assert not out.exists()
    monkeypatch.setattr("scae_tf.pipeline.load_pipeline", lambda path, threads=2: pipeline)
    code = cli.main(["evaluate", "--bundle", str(run), "--data", str(dataset), "--out", str(out),
                     "--limit", "6", "--no-brightness-control", "--pixel-size", "32"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 6 and "brightness_controlled" not in metrics
    printed = capsys.readouterr().out
    assert "segmentation_guided" in printed
    cm = metrics["confusion_matrix"]
    assert printed.startswith(f"Caught {cm['tp']} of {cm['tp'] + cm['fn']} defective parts")


def test_patch_counter_with_identity_pose() -> None:
    from types import SimpleNamespace

    from scae_tf.evaluation.patch_figures import PatchCounter
    from scae_tf.pose import Pose

    pose = Pose(centre=(15.5, 7.5), angle=0.0, scale=1.0, crop_size=(16, 32))  # crop == work image
    boxes = np.array([[0, 0, 8, 8], [8, 0, 16, 8], [16, 0, 24, 8], [24, 8, 32, 16]])
    patches = SimpleNamespace(boxes=boxes, flagged=np.array([False, True, True, False]),
                              candidate=np.array([False, True, True, True]))
    defect = np.zeros((16, 32), bool)
    defect[2:4, 10:12] = True  # inside box 1 only
    counter = PatchCounter()
    counter.add(patches, defect, pose)
    counter.add(patches, None, pose)  # a good image: its flagged patches are false positives
    summary = counter.summary()
    assert summary["confusion_matrix"] == {"tn": 4, "fp": 3, "fn": 0, "tp": 1}
    assert summary["all_good_accuracy"] == pytest.approx(7 / 8)
    assert summary["balanced_accuracy"] == pytest.approx((4 / 7 + 1.0) / 2)
    assert summary["candidates_only"]["n_patches"] == 6


def test_position_zscore_calibration_scores_are_leave_one_out() -> None:
    rng = np.random.default_rng(1)
    mask = np.ones((16, 24), bool)
    views = [_View(rng.random((16, 24)).astype(np.float32), mask, rng.random((16, 24)).astype(np.float32))
             for _ in range(5)]
    zmax = ObjectResidualZMax()
    zmax.fit(views)
    loo = zmax.calibration_scores(views)
    for index in range(5):
        rest = np.stack([v.residual for j, v in enumerate(views) if j != index]).astype(np.float64)
        mean, std = rest.mean(axis=0), np.maximum(rest.std(axis=0), zmax._floor)  # floor from all images
        expected = zmax._z_map(views[index].residual, mean.astype(np.float32), std.astype(np.float32), mask)[0]
        assert loo[index] == pytest.approx(expected, rel=1e-4)
        assert loo[index] > zmax.score_map(views[index])[0]  # in-sample scores are biased low


def test_evaluate_on_another_dataset_says_so(dataset: Path, tmp_path: Path, capsys) -> None:
    from scae_tf import cli
    from scae_tf.commands.evaluate import check_same_dataset

    run = tmp_path / "run"
    run.mkdir()
    train = sorted((dataset / "train" / "good").glob("*.png"))
    (run / "split.json").write_text(json.dumps({"version": 2, "train": [str(p) for p in train[:6]],
                                                "validation": [str(p) for p in train[6:]]}))
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    out = tmp_path / "report"
    code = cli.main(["evaluate", "--bundle", str(run), "--data", str(other), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert f"this run was trained on {dataset}; --data points at {other}, a different dataset" in err
    assert "split.json" not in err and "Traceback" not in err
    check_same_dataset(run, dataset)  # the training data itself: fine

    # The training data has moved: fine where its held-out images are, an error where they are not.
    moved = tmp_path / "moved" / "screw"
    (run / "split.json").write_text(json.dumps({"version": 2, "train": [str(moved / "train/good" / p.name) for p in train[:6]],
                                                "validation": [str(moved / "train/good" / p.name) for p in train[6:]]}))
    check_same_dataset(run, other)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "train" / "good").mkdir(parents=True)
    with pytest.raises(ScaeError, match=f"trained on {moved}, which is not there any more"):
        check_same_dataset(run, elsewhere)
