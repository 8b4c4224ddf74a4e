"""``evaluate``: run the inspection pipeline over test/ and measure it against baselines.

One pass over the test images gives, for every image, the method's verdict and score, the
baselines' scores and maps (same crops, same residual), trivial global statistics and patch
truth. A second inspection of each image, scaled so its background level matches the training
images', gives the brightness-controlled block. Thresholds are never set from test labels: the
method's comes from its calibration.json, each baseline's from the good calibration images of the
run (``calibration_images``) with the same false-alarm target and rule as the method.

Image sizes: every image becomes a work image exactly as in training (short side = work size, aspect
kept; a surface at one scale, any shape). A test image whose size differs from the calibration images'
is evaluated with a warning (the part's scale may differ); one whose aspect differs more than the model
takes unharmed (``runtime.inspection.aspect_warning``) is evaluated too, the warning on its result and
the image counted with the out-of-distribution ones: one odd image never stops an evaluation.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.config import save_json
from scae_tf.data.layout import Sample, list_dataset
from scae_tf.errors import ScaeError
from scae_tf.evaluation.baselines import Baseline, calibration_scores, default_baselines
from scae_tf.evaluation.brightness import background_level, global_statistics, match_background
from scae_tf.evaluation.examples import ExampleKeeper
from scae_tf.evaluation.records import Evaluation, PassRecords, Thumbnail
from scae_tf.evaluation.report import write_outputs
from scae_tf.evaluation.shortcut import STATISTICS, shortcut_check
from scae_tf.imageio import read_image, read_mask, resize
from scae_tf.metrics import (
    aupro,
    auroc,
    bootstrap_auroc,
    confusion_matrix,
    detection_rates,
    interval,
    pixel_auroc,
)
from scae_tf.pose import warp_to_image
from scae_tf.progress import progress
from scae_tf.runtime.inspection import aspect_change, aspect_warning, keeps_shape

log = logging.getLogger(__name__)

METHOD = "segmentation_guided"
REPORTED_FALSE_ALARM_RATES = (0.01, 0.05)  # operating points reported beside the tool's own threshold
METHOD_DESCRIPTION = "segmentation-guided patch post-processor (top patches, neighbour deviation, zone sigma)"
RAW = "raw"
CONTROLLED = "brightness_controlled"


@dataclass
class CalibrationView:
    """What the baselines need from a good calibration image."""

    crop: np.ndarray
    crop_mask: np.ndarray
    residual: np.ndarray
    score: float
    background: float


def select_samples(samples: list[Sample], limit: int | None) -> list[Sample]:
    """``limit`` samples evenly spread over the (type-sorted) list, so every type stays represented."""
    if limit is None or limit >= len(samples):
        return samples
    if limit < 2:
        raise ScaeError(f"--limit {limit} is too small: need at least one good and one defective image")
    indices = np.unique(np.linspace(0, len(samples) - 1, limit).round().astype(int))
    return [samples[i] for i in indices]


def check_test_set(samples: list[Sample], data_root: Path, context: str = "") -> None:
    labels = {s.label for s in samples}
    if labels != {0, 1}:
        have = "defective" if 1 in labels else "good" if labels else "no"
        raise ScaeError(f"{context}test/ holds only {have} images; AUROC needs both good and defective test images", data_root)
    missing = [s for s in samples if s.label == 1 and s.mask_path is None]
    if missing:
        raise ScaeError(
            f"{len(missing)} defective image(s) have no ground-truth mask (e.g. {missing[0].path}); "
            "add masks (ground_truth/<type>/<name>_mask.png or masks/<name>_mask.png)",
            data_root,
        )


class ShapeGuard:
    """Test images against the calibration images' sizes and aspects (module docstring): warnings, never an error."""

    def __init__(self, shapes: dict[tuple[int, int], Path], pipeline: Any = None):
        self.shapes = shapes  # each calibration image size, with one image of that size
        self.pipeline = pipeline
        self.warned = False

    def check(self, shape: tuple[int, int], path: Path) -> str | None:
        """The image's aspect warning, for its result, when its aspect is unlike every calibration image's; a size
        no calibration image has, at an aspect one has, is logged once."""
        if shape in self.shapes or keeps_shape(self.pipeline):
            return None
        reference = min(self.shapes, key=lambda size: aspect_change(shape, size))  # the calibration aspect nearest to it
        warning = aspect_warning(shape, list(reference), max(reference), self.pipeline)
        if warning is None and not self.warned:
            log.warning(
                "%s: image is %dx%d but the calibration images are %dx%d (e.g. %s); test images become work images like "
                "training images, so the part's scale may differ (warned once)",
                path, shape[1], shape[0], reference[1], reference[0], self.shapes[reference],
            )
            self.warned = True
        return warning


