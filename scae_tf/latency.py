"""Latency of the full inspection path (``scae bench``), against the 0.6 s per image target.

Each configuration (the bundle under test, other TFLite precisions, the Keras ``tf.function``
back-end) runs in its own fresh Python process, one after the other, so that

* thread settings are applied before any library starts its pools (OMP, TF, OpenCV, LiteRT);
* peak RSS is the configuration's own: the edge runtime's figure never includes TensorFlow;
* a crash or a missing optional dependency in one configuration does not hide the others.

Timings come from ``InspectionResult.timings`` (decode, segment, pose, reconstruct,
postprocess, total), measured per image after a warm-up, over at least ``images`` images
(the data is cycled when it has fewer). Figures vary between runs and with machine load;
the report records the load average before and after so a contended run can be recognised.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.artifacts import is_bundle, names, peek_manifest
from scae_tf.config import save_json
from scae_tf.errors import ScaeError
from scae_tf.timing import STAGES, TARGET_SECONDS

log = logging.getLogger(__name__)

MIN_IMAGES = 100
WORKER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Variant:
    """One configuration to time: a TFLite bundle or a Keras run dir."""

    name: str  # e.g. "tflite-int8", "keras"
    backend: str  # "tflite" | "keras"
    path: Path
    precision: str  # fp32 | fp16 | int8 | keras


# ---------------------------------------------------------------------------------------------
# Data and statistics (pure, no model needed)


def collect_images(data: str | Path) -> list[Path]:
    """Images to time: a dataset's test split (train split if it has none), a folder, or one file."""
    from scae_tf.data.layout import is_mvtec, is_plain, list_dataset
    from scae_tf.imageio import is_image_file

    data = Path(data)
    if data.is_file():
        if not is_image_file(data):
            raise ScaeError("not an image file (png/jpg/bmp/tif); pass an image, a folder or a dataset", data)
        return [data]
    if not data.is_dir():
        raise ScaeError("data not found; pass an image, a folder of images or a dataset folder", data)
    if is_mvtec(data) or is_plain(data):
        try:
            return [s.path for s in list_dataset(data, "test")]
        except ScaeError:
            return [s.path for s in list_dataset(data, "train")]
    paths = sorted(p for p in data.rglob("*") if is_image_file(p) and "ground_truth" not in p.parts and "masks" not in p.parts)
    if not paths:
        raise ScaeError("no images found under this folder; pass a folder of images or a dataset", data)
    return paths


def cycle_to(paths: Sequence[Path], count: int) -> list[Path]:
    """``count`` paths, cycling through ``paths`` in order (timing needs many, data may be few)."""
    if not paths:
        raise ValueError("no paths to cycle through")
    return [paths[i % len(paths)] for i in range(count)]


def stage_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, max and mean of one stage, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }


def summarize(records: Sequence[dict[str, float]], wall_seconds: float) -> dict[str, Any]:
    """Per-stage statistics, throughput and speed-up against the 0.6 s target."""
    stages = {}
    for stage in STAGES:
        values = [r[stage] for r in records if stage in r]
        if values:
            stages[stage] = stage_stats(values)
    total = stages["total"]
    return {
        "images": len(records),
        "stages": stages,
        "median_ms": total["median_ms"],
        "p95_ms": total["p95_ms"],
        "max_ms": total["max_ms"],
        "images_per_second": len(records) / wall_seconds if wall_seconds > 0 else float("nan"),
        "speedup_vs_target": TARGET_SECONDS * 1000.0 / total["median_ms"],
    }


# ---------------------------------------------------------------------------------------------
# Machine description


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, library versions (read without importing TF)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    from scae_tf import __version__

    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "scae_tf": __version__,
            "numpy": _version("numpy"),
            "opencv": _version("opencv-python-headless") or _version("opencv-python"),
            "ai_edge_litert": _version("ai-edge-litert"),
            "tflite_runtime": _version("tflite-runtime"),
            "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
            "keras": _version("keras"),
        },
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Worker: runs in a fresh process, one variant


