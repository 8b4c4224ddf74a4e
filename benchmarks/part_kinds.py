"""Detection quality per synthetic part kind, at the current defaults, from one command (prints, writes JSON).

Why: the README's rows for the synthetic kinds must come from runs of one version, each reproducible, and one
training run is one sample. Per kind and seed: its dataset (``scae synth`` at that seed) and a tuning set (the next
seed: one training image, 32 good and 8 of each defect; never trained or calibrated on), ``scae train`` with
``--epochs`` CAE epochs and that training seed (the U-Net keeps its default epochs), then ``scae evaluate`` on the
tuning set and on the kind's own test set (16 good). With several ``--seeds`` each cell of the table holds one
figure per seed and a column the mean tuning-set AUROC. Data, finished runs and finished evaluations in ``--out``
(``KIND/seed-N/``) are reused, so an interrupted benchmark resumes where it stopped; a new ``--out`` measures afresh.

    python -m benchmarks.part_kinds --out out/part-kinds [--kinds round capsule ...] [--epochs 20] [--seeds 0 1]
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
    "tuber": {"part": "tuber"},
    "tuber-colour": {"part": "tuber", "color": True},
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
    """Generate, train (or reuse) and evaluate (or reuse) one kind at one seed; returns its row."""
    root = kind_folder(out, kind, seed)
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
        "seed": seed,
        "part_kind": trained.get("part_kind", {}).get("kind"),
        "alignment": trained.get("part_kind", {}).get("alignment"),
        "epochs": trained.get("cae", {}).get("epochs", epochs),  # a reused run keeps the epochs it was trained with
        "training_seconds": seconds if seconds is not None else trained.get("seconds"),
    }
    for name, folder in (("tuning_set", tune), ("own_test_set", data)):
        report = root / f"eval-{name}"
        finished = report / "metrics.json"
        if seconds is None and finished.is_file():  # evaluated before, by this run
            log.info("part_kinds: reusing the evaluation %s", report)
            metrics = json.loads(finished.read_text())
        else:
            metrics = evaluate_model(run, folder, report, threads, None)
        row[name] = summary(metrics)
    return row


def kind_folder(out: Path, kind: str, seed: int) -> Path:
    """Where one kind's data, run and evaluations at one seed live."""
    return out / kind / f"seed-{seed}"


def synth_options(kind: str) -> str:
    """The ``scae synth`` options that make ``kind``'s dataset."""
    spec = KINDS[kind]
    return f"--kind {spec['part']}" + " --color" * bool(spec.get("color")) + " --loose" * bool(spec.get("loose"))


def _cell(result: dict[str, Any]) -> str:
    return f"{result['image_auroc']:.3f}, {result['caught']}/{result['defective']}, {result['flagged']}/{result['good']}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per kind; with rows of several seeds, each cell lists its figures per seed (in the rows' order,
    joined by " / ") and a last column holds the mean tuning-set image AUROC."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    several = len({row["seed"] for row in rows}) > 1
    header = "| synthetic kind (`scae synth` options) | part kind, alignment | tuning set: image AUROC, caught, flagged | own test set: the same | pixel AUROC, AUPRO (tuning set) | training |"
    rule = "|---|---|---|---|---|---|"
    if several:
        header += " mean tuning-set AUROC |"
        rule += "---:|"
    lines = [header, rule]
    for kind, group in by_kind.items():
        cells = [
            f"{kind} (`{synth_options(kind)}`)",
            " / ".join(sorted({f"{row['part_kind']}, {row['alignment']}" for row in group})),
            *(" / ".join(cell(row) for row in group) for cell in (_tuning, _own_test, _localisation, _minutes)),
        ]
        if several:
            cells.append(f"{sum(row['tuning_set']['image_auroc'] for row in group) / len(group):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    flagged = flagged_goods(rows)
    lines += ["", (
        f"Good parts flagged at the {float(FALSE_ALARM_KEY) * 100:g} % false-alarm target, all rows: "
        f"tuning sets {_share(flagged['tuning_set'])}, own test sets {_share(flagged['own_test_set'])}."
    )]
    return "\n".join(lines) + "\n"


def _share(counts: dict[str, int]) -> str:
    return f"{counts['flagged']}/{counts['good']} ({100 * counts['flagged'] / max(counts['good'], 1):.1f} %)"


def flagged_goods(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Good parts flagged and good parts in all, per evaluated set, summed over rows: the false-alarm rate the
    calibrated threshold delivers on fresh good parts, against its target."""
    return {
        name: {"flagged": sum(row[name]["flagged"] for row in rows), "good": sum(row[name]["good"] for row in rows)}
        for name in ("tuning_set", "own_test_set")
    }


def _tuning(row: dict[str, Any]) -> str:
    return _cell(row["tuning_set"])


def _own_test(row: dict[str, Any]) -> str:
    return _cell(row["own_test_set"])


def _localisation(row: dict[str, Any]) -> str:
    return f"{row['tuning_set']['pixel_auroc']:.3f}, {row['tuning_set']['aupro']:.3f}"


def _minutes(row: dict[str, Any]) -> str:
    return f"{row['training_seconds'] / 60:.1f} min" if row.get("training_seconds") else "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.part_kinds", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the data, runs, reports and part_kinds.json / .md")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS), help="kinds to measure (default: all)")
    parser.add_argument("--epochs", type=int, default=20, help="CAE epochs per kind (default 20)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="dataset and training seeds, one sample each (a tuning set uses its seed + 1; default 0)")
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
        for seed in args.seeds:
            try:
                rows.append(measure_kind(kind, out, args.epochs, seed, args.threads))
            except ScaeError as err:
                print(f"part_kinds: {kind}, seed {seed}: {err}", file=sys.stderr)
                return 1
            log.info("part_kinds: %s, seed %d: tuning set %s", kind, seed, _tuning(rows[-1]))
    from scae_tf.latency import machine_info

    report = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": machine_info(), "epochs": args.epochs, "seeds": args.seeds, "seconds": time.perf_counter() - started, "flagged_goods": flagged_goods(rows), "kinds": rows}
    (out / "part_kinds.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown_table(rows)
    (out / "part_kinds.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
