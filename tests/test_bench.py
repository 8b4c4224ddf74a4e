"""Latency benchmark (``scae bench``): statistics, report fields and the real timing path on tiny data.

No timing asserts: figures depend on the machine and its load; only structure and consistency
are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import latency
from scae_tf.errors import ScaeError


def test_stage_stats_are_milliseconds_and_ordered():
    stats = latency.stage_stats([0.001, 0.002, 0.003, 0.010])
    assert stats["median_ms"] == pytest.approx(2.5)
    assert stats["max_ms"] == pytest.approx(10.0)
    assert stats["mean_ms"] == pytest.approx(4.0)
    assert stats["median_ms"] <= stats["p95_ms"] <= stats["max_ms"]


def test_summarize_speedup_against_target():
    records = [{stage: 0.001 for stage in latency.STAGES} | {"total": 0.006} for _ in range(10)]
    summary = latency.summarize(records, wall_seconds=0.06)
    assert set(summary["stages"]) == set(latency.STAGES)
    assert summary["median_ms"] == pytest.approx(6.0)
    assert summary["speedup_vs_target"] == pytest.approx(100.0)
    assert summary["images_per_second"] == pytest.approx(10 / 0.06)


def test_cycle_to_repeats_small_data_in_order():
    paths = [Path("a"), Path("b"), Path("c")]
    assert latency.cycle_to(paths, 7) == [Path(p) for p in "abcabca"]
    assert latency.cycle_to(paths, 2) == paths[:2]


def test_collect_images_rejects_missing_and_empty(tmp_path):
    with pytest.raises(ScaeError, match="not found"):
        latency.collect_images(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ScaeError, match="no images"):
        latency.collect_images(tmp_path)


def test_collect_images_plain_folder_skips_masks(tmp_path):
    from scae_tf.imageio import write_png

    (tmp_path / "a").mkdir()
    (tmp_path / "masks").mkdir()
    write_png(tmp_path / "a" / "x.png", np.zeros((8, 8), np.float32))
    write_png(tmp_path / "masks" / "x_mask.png", np.zeros((8, 8), np.float32))
    assert latency.collect_images(tmp_path) == [tmp_path / "a" / "x.png"]


def test_bundle_precision_needs_a_manifest(tmp_path):
    with pytest.raises(ScaeError, match="manifest.json"):
        latency.bundle_precision(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"precision": "int8"}))
    assert latency.bundle_precision(tmp_path) == "int8"


def test_precisions_without_run_dir_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"precision": "int8"}))
    with pytest.raises(ScaeError, match="--keras"):
        latency.plan_variants(tmp_path, None, ["fp32"], tmp_path / "work")


def test_machine_info_has_cores_and_versions():
    info = latency.machine_info()
    assert info["logical_cores"] >= 1 and info["usable_cores"] >= 1
    assert info["cpu_model"]
    assert info["versions"]["numpy"] == np.__version__


def test_format_table_lists_every_variant_and_failures():
    ok = {
        "name": "tflite-int8",
        "status": "ok",
        "stages": {s: latency.stage_stats([0.002]) for s in latency.STAGES},
        "median_ms": 2.0,
        "p95_ms": 2.0,
        "max_ms": 2.0,
        "images_per_second": 500.0,
        "peak_rss_mb": 90.0,
        "speedup_vs_target": 300.0,
        "verdict_agreement_with_primary": 1.0,
    }
    failed = {"name": "keras", "status": "error", "error": "TensorFlow is not installed"}
    report = {
        "variants": [ok, failed],
        "images": 100,
        "unique_images": 4,
        "warmup": 2,
        "threads": 2,
        "primary": "tflite-int8",
        "machine": latency.machine_info(),
        "load_average": {"before": [0.1, 0.1, 0.1], "after": [0.2, 0.1, 0.1]},
    }
    table = latency.format_table(report)
    assert "tflite-int8" in table and "300x" in table
    assert "keras" in table and "failed: TensorFlow is not installed" in table