def thread_environment(threads: int) -> dict[str, str]:
    """Environment pinning every thread pool a worker may start (set before libraries load)."""
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SCAE_PROGRESS": "0",
    }


def _pin_tensorflow(threads: int) -> dict[str, int]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return {"tf_intra_op": threads, "tf_inter_op": 1}


def open_pipeline(backend: str, path: Path, threads: int):
    """The inspection pipeline of a bundle (TFLite, ``threads`` per interpreter) or a run dir (Keras)."""
    from scae_tf.pipeline import load_pipeline

    return load_pipeline(path, threads=threads)


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """Peak RSS of this process's own memory image.

    On Linux ``ru_maxrss`` is carried across fork+exec, so a worker started by a process that
    holds TensorFlow would report the parent's memory; ``VmHWM`` belongs to the exec'ed image only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one variant in this process (called in a fresh subprocess by :func:`run_benchmark`)."""
    import cv2

    threads = int(spec["threads"])
    cv2.setNumThreads(threads)
    pinned: dict[str, Any] = {"opencv": threads, "omp": threads}
    if spec["backend"] == "keras":
        pinned.update(_pin_tensorflow(threads))
    else:
        pinned["tflite_interpreter"] = threads
    paths = [Path(p) for p in spec["paths"]]
    warmup = int(spec["warmup"])
    count = int(spec["images"])

    t_load = time.perf_counter()
    pipeline = open_pipeline(spec["backend"], Path(spec["path"]), threads)
    load_seconds = time.perf_counter() - t_load
    rss_after_load = _rss_mb()

    for path in cycle_to(paths, warmup) if warmup else []:
        pipeline.inspect_path(path)

    records: list[dict[str, float]] = []
    scores: dict[str, list] = {}
    timed = cycle_to(paths, count)
    start = time.perf_counter()
    for path in timed:
        t0 = time.perf_counter()
        result = pipeline.inspect_path(path)
        outer = time.perf_counter() - t0
        record = {k: float(v) for k, v in result.timings.items()}
        record.setdefault("total", outer)
        record["outer"] = outer
        records.append(record)
        scores.setdefault(str(path), [float(result.score), bool(result.anomalous)])
    wall = time.perf_counter() - start

    summary = summarize(records, wall)
    summary.update(
        {
            "warmup": warmup,
            "unique_images": len(paths),
            "load_seconds": load_seconds,
            "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": _peak_rss_mb(),
            "tensorflow_loaded": "tensorflow" in sys.modules,
            "threads": pinned,
            "outer_median_ms": float(np.median([r["outer"] for r in records]) * 1000.0),
            "scores": scores,
        }
    )
    return summary


def _worker_entry(argv: Sequence[str]) -> int:
    spec_file, result_file = argv
    spec = json.loads(Path(spec_file).read_text())
    try:
        result: dict[str, Any] = {"status": "ok", **run_worker(spec)}
        code = 0
    except ScaeError as err:
        result, code = {"status": "error", "error": str(err)}, 2
    Path(result_file).write_text(json.dumps(result))
    return code


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def measure_variant(variant: Variant, paths: Sequence[Path], images: int, warmup: int, threads: int) -> dict[str, Any]:
    """Run one variant in a fresh interpreter and return its summary (or an error entry)."""
    spec = {
        "backend": variant.backend,
        "path": str(variant.path),
        "paths": [str(p) for p in paths],
        "images": images,
        "warmup": warmup,
        "threads": threads,
    }
    env = dict(os.environ, **thread_environment(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="scae-bench-") as tmp:
        spec_file, result_file = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_file.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "scae_tf.latency", "--worker", str(spec_file), str(result_file)]
        log.info("bench: timing %s (%d images after %d warm-up, %d threads)", variant.name, images, warmup, threads)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
        if result_file.is_file():
            result = json.loads(result_file.read_text())
        else:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            result = {"status": "error", "error": f"worker exited with code {proc.returncode}: {tail}"}
    result.update({"name": variant.name, "backend": variant.backend, "precision": variant.precision, "path": str(variant.path)})
    return result