def _threshold_rule(pipeline: Any) -> tuple[float, str]:
    config = getattr(pipeline, "config", None)
    rate = float(getattr(config, "target_false_alarm_rate", 0.01))
    method = str(getattr(config, "threshold_method", "quantile"))
    return rate, method


def method_good_scores(pipeline: Any) -> list[float] | None:
    """The method's out-of-sample (leave-one-out) scores of its own calibration images, from which
    ``scae inspect --false-alarm-rate`` sets its threshold; None without a calibration. (Its score on
    an image its statistics were made from is in-sample, lower: a threshold set on those would promise
    fewer false alarms than it gives.)"""
    calibration = getattr(pipeline, "calibration", None)
    scores = getattr(calibration, "max_statistics", None)
    return [float(v) for v in scores] if scores else None


def calibrated_threshold(good_scores: Sequence[float], rate: float, method: str) -> float:
    """The method's own image-threshold rule (scae_tf.postprocess.threshold), without its k-sigma floor."""
    from scae_tf.postprocess.threshold import image_threshold

    return image_threshold(np.asarray(good_scores, np.float64), rate, k_sigma=-math.inf, method=method)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> null, NumPy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return _finite(obj)
    return obj


def _inspect(pipeline: Any, image: np.ndarray, path: Path) -> Any:
    try:
        return pipeline.inspect(image)
    except ScaeError as err:
        if err.path is None:
            raise ScaeError(str(err), path) from None
        raise


def calibrate_baselines(
    pipeline: Any, paths: Sequence[Path], baselines: Sequence[Baseline]
) -> tuple[list[CalibrationView], dict[str, float], dict[tuple[int, int], Path]]:
    """Inspect the good calibration images, fit the baselines and set their thresholds; also their sizes, each with
    one image of that size."""
    if len(paths) < 2:
        raise ScaeError(f"need at least 2 calibration images to set baseline thresholds, got {len(paths)}")
    views: list[CalibrationView] = []
    shapes: dict[tuple[int, int], Path] = {}
    for path in progress(paths, desc="calibration images"):
        try:
            image = read_input(pipeline, path)
        except ScaeError as err:
            log.warning("%s; calibration image skipped for the baselines", err)
            continue
        shapes.setdefault(tuple(int(v) for v in image.shape[:2]), path)
        result = _inspect(pipeline, image, path)
        if not result.part_found:  # a good image the segmenter cannot locate: calibration skips it too
            log.warning("%s: calibration image skipped for the baselines: %s", path, result.reason)
            continue
        views.append(
            CalibrationView(
                crop=np.asarray(result.crop, np.float32),
                crop_mask=np.asarray(result.crop_mask, bool),
                residual=np.asarray(result.residual, np.float32),
                score=float(result.score),
                background=background_level(image, np.asarray(result.object_mask, bool)),
            )
        )
    if len(views) < 2:
        raise ScaeError(f"need at least 2 calibration images with a part found to set baseline thresholds, got {len(views)}")
    rate, rule = _threshold_rule(pipeline)
    thresholds = {}
    for baseline in baselines:
        baseline.fit(views)
        thresholds[baseline.name] = calibrated_threshold(calibration_scores(baseline, views), rate, rule)
    return views, thresholds, shapes


def read_input(pipeline: Any, path: Path) -> np.ndarray:
    """A test or calibration image as the pipeline takes it: colour for colour models, else gray."""
    preprocessor = getattr(pipeline, "preprocessor", None)
    return preprocessor.read(path) if preprocessor is not None else read_image(path)


def _baseline_maps(result: Any, baselines: Sequence[Baseline]) -> dict[str, tuple[float, np.ndarray]]:
    work_shape = np.asarray(result.object_mask).shape
    if not getattr(result, "part_found", True):  # no part found: the same verdict for every method
        return {baseline.name: (float("inf"), np.zeros(work_shape, np.float32)) for baseline in baselines}
    out = {}
    for baseline in baselines:
        score, crop_map = baseline.score_map(result)
        out[baseline.name] = (score, warp_to_image(np.asarray(crop_map, np.float32), result.pose, work_shape))
    return out


