"""``scae demo``: the whole tour on the embedded synthetic data, in a few minutes on 2 CPU cores.

synth -> train (segmenter, CAE, calibration) -> export int8 -> evaluate -> inspect a few images
-> bench. Every stage calls the same library code as its ``scae`` command (the equivalent
command line is logged so the tour doubles as a tutorial) and writes into its own folder of
``out``, so the results can be opened afterwards::

    OUT/data/            synthetic dataset (MVTec layout)
    OUT/run/             training run dir (models, config, calibration, curves)
    OUT/bundle-int8/     exported TFLite bundle
    OUT/report/          metrics.json, plots, report.html
    OUT/inspect/         overlays and one JSON line per inspected image
    OUT/bench.json       latency against the 0.6 s target
    OUT/summary.json     the figures printed at the end

The demo trains small and fast (256 px work images, few epochs): its figures show the tool
working end to end, not the best it can do; ``benchmarks.quality`` measures that.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scae_tf.config import RunConfig, update_sections
from scae_tf.errors import ScaeError
from scae_tf.quiet import c_stderr_captured

log = logging.getLogger("scae.demo")

MARKER = ".scae-demo"  # marks a folder the demo made, so a re-run may clear it
OWNED = ("data", "demo_config.json", "run", "bundle-int8", "report", "inspect", "bench.json", "summary.json")


@dataclass
class DemoSettings:
    """Sizes and counts of the tour; ``fast`` is a smoke test of the plumbing, not a useful model.

    256 px images keep the tour within minutes on 2 cores. 200 good images with 30 % held out give the
    threshold 60 good images the models never saw (with 18, the 1 % tail was an extrapolation that
    flagged nothing). The U-Net's output bias starts at the object prior, so 8 epochs reach its plateau
    (validation IoU 0.92 at epoch 8, 0.91-0.94 up to 15; 12 s per epoch on 2 cores). 160 CAE epochs
    (about 5.5 min on 2 cores) with early stopping after 30 quiet epochs: the CAE's validation loss sits
    near 0.064 until it learns to rebuild the threads, somewhere between epoch 70 and 105, then falls
    to about 0.02 by epoch 160; 80 epochs and a patience of 8 (the default then) stopped half the samples
    before that (docs/results.md, "Detection quality, embedded synthetic screws").
    """

    seed: int = 0
    image_size: int = 256
    n_train: int = 200
    n_test_good: int = 16
    n_per_defect: int = 8
    epochs: int = 160
    segmenter_epochs: int = 8
    batch_size: int = 16
    inspect_images: int = 4
    bench_images: int = 100
    bench_warmup: int = 10
    threads: int = 2

    # RunConfig sections, like a --config file
    overrides: dict[str, dict[str, Any]] = field(default_factory=lambda: {"training": {"validation_fraction": 0.3, "patience": 30}})

    @classmethod
    def fast(cls) -> DemoSettings:
        """Tiny nets and data (the notebooks' fast settings): every stage runs in about a minute of CPU."""
        return cls(
            image_size=128,
            n_train=16,
            n_test_good=4,
            n_per_defect=2,
            epochs=2,
            segmenter_epochs=8,  # a tiny U-Net can still find nothing after 3 (val IoU 0 to epoch 3 for some seeds)
            batch_size=4,
            inspect_images=2,
            bench_images=5,
            bench_warmup=1,
            overrides={
                "training": {"learning_rate": 0.005, "min_steps_per_epoch": 25},
                "unet": {"base_filters": 8, "depth": 3, "input_downsample": 1},
                "cae": {"base_filters": 8, "max_filters": 32, "latent_filters": 16, "depth": 3},
                "loss": {"scales": 2, "filter_size": 3},
            },
        )

    def run_config(self) -> RunConfig:
        """Default method settings (plus ``overrides``) scaled to the synthetic images (256: work 256, seg 128, crop 64x192)."""
        from scae_tf.training import scale_sizes

        config = scale_sizes(update_sections(RunConfig(), self.overrides, where="demo settings"), self.image_size)
        training = dataclasses.replace(
            config.training,
            epochs=self.epochs,
            segmenter_epochs=self.segmenter_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        return dataclasses.replace(config, training=training)


class _Tour:
    """Runs the stages in order, logging each with its number, equivalent command and duration."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0
        self.durations: dict[str, float] = {}

    def stage(self, name: str, what: str, command: str, work: Callable[[], Any]) -> Any:
        self.index += 1
        log.info("[%d/%d] %s: %s   (same as: %s)", self.index, self.total, name, what, command)
        start = time.perf_counter()
        result = work()
        self.durations[name] = time.perf_counter() - start
        log.info("[%d/%d] %s done in %.0f s", self.index, self.total, name, self.durations[name])
        return result


def prepare_out(out: Path) -> None:
    """Create ``out`` or clear the demo's own files from an earlier run; never touch anything else."""
    if out.exists() and not out.is_dir():
        raise ScaeError("--out exists and is a file; choose a folder", out)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ScaeError("--out exists, is not empty and was not made by `scae demo`; choose another folder", out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `scae demo`; re-running the demo replaces its contents\n")
    for name in OWNED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def run_demo(out: str | Path = "demo_out", fast: bool = False, settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run the tour into ``out`` and return (and write) its summary."""
    settings = settings or (DemoSettings.fast() if fast else DemoSettings())
    out = Path(out)
    prepare_out(out)
    tour = _Tour(total=6)
    started = time.perf_counter()
    data, run_dir, bundle = out / "data", out / "run", out / "bundle-int8"
    report_dir, inspect_dir, bench_json = out / "report", out / "inspect", out / "bench.json"
    config_file = out / "demo_config.json"

    tour.stage(
        "synth", "synthetic screws with subtle defects",
        f"scae synth --out {data} --seed {settings.seed} --size {settings.image_size}",
        lambda: _synth(data, settings),
    )
    tour.stage(
        "train", "segmenter, CAE and calibration on train/good",
        f"scae train --data {data} --out {run_dir} --config {config_file}",
        lambda: _train(data, run_dir, config_file, settings),
    )
    tour.stage("export", "int8 TFLite bundle", f"scae export {run_dir} --out {bundle} --precision int8", lambda: _export(run_dir, bundle))
    metrics = tour.stage(
        "evaluate", "method and baselines on test/",
        f"scae evaluate --bundle {bundle} --data {data} --out {report_dir}",
        lambda: _evaluate(bundle, data, report_dir, settings),
    )
    inspected = tour.stage(
        "inspect", "a few images with overlays",
        f"scae inspect --bundle {bundle} IMAGE... --out {inspect_dir} --json",
        lambda: _inspect(bundle, data, inspect_dir, settings, metrics),
    )
    bench = tour.stage(
        "bench", "latency against the 0.6 s target",
        f"scae bench --bundle {bundle} --data {data} --out {bench_json} --images {settings.bench_images}",
        lambda: _bench(bundle, data, bench_json, settings),
    )
    summary = _summary(out, metrics, bench, inspected, tour.durations, time.perf_counter() - started, fast)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# ---------------------------------------------------------------------------------------------
# Stages (each calls the library code of its `scae` command)


def _synth(data: Path, settings: DemoSettings) -> Path:
    from scae_tf.synthetic import generate_dataset

    return generate_dataset(
        data,
        seed=settings.seed,
        size=settings.image_size,
        n_train=settings.n_train,
        n_test_good=settings.n_test_good,
        n_per_defect=settings.n_per_defect,
    )


def _train(data: Path, run_dir: Path, config_file: Path, settings: DemoSettings) -> dict[str, Any]:
    from scae_tf.config import save_json
    from scae_tf.training import train_run

    config = settings.run_config()
    save_json(config, config_file)
    return train_run(data, run_dir, config)


def _export(run_dir: Path, bundle: Path) -> Path:
    from scae_tf.exporting import export_bundle

    with c_stderr_captured():  # the converter's and LiteRT's own prints
        export_bundle(run_dir, bundle, precision="int8")
    return bundle


def _evaluate(bundle: Path, data: Path, report_dir: Path, settings: DemoSettings) -> dict[str, Any]:
    from scae_tf.evaluation import calibration_images, evaluate
    from scae_tf.pipeline import load_pipeline

    with c_stderr_captured():
        pipeline = load_pipeline(bundle, threads=settings.threads)
    evaluation = evaluate(pipeline, data, report_dir, calibration_images(bundle, data), source=str(bundle))
    return evaluation.metrics


def choose_inspected(samples: list[Any], metrics: dict[str, Any], count: int) -> list[Path]:
    """One good test image, then defective ones the evaluation caught (one per defect type in turn),
    then missed ones: so the demo's overlays show a caught defect whenever there is one."""
    from scae_tf.evaluation.examples import CAUGHT, outcome

    predicted = {image["name"]: image["predicted"]["segmentation_guided"] for image in metrics.get("images", [])}
    good = [s.path for s in samples if s.label == 0][:1]
    defective = [s for s in samples if s.label == 1]
    caught = [s for s in defective if outcome(s.defect_type, bool(predicted.get(s.name))) == CAUGHT]
    missed = [s for s in defective if s not in caught]
    ordered: list[Path] = []
    for group in (caught, missed):
        by_type: dict[str, list[Path]] = {}
        for sample in group:
            by_type.setdefault(sample.defect_type, []).append(sample.path)
        for depth in range(max((len(paths) for paths in by_type.values()), default=0)):
            ordered += [paths[depth] for _, paths in sorted(by_type.items()) if depth < len(paths)]
    return good + ordered[: max(0, count - len(good))]


def typed_inputs(paths: list[Path]) -> list[Any]:
    """The demo's inspected test images, each overlay named by its folder (the defect type) and file:
    ``pit_000``, ``good_000``, whatever else was chosen."""
    from scae_tf.runtime.inspection import InputImage

    return [InputImage(path, Path(f"{path.parent.name}_{path.stem}")) for path in paths]


def _inspect(
    bundle: Path, data: Path, inspect_dir: Path, settings: DemoSettings, metrics: dict[str, Any]
) -> list[dict[str, Any]]:
    """Inspect one good and a few defective test images like `scae inspect --out`: overlays + JSON lines."""
    from scae_tf.data.layout import list_dataset
    from scae_tf.pipeline import load_pipeline
    from scae_tf.runtime.inspection import inspect_inputs, record_json, record_line

    samples = list_dataset(data, "test")
    chosen = choose_inspected(samples, metrics, settings.inspect_images)
    labels = {s.path: s.label for s in samples}
    images = typed_inputs(chosen)
    with c_stderr_captured():
        pipeline = load_pipeline(bundle, threads=settings.threads)
    inspect_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in inspect_inputs(pipeline, images, work_size=settings.image_size, out_dir=inspect_dir):
        if record.error is not None:
            raise ScaeError(record.error)
        log.info("  %s", record_line(record))
        lines.append({**record_json(record), "defective": bool(labels[record.path])})
    (inspect_dir / "inspect.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def _bench(bundle: Path, data: Path, bench_json: Path, settings: DemoSettings) -> dict[str, Any]:
    from scae_tf.latency import format_table, run_benchmark

    report = run_benchmark(
        bundle, data, bench_json, images=settings.bench_images, warmup=settings.bench_warmup, threads=settings.threads
    )
    for line in format_table(report).splitlines():
        log.info("  %s", line)
    return report


def _summary(
    out: Path,
    metrics: dict[str, Any],
    bench: dict[str, Any],
    inspected: list[dict[str, Any]],
    durations: dict[str, float],
    elapsed: float,
    fast: bool,
) -> dict[str, Any]:
    from scae_tf.evaluation.verdict import verdict_counts
    from scae_tf.timing import TARGET_SECONDS

    caught = [r["overlay"] for r in inspected if r["defective"] and r["anomalous"] and r.get("overlay")]
    return {
        "fast": fast,
        "elapsed_seconds": elapsed,
        "stage_seconds": durations,
        "verdict": verdict_counts(metrics),
        "caught_overlay": caught[0] if caught else None,
        "image_auroc": metrics.get("image_auroc"),
        "accuracy": metrics.get("accuracy"),
        "pixel_auroc": metrics.get("pixel_auroc"),
        "aupro": metrics.get("aupro"),
        "median_latency_ms": bench["median_ms"],
        "target_ms": TARGET_SECONDS * 1000.0,
        "speedup_vs_target": bench["speedup_vs_target"],
        "inspected": [{key: r.get(key) for key in ("path", "defective", "anomalous", "score", "overlay")} for r in inspected],
        "report_html": str(out / "report" / "report.html"),
        "overlays": str(out / "inspect"),
        "cores": os.cpu_count(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The demo's closing lines: the verdict in plain words first, then the figures and where to look."""
    from scae_tf.evaluation.verdict import verdict_sentences

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    minutes, seconds = divmod(round(summary["elapsed_seconds"]), 60)
    headline, setting, reading = verdict_sentences(summary["verdict"])
    if summary["caught_overlay"]:
        example = f"  a caught defect: {summary['caught_overlay']}"
    elif summary["verdict"]["caught"]:
        example = "  caught defects: shown in the report (Examples)"
    else:
        example = "  no caught defect to show: at this threshold the model called every defective test part good"
    lines = [
        f"scae demo finished in {minutes} min {seconds:02d} s on {summary['cores']} cores"
        + ("  (--fast: plumbing check, the model is barely trained)" if summary["fast"] else ""),
        *textwrap.wrap(headline, 110, initial_indent="  ", subsequent_indent="  "),
        *textwrap.wrap(f"{setting} {reading}", 110, initial_indent="  ", subsequent_indent="  "),
        example,
        f"  image AUROC   {num(summary['image_auroc'])}   (pixel AUROC {num(summary['pixel_auroc'])}, AUPRO {num(summary['aupro'])})",
        f"  accuracy      {pct(summary['accuracy'])} at the calibrated threshold (reference work: 88 %)",
        f"  latency       {summary['median_latency_ms']:.1f} ms median per image, int8 TFLite, "
        f"{summary['speedup_vs_target']:.0f}x under the {summary['target_ms']:.0f} ms target",
        f"  overlays      {summary['overlays']}",
        f"  report        {summary['report_html']}",
    ]
    return "\n".join(lines)