# ---------------------------------------------------------------------------------------------
# Variants


def bundle_precision(bundle: Path) -> str:
    """The precision the manifest states (a label; the worker verifies the bundle before timing it)."""
    manifest = peek_manifest(bundle)
    if manifest is None:
        raise ScaeError(f"not a bundle (no readable {names.MANIFEST}); pass the folder written by `scae export`", bundle)
    return str(manifest.get("precision", "unknown"))


def export_precision(run_dir: Path, out: Path, precision: str) -> Path:
    """Export ``run_dir`` at ``precision`` into ``out`` (a bundle) with the project's exporter."""
    from scae_tf.exporting import export_bundle

    export_bundle(run_dir, out, precision=precision)
    return out


def plan_variants(
    bundle: Path, keras_run: Path | None, precisions: Sequence[str], workdir: Path
) -> list[Variant]:
    """The bundle under test first, then other precisions exported from ``keras_run``, then Keras."""
    primary_precision = bundle_precision(bundle)
    variants = [Variant(f"tflite-{primary_precision}", "tflite", bundle, primary_precision)]
    extra = [p for p in dict.fromkeys(precisions) if p != primary_precision]
    if extra and keras_run is None:
        raise ScaeError("--precisions needs --keras RUN_DIR to export the other precisions from")
    for precision in extra:
        out = workdir / f"bundle-{precision}"
        log.info("bench: exporting %s at %s into %s", keras_run, precision, out)
        variants.append(Variant(f"tflite-{precision}", "tflite", export_precision(keras_run, out, precision), precision))
    if keras_run is not None:
        if is_bundle(keras_run):
            raise ScaeError("--keras needs a run dir written by `scae train`, not a bundle", keras_run)
        if not (keras_run / names.CONFIG).is_file():
            raise ScaeError(f"not a run dir (no {names.CONFIG}); pass the folder written by `scae train`", keras_run)
        variants.append(Variant("keras", "keras", keras_run, "keras"))
    return variants


def _agreement(reference: dict[str, list], other: dict[str, list]) -> float | None:
    common = sorted(set(reference) & set(other))
    if not common:
        return None
    return float(np.mean([reference[k][1] == other[k][1] for k in common]))


def _model_bytes(bundle: Path) -> int:
    return sum((bundle / name).stat().st_size for name in names.TFLITE_MODELS.values())


def run_benchmark(
    bundle: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    images: int = MIN_IMAGES,
    warmup: int = 10,
    threads: int = 2,
    keras_run: str | Path | None = None,
    precisions: Sequence[str] = (),
) -> dict[str, Any]:
    """Time the bundle (and Keras / other precisions), write ``out`` as JSON and return the report."""
    bundle = Path(bundle)
    keras_run = None if keras_run is None else Path(keras_run)
    if images < 1 or warmup < 0 or threads < 1:
        raise ScaeError("--images and --threads must be >= 1 and --warmup >= 0")
    if images < MIN_IMAGES:
        log.warning("bench: %d timed images (< %d): percentiles will be noisy", images, MIN_IMAGES)
    paths = collect_images(data)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="scae-bench-export-") as tmp:
        variants = plan_variants(bundle, keras_run, precisions, Path(tmp))
        results = [measure_variant(v, paths, images, warmup, threads) for v in variants]
        for variant, result in zip(variants, results, strict=True):
            if variant.backend == "tflite" and variant.path.is_dir():
                result["model_bytes"] = _model_bytes(variant.path)
    primary = results[0]
    if primary["status"] != "ok":
        raise ScaeError(f"timing the bundle failed: {primary['error']}", bundle)
    for result in results:
        if result["status"] == "ok":
            result["relative_to_primary"] = result["median_ms"] / primary["median_ms"]
            result["verdict_agreement_with_primary"] = _agreement(primary["scores"], result["scores"])
    for result in results:
        result.pop("scores", None)  # per-image scores were only needed for the agreement
    report = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "target_seconds": TARGET_SECONDS,
        "bundle": str(bundle),
        "data": str(data),
        "images": images,
        "unique_images": len(paths),
        "warmup": warmup,
        "threads": threads,
        "primary": primary["name"],
        "median_ms": primary["median_ms"],
        "p95_ms": primary["p95_ms"],
        "max_ms": primary["max_ms"],
        "images_per_second": primary["images_per_second"],
        "peak_rss_mb": primary["peak_rss_mb"],
        "speedup_vs_target": primary["speedup_vs_target"],
        "machine": machine_info(),
        "load_average": {"before": load_before, "after": load_average()},
        "variants": results,
    }
    if out is not None:
        write_json(report, out)
    return report


