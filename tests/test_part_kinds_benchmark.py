"""benchmarks/part_kinds.py: every kind it measures is a `scae synth` command, and its table has one row per kind."""

from __future__ import annotations

import argparse
import shlex

import pytest

from benchmarks.part_kinds import KINDS, markdown_table, summary, synth_options
from scae_tf.commands import synth
from scae_tf.synthetic import PART_KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_the_scae_synth_command_the_table_names(kind):
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(["--out", "D", *shlex.split(synth_options(kind))])
    spec = KINDS[kind]
    assert (args.kind, args.color, args.loose) == (spec["part"], spec.get("color", False), spec.get("loose", False))
    assert not args.loose or PART_KINDS[args.kind].loose  # only kinds that can lie loose are asked to


def _metrics(auroc: float, caught: int) -> dict:
    return {"image_auroc": auroc, "pixel_auroc": 0.9, "aupro": 0.8,
            "at_false_alarm_rate": {"0.01": {"caught": caught, "defective": 40, "flagged_good": 1, "good": 32}}}


def test_table_has_one_row_per_kind_with_its_figures():
    rows = []
    for kind, auroc in (("round", 0.865), ("fabric-colour", 0.965)):
        row = {"kind": kind, "seed": 0, "part_kind": "compact", "alignment": "none", "epochs": 20, "training_seconds": 150.0}
        row["tuning_set"] = summary(_metrics(auroc, 15))
        row["own_test_set"] = summary(_metrics(0.8, 10))
        rows.append(row)
    table = markdown_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows) + 2 and table.endswith("\n")
    assert all(line.count("|") == lines[0].count("|") for line in lines[: 2 + len(rows)])
    assert lines[-1] == "Good parts flagged at the 1 % false-alarm target, all rows: tuning sets 2/64 (3.1 %), own test sets 2/64 (3.1 %)."
    assert "`--kind round`" in lines[2] and "0.865, 15/40, 1/32" in lines[2] and "2.5 min" in lines[2]
    assert "`--kind fabric --color`" in lines[3] and "0.965" in lines[3]


def test_several_seeds_share_a_line_per_kind_with_their_mean():
    rows = []
    for seed, auroc in ((0, 0.8), (1, 0.9)):
        row = {"kind": "round", "seed": seed, "part_kind": "compact", "alignment": "none", "epochs": 20, "training_seconds": None}
        row["tuning_set"] = summary(_metrics(auroc, 10 + seed))
        row["own_test_set"] = summary(_metrics(0.7, 5))
        rows.append(row)
    lines = markdown_table(rows).splitlines()[:3]
    assert lines[0].endswith("mean tuning-set AUROC |")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "0.800, 10/40, 1/32 / 0.900, 11/40, 1/32" in lines[2] and lines[2].endswith("| 0.850 |")
    assert "| compact, none |" in lines[2] and "| - / - |" in lines[2]


def test_a_reused_run_reuses_its_evaluations_and_a_new_run_is_evaluated(tmp_path, monkeypatch):
    import json

    import benchmarks.part_kinds as bench

    evaluated = []
    trained_seconds = {"value": 60.0}
    monkeypatch.setattr(bench, "synthetic_dataset", lambda path, **options: path)

    def fake_run(data, run_dir, config_file, image_size, epochs):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "training_summary.json").write_text(json.dumps({"part_kind": {"kind": "compact", "alignment": "none"}}))
        return run_dir, trained_seconds["value"]

    def fake_evaluate(model, data, report_dir, threads, limit):
        evaluated.append(report_dir.name)
        report_dir.mkdir(parents=True, exist_ok=True)
        metrics = _metrics(0.5 + 0.1 * len(evaluated), 3)
        (report_dir / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(bench, "prepare_run", fake_run)
    monkeypatch.setattr(bench, "evaluate_model", fake_evaluate)
    first = bench.measure_kind("round", tmp_path, 20, 1, 2)
    assert evaluated == ["eval-tuning_set", "eval-own_test_set"] and first["seed"] == 1
    assert (tmp_path / "round" / "seed-1" / "eval-tuning_set" / "metrics.json").is_file()
    trained_seconds["value"] = None  # the run is reused: its evaluations are too
    again = bench.measure_kind("round", tmp_path, 20, 1, 2)
    assert len(evaluated) == 2 and again["tuning_set"] == first["tuning_set"]
    trained_seconds["value"] = 30.0  # trained again: evaluated again
    bench.measure_kind("round", tmp_path, 20, 1, 2)
    assert len(evaluated) == 4
