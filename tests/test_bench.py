"""Latency benchmark (``scae bench``): statistics, report fields and the real timing path on tiny data.

No timing asserts: figures depend on the machine and its load; only structure and consistency
are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scae_tf import latency
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
    with pytest.raises(ScaeError, match="not a run dir"):
        latency.plan_variants(tmp_path, tmp_path / "nope", [], tmp_path / "work")
    with pytest.raises(ScaeError, match="not a bundle"):
        latency.plan_variants(tmp_path, tmp_path, [], tmp_path / "work")


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


# ---------------------------------------------------------------------------------------------
# The real timing and quality paths on a tiny trained run (shared with the export tests)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from edge_fixtures import cached_bundle, cached_tiny_run

    base = tmp_path_factory.getbasetemp()
    data, run = cached_tiny_run(base)
    return data, run, cached_bundle(base, "int8")


@pytest.mark.slow
def test_bench_command_times_bundle_other_precision_and_keras(tiny, tmp_path, capsys):
    from scae_tf.cli import main

    data, run, bundle = tiny
    out = tmp_path / "bench.json"
    argv = ["bench", "--bundle", str(bundle), "--data", str(data), "--out", str(out), "--images", "3", "--warmup", "1"]
    assert main([*argv, "--keras", str(run), "--precisions", "fp32", "int8"]) == 0
    report = json.loads(out.read_text())
    assert [v["name"] for v in report["variants"]] == ["tflite-int8", "tflite-fp32", "keras"]
    for variant in report["variants"]:
        assert variant["status"] == "ok", variant.get("error")
        assert set(variant["stages"]) == set(latency.STAGES)
        assert variant["images"] == 3 and variant["warmup"] == 1
        assert variant["median_ms"] <= variant["p95_ms"] <= variant["max_ms"]
        assert variant["speedup_vs_target"] > 0 and variant["images_per_second"] > 0
        assert variant["peak_rss_mb"] > 0
        assert 0.0 <= variant["verdict_agreement_with_primary"] <= 1.0
    edge, fp32, keras = report["variants"]
    assert edge["tensorflow_loaded"] is False  # the edge runtime's memory is measured without TensorFlow
    assert keras["tensorflow_loaded"] is True
    assert edge["threads"]["tflite_interpreter"] == 2 and keras["threads"]["tf_intra_op"] == 2
    assert edge["verdict_agreement_with_primary"] == 1.0 and edge["relative_to_primary"] == 1.0
    assert edge["model_bytes"] < fp32["model_bytes"]
    assert report["speedup_vs_target"] == edge["speedup_vs_target"]
    assert report["unique_images"] == len(latency.collect_images(data))
    assert report["machine"]["usable_cores"] >= 1 and report["target_seconds"] == 0.6
    printed = capsys.readouterr().out
    assert "tflite-fp32" in printed and "keras" in printed and "x0.6s" in printed


@pytest.mark.slow
def test_bench_reports_a_failing_optional_variant_without_losing_the_others(tiny, tmp_path):
    import shutil

    data, run, bundle = tiny
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "cae.keras").write_bytes(b"not a keras file")
    report = latency.run_benchmark(bundle, data, tmp_path / "b.json", images=2, warmup=0, keras_run=broken)
    keras = report["variants"][-1]
    assert report["variants"][0]["status"] == "ok"
    assert keras["status"] == "error" and "cae.keras" in keras["error"]
    assert "failed: " in latency.format_table(report)


@pytest.mark.slow
def test_quality_benchmark_tables_every_method_precision_and_defect_type(tiny, tmp_path):
    from benchmarks import quality

    data, run, _ = tiny
    out = tmp_path / "quality"
    report = quality.run_quality(out, data=str(data), run_dir=run, precisions=("fp32", "int8"), command="test")
    rows = report["rows"]
    methods = {r["method"] for r in rows}
    assert quality.METHOD in methods and len(methods) >= 4  # the method and the baselines
    assert {(r["precision"], r["test_set"]) for r in rows} == {
        (p, s) for p in ("fp32", "int8") for s in ("raw", "brightness_controlled")
    }
    defect_types = {d.name for d in (data / "test").iterdir()} - {"good"}
    for row in rows:
        assert set(quality.COLUMNS) <= set(row)
        assert defect_types <= set(row["per_type"])
        for defect in defect_types:
            assert 0.0 <= row["per_type"][defect]["detection_rate"] <= 1.0
    assert set(report["int8_vs_fp32"]) == {"raw", "brightness_controlled"}
    saved = json.loads((out / "quality.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows))
    markdown = (out / "quality.md").read_text()
    assert "## Raw test set" in markdown and "## Brightness-controlled test set" in markdown
    assert "## Summary: segmentation-guided method" in markdown and "| brightness-controlled | int8 |" in markdown
    assert "| segmentation_guided | int8 |" in markdown
    assert (out / "eval-int8" / "metrics.json").is_file() and (out / "eval-fp32" / "report.html").is_file()


def test_quality_rejects_a_missing_dataset(tmp_path):
    from benchmarks import quality

    with pytest.raises(ScaeError, match="dataset folder not found"):
        quality.prepare_data(str(tmp_path / "missing"), tmp_path)


def test_per_type_auroc_from_image_list():
    from benchmarks import quality

    images = [
        {"label": 0, "defect_type": "good", "scores": {"m": 0.1}},
        {"label": 0, "defect_type": "good", "scores": {"m": 0.2}},
        {"label": 1, "defect_type": "pit", "scores": {"m": 0.9}},
        {"label": 1, "defect_type": "scratch", "scores": {"m": 0.15}},
    ]
    assert quality.per_type_auroc(images, "m", "scores") == {"pit": 1.0, "scratch": 0.5}


def test_varied_sizes_copy_keeps_each_defect_and_its_mask_aligned(tmp_path):
    """benchmarks.varied_sizes: images of many sizes and aspects (<= 3:1), each defect mostly kept,
    masks cut like their images; deterministic; a non-empty --out is refused."""
    import cv2

    from benchmarks.varied_sizes import write_varied
    from scae_tf.errors import ScaeError
    from scae_tf.synthetic import generate_dataset

    data = tmp_path / "surface"
    generate_dataset(data, part="surface", size=128, n_train=4, n_test_good=2, n_per_defect=1, seed=0)
    count = write_varied(data, tmp_path / "a", seed=3)
    write_varied(data, tmp_path / "b", seed=3)
    images = sorted((tmp_path / "a").rglob("*.jpg"))
    assert count == len(images) > 6
    shapes = {cv2.imread(str(p), 0).shape for p in images}
    assert len(shapes) > 3 and all(max(s) <= 3 * min(s) and min(s) >= 0.3 * 128 - 1 for s in shapes)
    for mask_path in (tmp_path / "a" / "ground_truth").rglob("*_mask.png"):
        image = tmp_path / "a" / "test" / mask_path.parent.name / mask_path.name.replace("_mask.png", ".jpg")
        original = cv2.imread(str(data / "ground_truth" / mask_path.parent.name / mask_path.name), 0)
        mask = cv2.imread(str(mask_path), 0)
        assert mask.shape == cv2.imread(str(image), 0).shape and (mask > 127).sum() >= 0.8 * (original > 127).sum() > 0
    assert (tmp_path / "b" / images[0].relative_to(tmp_path / "a")).read_bytes() == images[0].read_bytes()
    with pytest.raises(ScaeError, match="not empty"):
        write_varied(data, tmp_path / "a")