def write_json(report: dict[str, Any], out: str | Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_json(report, out, sort_keys=False)


def format_table(report: dict[str, Any]) -> str:
    """A readable table: one row per variant, medians per stage, total p95/max, throughput, memory."""
    head = ["variant", *[s[:6] for s in STAGES[:-1]], "total", "p95", "max", "img/s", "RSS MB", "x0.6s", "agree"]
    rows = [head]
    for v in report["variants"]:
        if v["status"] != "ok":
            rows.append([v["name"], f"failed: {v['error'][:80]}"])
            continue
        stages = v["stages"]
        cells = [v["name"]]
        cells += [f"{stages[s]['median_ms']:.1f}" if s in stages else "-" for s in STAGES[:-1]]
        agree = v.get("verdict_agreement_with_primary")
        cells += [
            f"{v['median_ms']:.1f}",
            f"{v['p95_ms']:.1f}",
            f"{v['max_ms']:.1f}",
            f"{v['images_per_second']:.1f}",
            f"{v['peak_rss_mb']:.0f}",
            f"{v['speedup_vs_target']:.0f}x",
            "-" if agree is None else f"{agree:.0%}",
        ]
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows if len(r) > i and len(r) == len(head)) for i in range(len(head))]
    lines = []
    for row in rows:
        if len(row) != len(head):
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]}")
        else:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    machine = report["machine"]
    lines.append("")
    lines.append(
        f"median ms per stage; {report['images']} images ({report['unique_images']} distinct) after "
        f"{report['warmup']} warm-up, {report['threads']} threads, {machine['usable_cores']} usable cores "
        f"({machine['cpu_model']}); load average before/after {report['load_average']['before']} / "
        f"{report['load_average']['after']}"
    )
    lines.append(
        f"x0.6s: speed-up of the median against the 0.6 s target; agree: verdicts equal to {report['primary']}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "python -m scae_tf.latency") -> int:
    """Command line (what ``scae bench`` runs), and the entry of the per-variant worker process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return _worker_entry(argv[1:])
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        return run_from_args(args)
    except ScaeError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return err.exit_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, type=Path, help="bundle written by `scae export` (timed on the edge runtime)")
    parser.add_argument("--data", required=True, type=Path, help="dataset, folder of images or one image to time on")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--images", type=int, default=MIN_IMAGES, help="timed images (data is cycled when smaller; default %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed images first (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every back-end (default %(default)s, the target machine)")
    parser.add_argument("--keras", type=Path, metavar="RUN_DIR", help="also time the Keras tf.function back-end of this run dir")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=[],
        choices=names.PRECISIONS,
        help="also time these TFLite precisions, exported from --keras RUN_DIR into a temporary folder",
    )


def run_from_args(args: argparse.Namespace) -> int:
    report = run_benchmark(
        args.bundle, args.data, args.out, args.images, args.warmup, args.threads, args.keras, args.precisions
    )
    print(format_table(report))
    if args.out:
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
