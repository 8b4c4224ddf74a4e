"""Detection quality benchmark: train (or reuse) a model, export fp32 and int8, evaluate, tabulate.

One table per run (markdown + JSON): image AUROC, accuracy at the calibrated threshold, pixel
AUROC and AUPRO for the segmentation-guided method and each baseline, for every precision, on
the raw test set and on the brightness-controlled one (``scae evaluate`` computes both); and per
defect type the detection rate at the calibrated threshold and the image AUROC of that type
against the good test images.

    python -m benchmarks.quality --out out/quality-synth                      # synthetic default
    python -m benchmarks.quality --data ../shared/data/mvtec_screw_dev --out out/quality-real

The thresholds come from good calibration images only (``scae train`` keeps them aside), never
from test labels, so accuracy is what a user would get. Figures vary between runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.artifacts import PRECISIONS, RunDir
from scae_tf.errors import ScaeError

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
DEFAULT_PRECISIONS = ("fp32", "int8")
TEST_SETS = ("raw", "brightness_controlled")
COLUMNS = ("image_auroc", "accuracy", "pixel_auroc", "aupro")
METHOD = "segmentation_guided"
REFERENCE_ACCURACY = 0.88


def is_finished_run(run_dir: Path) -> bool:
    return RunDir(run_dir).complete


# ---------------------------------------------------------------------------------------------
# Steps


def prepare_data(data: str, out: Path, seed: int = 0, image_size: int = 256) -> Path:
    """``synthetic``: the embedded dataset generated into ``out/data`` (reused when present)."""
    if data != SYNTHETIC:
        path = Path(data)
        if not path.is_dir():
            raise ScaeError("dataset folder not found; pass an MVTec-layout folder or 'synthetic'", path)
        return path
    return synthetic_dataset(out / "data", seed=seed, size=image_size)


def synthetic_dataset(path: Path, **options: Any) -> Path:
    """``generate_dataset(path, **options)``, or the dataset already there (it is written atomically, so its
    dataset.json marks a complete one)."""
    if (path / "dataset.json").is_file():
        log.info("reusing synthetic data %s", path)
        return path
    from scae_tf.synthetic import generate_dataset

    log.info("generating synthetic data into %s", path)
    return generate_dataset(path, force=True, **options)


def prepare_run(
    data: Path, run_dir: Path, config_file: str | None, image_size: int | None, epochs: int | None
) -> tuple[Path, float | None]:
    """Reuse a finished run dir, else train (or resume) into it; returns (run dir, training seconds)."""
    if is_finished_run(run_dir):
        log.info("quality: reusing the trained run %s", run_dir)
        return run_dir, None
    from scae_tf.training import resolve_config, train_run

    config = resolve_config(config_file, image_size, epochs)
    log.info("quality: training %s -> %s", data, run_dir)
    start = time.perf_counter()
    train_run(data, run_dir, config)
    return run_dir, time.perf_counter() - start


def export_precisions(run_dir: Path, out: Path, precisions: Sequence[str], threads: int) -> dict[str, Path]:
    """One bundle per precision under ``out`` (always re-exported: a bundle must match its run)."""
    from scae_tf.exporting import export_bundle

    bundles = {}
    for precision in precisions:
        bundle = out / f"bundle-{precision}"
        log.info("quality: exporting %s as %s", run_dir, precision)
        export_bundle(run_dir, bundle, precision=precision, threads=threads, overwrite=True)
        bundles[precision] = bundle
    return bundles


def evaluate_model(model: Path, data: Path, report_dir: Path, threads: int, limit: int | None) -> dict[str, Any]:
    """``scae evaluate`` on a bundle or run dir; returns its metrics.json."""
    from scae_tf.evaluation import calibration_images, evaluate
    from scae_tf.pipeline import load_pipeline

    log.info("quality: evaluating %s on %s", model, data)
    calibration = calibration_images(model, data)
    pipeline = load_pipeline(model, threads=threads)
    return evaluate(pipeline, data, report_dir, calibration, limit=limit, source=str(model)).metrics


# ---------------------------------------------------------------------------------------------
# Table


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def per_type_auroc(images: list[dict[str, Any]], method: str, score_key: str) -> dict[str, float | None]:
    """Image AUROC of each defect type against the good test images, from metrics.json's image list."""
    from scae_tf.metrics import auroc

    good = [img[score_key][method] for img in images if img["label"] == 0 and score_key in img]
    types = sorted({img["defect_type"] for img in images if img["label"] == 1})
    result: dict[str, float | None] = {}
    for defect in types:
        bad = [img[score_key][method] for img in images if img["defect_type"] == defect and score_key in img]
        if not good or not bad:
            result[defect] = None
            continue
        labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
        result[defect] = _number(auroc(labels, np.asarray(good + bad, dtype=np.float64)))
    return result