def _record(
    records: PassRecords,
    image: np.ndarray,
    result: Any,
    ground_truth: np.ndarray,
    baselines: Sequence[Baseline],
    thresholds: dict[str, float],
) -> None:
    records.add_method(METHOD, result.score, result.anomalous, result.anomaly_map)
    records.method_threshold.append(float(result.threshold))
    for name, (score, image_map) in _baseline_maps(result, baselines).items():
        records.add_method(name, score, score > thresholds[name], image_map)
    for name, value in global_statistics(image).items():
        records.statistics[name].append(value)
    records.ground_truth.append(resize(ground_truth, records.pixel_size, "nearest"))
    work_truth = resize(ground_truth, np.asarray(result.object_mask).shape, "nearest")
    records.patches.add(result.patches, work_truth, result.pose)
    for stage, seconds in dict(getattr(result, "timings", {}) or {}).items():
        records.timings.setdefault(stage, []).append(float(seconds))


def _method_block(
    name: str,
    description: str,
    records: PassRecords,
    labels: np.ndarray,
    defect_types: list[str],
    threshold: float,
    calibration_scores: Sequence[float],
    rule: str = "gumbel",
) -> dict[str, Any]:
    scores = np.asarray(records.scores[name])
    predicted = np.asarray(records.predicted[name])
    cm = confusion_matrix(labels, predicted)
    gt = records.ground_truth
    block: dict[str, Any] = {
        "description": description,
        "image_auroc": auroc(labels, scores),
        "pixel_auroc": pixel_auroc(records.maps[name], gt),
        "aupro": aupro(records.maps[name], gt) if any(m.any() for m in gt) else float("nan"),
        "threshold": threshold,
        **cm.summary(),
        "detection_rates": detection_rates(defect_types, predicted),
        "per_type_auroc": per_type_auroc(labels, scores, defect_types),
    }
    if len(calibration_scores):
        # Out-of-sample scores of good images (leave-one-out for the method and the per-position
        # baselines): the operating points at other false-alarm rates are the thresholds
        # `scae inspect --false-alarm-rate` would set.
        good = np.asarray(calibration_scores, np.float64)
        block["calibration_false_alarm_rate"] = float(np.mean(good > threshold))
        block["calibration_scores"] = {"median": float(np.median(good)), "max": float(np.max(good))}
        block["at_false_alarm_rate"] = {
            f"{rate:g}": _operating_point(labels, scores, calibrated_threshold(good, rate, rule))
            for rate in REPORTED_FALSE_ALARM_RATES
        }
    return block


