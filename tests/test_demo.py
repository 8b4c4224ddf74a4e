"""``scae demo``: the tour runs end to end (fast mode) and never clobbers a folder it did not make."""

from __future__ import annotations

import json

import pytest

from scae_tf.demo import MARKER, format_summary, prepare_out
from scae_tf.errors import ScaeError


def test_prepare_out_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ScaeError, match="not made by `scae demo`"):
        prepare_out(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_prepare_out_clears_only_its_own_results(tmp_path):
    out = tmp_path / "demo"
    prepare_out(out)
    (out / "report").mkdir()
    (out / "report" / "metrics.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    prepare_out(out)
    assert (out / MARKER).is_file()
    assert not (out / "report").exists()
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_demo_fast_runs_every_stage(tmp_path, capsys):
    from scae_tf.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["stage_seconds"]) == ["synth", "train", "export", "evaluate", "inspect", "bench"]
    for key in ("image_auroc", "accuracy", "median_latency_ms", "speedup_vs_target"):
        assert key in summary
    assert summary["target_ms"] == 600.0
    assert (out / "report" / "report.html").is_file() and (out / "report" / "metrics.json").is_file()
    assert json.loads((out / "bundle-int8" / "manifest.json").read_text())["precision"] == "int8"
    assert json.loads((out / "bench.json").read_text())["variants"][0]["status"] == "ok"
    lines = (out / "inspect" / "inspect.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["overlay"].endswith(".overlay.png") for line in lines)
    assert len(list((out / "inspect").rglob("*.overlay.png"))) == len(lines)
    printed = capsys.readouterr().out
    assert str(out / "report" / "report.html") in printed
    assert format_summary(summary) in printed