def table_rows(metrics: dict[str, Any], precision: str) -> list[dict[str, Any]]:
    """One row per (test set, method) of one evaluation's metrics.json."""
    rows = []
    for test_set in TEST_SETS:
        block = metrics if test_set == "raw" else metrics.get(test_set)
        if not block:
            continue
        score_key = "scores" if test_set == "raw" else "scores_brightness_controlled"
        for method, values in block["methods"].items():
            rates = values.get("detection_rates", {})
            aurocs = values.get("per_type_auroc") or per_type_auroc(metrics.get("images", []), method, score_key)
            per_type = {
                defect: {
                    "detection_rate": _number(rate.get("rate")),
                    "n": rate.get("n"),
                    "image_auroc": aurocs.get(defect),
                }
                for defect, rate in sorted(rates.items())
            }
            rows.append(
                {
                    "test_set": test_set,
                    "precision": precision,
                    "method": method,
                    **{column: _number(values.get(column)) for column in COLUMNS},
                    "f1": _number(values.get("f1")),
                    "false_alarm_rate": _number(rates.get("good", {}).get("rate")),
                    "per_type": per_type,
                }
            )
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The quality table as markdown: overall figures, then per defect type, per test set."""
    rows = report["rows"]
    lines = [f"# Detection quality: {report['dataset_name']}", ""]
    lines.append(
        f"Data `{report['data']}` ({report['n_images']} test images: {report['n_good']} good, "
        f"{report['n_defective']} defective); run `{report['run']}`; thresholds calibrated on good training "
        "images only. Accuracy at the calibrated threshold (reference work: 88 %)."
    )
    lines.append("")
    headline = [r for r in rows if r["method"] == METHOD]
    if headline:
        lines += ["## Summary: segmentation-guided method", ""]
        lines.append("| test set | precision | image AUROC | accuracy | pixel AUROC | AUPRO |")
        lines.append("|---|---|---:|---:|---:|---:|")
        for r in headline:
            lines.append(
                f"| {r['test_set'].replace('_', '-')} | {r['precision']} | {_fmt(r['image_auroc'])} | "
                f"{_fmt(r['accuracy'])} | {_fmt(r['pixel_auroc'])} | {_fmt(r['aupro'])} |"
            )
        lines.append("")
    for test_set in TEST_SETS:
        selected = [r for r in rows if r["test_set"] == test_set]
        if not selected:
            continue
        title = "Raw test set" if test_set == "raw" else "Brightness-controlled test set"
        lines += [f"## {title}", ""]
        lines.append("| method | precision | image AUROC | accuracy | pixel AUROC | AUPRO | F1 | false alarms (good) |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for r in selected:
            lines.append(
                f"| {r['method']} | {r['precision']} | {_fmt(r['image_auroc'])} | {_fmt(r['accuracy'])} | "
                f"{_fmt(r['pixel_auroc'])} | {_fmt(r['aupro'])} | {_fmt(r['f1'])} | {_fmt(r['false_alarm_rate'])} |"
            )
        types = sorted({t for r in selected for t in r["per_type"] if t != "good"})
        lines += ["", f"Per defect type ({title.lower()}): detection rate at the calibrated threshold / image AUROC vs good", ""]
        lines.append("| method | precision | " + " | ".join(types) + " |")
        lines.append("|---|---|" + "---:|" * len(types))
        for r in selected:
            cells = []
            for t in types:
                entry = r["per_type"].get(t, {})
                cells.append(f"{_fmt(entry.get('detection_rate'), 2)} / {_fmt(entry.get('image_auroc'), 2)}")
            lines.append(f"| {r['method']} | {r['precision']} | " + " | ".join(cells) + " |")
        lines.append("")
    deltas = report.get("int8_vs_fp32")
    if deltas:
        lines += ["## int8 against fp32 (segmentation-guided method)", ""]
        for test_set, delta in deltas.items():
            lines.append(
                f"- {test_set}: image AUROC {delta['image_auroc']:+.3f}, accuracy {delta['accuracy']:+.3f} (int8 - fp32)"
                if delta["image_auroc"] is not None and delta["accuracy"] is not None
                else f"- {test_set}: n/a"
            )
        lines.append("")
    shortcut = report.get("shortcut", {})
    if shortcut:
        lines += ["## Shortcut check (raw test set)", ""]
        for stat, values in shortcut.get("statistics", {}).items():
            lines.append(f"- {stat.replace('_', ' ')} alone: AUROC {_fmt(values.get('auroc_either_direction'))} ({values.get('direction')})")
        if shortcut.get("warning"):
            lines.append(f"- warning: {shortcut['warning']}")
        lines.append("")
    lines.append(f"Machine: {report['machine']['cpu_model']}, {report['machine']['usable_cores']} usable cores. "
                 f"Command: `{report['command']}`. Figures vary between runs.")
    return "\n".join(lines) + "\n"


def _delta(rows: list[dict[str, Any]], test_set: str, column: str) -> float | None:
    values = {
        r["precision"]: r[column] for r in rows if r["test_set"] == test_set and r["method"] == METHOD
    }
    if values.get("int8") is None or values.get("fp32") is None:
        return None
    return values["int8"] - values["fp32"]


def build_report(
    evaluations: dict[str, dict[str, Any]], data: Path, run_dir: Path, dataset_name: str, command: str
) -> dict[str, Any]:
    """Combine the metrics.json of every precision into the quality report."""
    from scae_tf.latency import machine_info

    if not evaluations:
        raise ValueError("no evaluations to tabulate")
    rows = [row for precision, metrics in evaluations.items() for row in table_rows(metrics, precision)]
    first = next(iter(evaluations.values()))
    report: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "dataset_name": dataset_name,
        "data": str(data),
        "run": str(run_dir),
        "command": command,
        "n_images": first.get("n_images"),
        "n_good": first.get("n_good"),
        "n_defective": first.get("n_defective"),
        "precisions": list(evaluations),
        "columns": list(COLUMNS),
        "reference_accuracy": REFERENCE_ACCURACY,
        "rows": rows,
        "shortcut": first.get("shortcut", {}),
        "machine": machine_info(),
    }
    if "int8" in evaluations and "fp32" in evaluations:
        report["int8_vs_fp32"] = {
            test_set: {column: _delta(rows, test_set, column) for column in ("image_auroc", "accuracy")}
            for test_set in TEST_SETS
            if any(r["test_set"] == test_set for r in rows)
        }
    return report


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("quality.json", json.dumps(report, indent=2) + "\n"), ("quality.md", markdown_table(report))):
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)
    return written[0], written[1]


# ---------------------------------------------------------------------------------------------
# Entry point


def run_quality(
    out: str | Path,
    data: str = SYNTHETIC,
    run_dir: str | Path | None = None,
    precisions: Sequence[str] = DEFAULT_PRECISIONS,
    config_file: str | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    with_keras: bool = False,
    threads: int = 2,
    limit: int | None = None,
    seed: int = 0,
    command: str = "",
) -> dict[str, Any]:
    """Train or reuse, export ``precisions``, evaluate each, write quality.md/.json into ``out``."""
    out = Path(out)
    if data != SYNTHETIC and not Path(data).is_dir():
        raise ScaeError("dataset folder not found; pass an MVTec-layout folder or 'synthetic'", data)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = prepare_data(data, out, seed=seed, image_size=image_size or 256)
    if data == SYNTHETIC and image_size is None:
        image_size = 256  # the synthetic images' own size
    run, train_seconds = prepare_run(dataset, Path(run_dir) if run_dir else out / "run", config_file, image_size, epochs)
    if train_seconds is not None:
        timings["train"] = train_seconds
    t = time.perf_counter()
    bundles = export_precisions(run, out, precisions, threads)
    timings["export"] = time.perf_counter() - t
    models: dict[str, Path] = dict(bundles)
    if with_keras:
        models["keras"] = run
    evaluations = {}
    for precision, model in models.items():
        t = time.perf_counter()
        evaluations[precision] = evaluate_model(model, dataset, out / f"eval-{precision}", threads, limit)
        timings[f"evaluate_{precision}"] = time.perf_counter() - t
    name = SYNTHETIC if data == SYNTHETIC else Path(data).name
    report = build_report(evaluations, dataset, run, name, command)
    report["seconds"] = {**timings, "total": time.perf_counter() - start}
    write_report(report, out)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for data, run, bundles, evaluations and quality.md/.json")
    parser.add_argument("--data", default=SYNTHETIC, help="dataset folder (MVTec layout), or 'synthetic' (default): generate the embedded one")
    parser.add_argument("--run", type=Path, help="reuse this run dir when finished (else train into it); default OUT/run")
    parser.add_argument("--precisions", nargs="+", default=list(DEFAULT_PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--config", help="training config file (JSON/YAML, any subset of the run config)")
    parser.add_argument("--image-size", type=int, help="training work size (default: the config's; 256 for synthetic)")
    parser.add_argument("--epochs", type=int, help="CAE epochs (also caps the segmenter epochs)")
    parser.add_argument("--keras", action="store_true", help="also evaluate the Keras run dir itself")
    parser.add_argument("--threads", type=int, default=2, help="TFLite threads (default %(default)s)")
    parser.add_argument("--limit", type=int, help="evaluate only N test images (quick look)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    command = "python -m benchmarks.quality " + " ".join(argv)
    try:
        report = run_quality(
            args.out, args.data, args.run, args.precisions, args.config, args.image_size, args.epochs,
            args.keras, args.threads, args.limit, args.seed, command,
        )
    except ScaeError as err:
        print(f"quality: error: {err}", file=sys.stderr)
        return err.exit_code
    print(markdown_table(report))
    print(f"wrote {args.out / 'quality.md'} and {args.out / 'quality.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
