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
        row = {"kind": kind, "part_kind": "compact", "alignment": "none", "epochs": 20, "training_seconds": 150.0}
        row["tuning_set"] = summary(_metrics(auroc, 15))
        row["own_test_set"] = summary(_metrics(0.8, 10))
        rows.append(row)
    table = markdown_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows) and table.endswith("\n")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "`--kind round`" in lines[2] and "0.865, 15/40, 1/32" in lines[2] and "2.5 min" in lines[2]
    assert "`--kind fabric --color`" in lines[3] and "0.965" in lines[3]