def _operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Defects caught and good parts flagged on the test set at one threshold."""
    flagged = scores > threshold
    return {
        "threshold": float(threshold),
        "caught": int(np.sum(flagged & (labels == 1))),
        "defective": int(np.sum(labels == 1)),
        "flagged_good": int(np.sum(flagged & (labels == 0))),
        "good": int(np.sum(labels == 0)),
    }


def per_type_auroc(labels: np.ndarray, scores: np.ndarray, defect_types: list[str]) -> dict[str, float]:
    """Image AUROC of each defect type against the good images (which defects a method can rank)."""
    types = np.asarray(defect_types)
    good = labels == 0
    return {
        name: auroc(labels[good | (types == name)], scores[good | (types == name)])
        for name in sorted(set(defect_types))
        if name != "good" and np.any(labels[types == name] == 1)
    }


def summarise_pass(
    records: PassRecords,
    labels: np.ndarray,
    defect_types: list[str],
    baselines: Sequence[Baseline],
    thresholds: dict[str, float],
    calibration: list[CalibrationView],
    where: str,
    rule: str = "gumbel",
    method_good: Sequence[float] | None = None,
) -> dict[str, Any]:
    """``method_good``: the method's out-of-sample good-image scores (``method_good_scores``); without
    them its scores of the calibration images are used."""
    method_thresholds = np.unique(records.method_threshold)
    if method_good is None:
        method_good = [view.score for view in calibration]
    methods = {
        METHOD: _method_block(
            METHOD, METHOD_DESCRIPTION, records, labels, defect_types, float(method_thresholds[0]), method_good, rule
        )
    }
    if method_thresholds.size > 1:
        methods[METHOD]["threshold_note"] = "per-image thresholds differ; the first is shown"
    for baseline in baselines:
        methods[baseline.name] = _method_block(
            baseline.name, baseline.description, records, labels, defect_types, thresholds[baseline.name],
            calibration_scores(baseline, calibration), rule,
        )
    resampled = bootstrap_auroc(labels, {name: np.asarray(v) for name, v in records.scores.items()})
    for name, values in resampled.items():
        methods[name]["image_auroc_ci95"] = list(interval(values))
        if name != METHOD:
            methods[name]["image_auroc_minus_method_ci95"] = list(interval(values - resampled[METHOD]))
    statistics = {name: np.asarray(values) for name, values in records.statistics.items()}
    shortcut = shortcut_check(labels, statistics, {k: np.asarray(v) for k, v in records.scores.items()}, where=where)
    block = {key: methods[METHOD][key] for key in (
        "image_auroc", "image_auroc_ci95", "pixel_auroc", "aupro", "accuracy", "precision", "recall", "f1", "confusion_matrix",
        "threshold", "detection_rates",
    )}
    block["at_false_alarm_rate"] = methods[METHOD].get("at_false_alarm_rate", {})
    block.update({
        "patch_level": records.patches.summary(),
        "methods": methods,
        "shortcut": shortcut,
        "timings_mean_s": {stage: float(np.mean(v)) for stage, v in records.timings.items()},
    })
    return block


def evaluate(
    pipeline: Any,
    data_root: str | Path,
    out_dir: str | Path,
    calibration_paths: Sequence[str | Path],
    *,
    brightness_control: bool = True,
    limit: int | None = None,
    pixel_size: int = 256,
    baselines: Sequence[Baseline] | None = None,
    source: str | None = None,
    examples_per_type: int = 2,
) -> Evaluation:
    """Evaluate ``pipeline`` on ``data_root``/test and write metrics.json, plots and report.html to ``out_dir``.

    ``calibration_paths`` are good images never trained on (the run's calibration split); the
    baselines' thresholds come from them. metrics.json is written last and atomically, so a
    failed evaluation never leaves a partial one.
    """
    started = time.perf_counter()
    data_root = Path(data_root)
    out_dir = Path(out_dir)
    samples = select_samples(list_dataset(data_root, "test"), limit)
    check_test_set(samples, data_root)
    if out_dir.exists() and not out_dir.is_dir():
        raise ScaeError("output path exists and is not a folder; choose another --out", out_dir)
    baselines = list(default_baselines() if baselines is None else baselines)
    overlap = {Path(p).resolve() for p in calibration_paths} & {s.path.resolve() for s in samples}
    if overlap:
        raise ScaeError(
            f"{len(overlap)} calibration image(s) are also test images (e.g. {sorted(overlap)[0]}); thresholds must "
            "come from good images outside the test set: pass --calibration with other images"
        )

    calibration, thresholds, shapes = calibrate_baselines(pipeline, [Path(p) for p in calibration_paths], baselines)
    guard = ShapeGuard(shapes, pipeline)
    reference_background = float(np.median([view.background for view in calibration]))

    passes = {RAW: PassRecords(pixel_size)}
    if brightness_control:
        passes[CONTROLLED] = PassRecords(pixel_size)
    thumbnails: list[Thumbnail] = []  # the report's examples: caught and missed defects, false alarms
    examples = ExampleKeeper(per_type=examples_per_type)
    backgrounds = []
    no_part: list[str] = []  # test images where no part was found (a verdict, not an error)
    out_of_distribution: list[str] = []  # test images unlike the training parts or images (warnings on their results)
    skipped: list[str] = []  # test images that cannot be read, or whose mask cannot: skipped, named, counted
    evaluated: list[Sample] = []
    for sample in progress(samples, desc="evaluating", total=len(samples)):
        try:
            image = read_input(pipeline, sample.path)
            truth = read_mask(sample.mask_path, image.shape[:2]) if sample.mask_path else np.zeros(image.shape[:2], bool)
        except ScaeError as err:
            log.warning("%s; skipped", err if err.path is not None else f"{sample.path}: {err}")
            skipped.append(sample.name)
            continue
        evaluated.append(sample)
        shape_warning = guard.check(image.shape[:2], sample.path)
        result = _inspect(pipeline, image, sample.path)
        if shape_warning:
            log.warning("%s: %s", sample.path, shape_warning)
            result.warnings.append(shape_warning)
        if not result.part_found:
            log.warning("%s: no part found, judged anomalous (score inf) by every method: %s", sample.path, result.reason)
            no_part.append(sample.name)
        if result.warnings:
            out_of_distribution.append(sample.name)
        _record(passes[RAW], image, result, truth, baselines, thresholds)
        background = background_level(image, np.asarray(result.object_mask, bool))
        backgrounds.append(background)
        if examples.wants(sample.defect_type, bool(result.anomalous)):
            thumbnails.append(make_thumbnail(sample, image, result, truth, pixel_size))
        if brightness_control:
            controlled = match_background(image, background, reference_background)
            controlled_result = _inspect(pipeline, controlled, sample.path)
            _record(passes[CONTROLLED], controlled, controlled_result, truth, baselines, thresholds)

    if skipped:
        check_test_set(evaluated, data_root, f"after skipping {len(skipped)} unreadable image(s), ")
    samples = evaluated
    labels = np.array([s.label for s in samples])
    defect_types = [s.defect_type for s in samples]
    rule = _threshold_rule(pipeline)[1]
    method_good = method_good_scores(pipeline)
    raw = summarise_pass(passes[RAW], labels, defect_types, baselines, thresholds, calibration, "raw test set", rule, method_good)
    metrics: dict[str, Any] = {
        "n_images": len(samples),
        "n_good": int(np.sum(labels == 0)),
        "n_defective": int(np.sum(labels == 1)),
        "no_part_found": no_part,
        "skipped": skipped,
        "out_of_distribution": out_of_distribution,
        "calibration_images_skipped": len(calibration_paths) - len(calibration),
        "source": source,
        "data": str(data_root),
        "calibration": {
            "n_images": len(calibration),
            "rule": "thresholds on good calibration images only (never test labels); baselines use the "
            "method's target false-alarm rate and threshold rule",
            "target_false_alarm_rate": _threshold_rule(pipeline)[0],
            "threshold_method": _threshold_rule(pipeline)[1],
        },
        "pixel_metrics_resolution": pixel_size,
        **raw,
    }
    if brightness_control:
        controlled = summarise_pass(
            passes[CONTROLLED], labels, defect_types, baselines, thresholds, calibration, "brightness-controlled test set", rule,
            method_good,
        )
        controlled["reference_background"] = reference_background
        controlled["definition"] = (
            "every test image scaled so the median of its non-object pixels equals the median background level "
            "of the good calibration (training) images; thresholds unchanged"
        )
        metrics[CONTROLLED] = controlled
    metrics["images"] = [
        {
            "name": s.name,
            "label": s.label,
            "defect_type": s.defect_type,
            "background_level": backgrounds[i],
            **{stat: passes[RAW].statistics[stat][i] for stat in STATISTICS},
            "scores": {name: values[i] for name, values in passes[RAW].scores.items()},
            "predicted": {name: values[i] for name, values in passes[RAW].predicted.items()},
            **(
                {"scores_brightness_controlled": {n: v[i] for n, v in passes[CONTROLLED].scores.items()}}
                if brightness_control
                else {}
            ),
        }
        for i, s in enumerate(samples)
    ]
    metrics["seconds"] = time.perf_counter() - started
    metrics = _clean(metrics)
    evaluation = Evaluation(metrics=metrics, labels=labels, passes=passes, thumbnails=thumbnails)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(evaluation, out_dir)
    save_json(metrics, out_dir / "metrics.json", sort_keys=False, allow_nan=False)
    return evaluation


def make_thumbnail(sample: Sample, image: np.ndarray, result: Any, truth: np.ndarray, size: int) -> Thumbnail:
    """The report's picture of one result: the long side ``size`` px, the image's aspect kept."""
    height, width = image.shape[:2]
    shape = (max(1, round(height * size / max(height, width))), max(1, round(width * size / max(height, width))))
    scale = np.array([shape[1] / width, shape[0] / height], np.float32)
    return Thumbnail(
        name=sample.name,
        defect_type=sample.defect_type,
        image=resize(image, shape, "area"),
        anomaly_map=resize(np.asarray(result.anomaly_map, np.float32), shape, "area"),
        ground_truth=resize(truth, shape, "nearest"),
        object_mask=resize(np.asarray(result.object_mask, bool), shape, "nearest"),
        flagged_corners=[(np.asarray(p.corners, np.float32) + 0.5) * scale - 0.5 for p in result.flagged],
        score=float(result.score),
        threshold=float(result.threshold),
        anomalous=bool(result.anomalous),
    )

