"""Detection quality per synthetic part kind, at the current defaults, from one command (prints, writes JSON).

Why: the README's rows for the synthetic kinds must come from runs of one version, each reproducible. Per kind:
its dataset (``scae synth`` seed 0) and a tuning set (seed 1: one training image, 32 good and 8 of each defect;
never trained or calibrated on), ``scae train`` with ``--epochs`` CAE epochs (the U-Net keeps its default), then
``scae evaluate`` on the tuning set and on the kind's own test set (16 good). Data and finished runs in ``--out``
are reused, so an interrupted benchmark resumes where it stopped.

    python -m benchmarks.part_kinds --out out/part-kinds [--kinds round capsule ...] [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.quality import evaluate_model, prepare_run, synthetic_dataset
from scae_tf.config import PostprocessConfig
from scae_tf.errors import ScaeError

log = logging.getLogger(__name__)

KINDS: dict[str, dict[str, Any]] = {  # name -> generate_dataset(part=..., color=..., loose=...)
    "screw": {"part": "screw"},
    "capsule": {"part": "capsule"},
    "capsule-colour": {"part": "capsule", "color": True},
    "capsule-loose": {"part": "capsule", "loose": True},
    "capsule-loose-colour": {"part": "capsule", "loose": True, "color": True},
    "round": {"part": "round"},
    "round-colour": {"part": "round", "color": True},
    "round-loose": {"part": "round", "loose": True},
    "roller": {"part": "roller"},
    "surface": {"part": "surface"},
    "fabric": {"part": "fabric"},
    "fabric-colour": {"part": "fabric", "color": True},
}
TUNING_SEED_OFFSET = 1  # the tuning set's seed is the dataset's plus this
TUNING_COUNTS = {"n_train": 1, "n_test_good": 32, "n_per_defect": 8}
FALSE_ALARM_KEY = f"{PostprocessConfig().target_false_alarm_rate:g}"  # the default target false-alarm rate, as metrics.json keys it


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Image AUROC, caught / flagged at the default threshold, pixel AUROC and AUPRO of one evaluation."""
    at = metrics["at_false_alarm_rate"][FALSE_ALARM_KEY]
    return {
        "image_auroc": metrics["image_auroc"],
        "caught": at["caught"],
        "defective": at["defective"],
        "flagged": at["flagged_good"],
        "good": at["good"],
        "pixel_auroc": metrics.get("pixel_auroc"),
        "aupro": metrics.get("aupro"),
    }


def measure_kind(kind: str, out: Path, epochs: int, seed: int, threads: int) -> dict[str, Any]:
    """Generate, train (or reuse) and evaluate one kind; returns its row."""
    root = out / kind
    root.mkdir(parents=True, exist_ok=True)
    data = synthetic_dataset(root / "data", seed=seed, **KINDS[kind])
    tune = synthetic_dataset(root / "tune", seed=seed + TUNING_SEED_OFFSET, **KINDS[kind], **TUNING_COUNTS)
    config_file = None
    if seed:
        config_file = root / "seed.json"
        config_file.write_text(json.dumps({"training": {"seed": seed}}) + "\n")
    run, seconds = prepare_run(data, root / "run", str(config_file) if config_file else None, None, epochs)
    trained = json.loads((run / "training_summary.json").read_text())
    row: dict[str, Any] = {
        "kind": kind,
        "part_kind": trained.get("part_kind", {}).get("kind"),
        "alignment": trained.get("part_kind", {}).get("alignment"),
        "epochs": trained.get("cae", {}).get("epochs", epochs),  # a reused run keeps the epochs it was trained with
        "training_seconds": seconds if seconds is not None else trained.get("seconds"),
    }
    for name, folder in (("tuning_set", tune), ("own_test_set", data)):
        row[name] = summary(evaluate_model(run, folder, root / f"eval-{name}", threads, None))
    return row


def synth_options(kind: str) -> str:
    """The ``scae synth`` options that make ``kind``'s dataset."""
    spec = KINDS[kind]
    return f"--kind {spec['part']}" + " --color" * bool(spec.get("color")) + " --loose" * bool(spec.get("loose"))


def _cell(result: dict[str, Any]) -> str:
    return f"{result['image_auroc']:.3f}, {result['caught']}/{result['defective']}, {result['flagged']}/{result['good']}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| synthetic kind (`scae synth` options) | part kind, alignment | tuning set: image AUROC, caught, flagged | own test set: the same | pixel AUROC, AUPRO (tuning set) | training |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        options = synth_options(row["kind"])
        tune = row["tuning_set"]
        minutes = f"{row['training_seconds'] / 60:.1f} min" if row.get("training_seconds") else ""
        lines.append(
            f"| {row['kind']} (`{options}`) | {row['part_kind']}, {row['alignment']} | {_cell(tune)} | {_cell(row['own_test_set'])} "
            f"| {tune['pixel_auroc']:.3f}, {tune['aupro']:.3f} | {minutes} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.part_kinds", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the data, runs, reports and part_kinds.json / .md")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS), help="kinds to measure (default: all)")
    parser.add_argument("--epochs", type=int, default=20, help="CAE epochs per kind (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed (the tuning set uses seed + 1)")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.perf_counter()
    for kind in args.kinds:
        try:
            rows.append(measure_kind(kind, out, args.epochs, args.seed, args.threads))
        except ScaeError as err:
            print(f"part_kinds: {kind}: {err}", file=sys.stderr)
            return 1
        log.info("part_kinds: %s: tuning set %s", kind, _cell(rows[-1]["tuning_set"]))
    from scae_tf.latency import machine_info

    report = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": machine_info(), "epochs": args.epochs, "seed": args.seed, "seconds": time.perf_counter() - started, "kinds": rows}
    (out / "part_kinds.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown_table(rows)
    (out / "part_kinds.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
