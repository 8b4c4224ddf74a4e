"""``scae inspect``: JSON/readable output, verdicts equal to Keras, overlays, exit codes, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from edge_fixtures import cached_bundle, cached_tiny_run

from scae_tf.cli import main
from scae_tf.overlay import render_overlay
from scae_tf.runtime.inspection import (
    CSV_COLUMNS,
    Record,
    aspect_warning,
    collect_inputs,
    csv_report,
    exit_code,
    summary_line,
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    data, run = cached_tiny_run(base)
    return data, run, cached_bundle(base, "fp32")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_json_verdicts_equal_keras_pipeline(edge, capsys, tmp_path):
    from scae_tf.pipeline import load_pipeline

    data, run, bundle = edge
    code = main(["inspect", "--bundle", str(bundle), str(data / "test"), "--json", "--out", str(tmp_path / "ov")])
    records = _json_lines(capsys.readouterr().out)
    images = sorted((data / "test").rglob("*.png"))
    assert [r["path"] for r in records] == [str(p) for p in images]
    keras = load_pipeline(run)
    expected = [keras.inspect_path(p) for p in images]
    assert [r["anomalous"] for r in records] == [e.anomalous for e in expected]
    assert [r["verdict"] for r in records] == ["anomalous" if e.anomalous else "good" for e in expected]
    for record, reference in zip(records, expected, strict=True):
        if reference.reason is not None:  # no part found: a verdict with score inf, null in JSON
            assert record["score"] is None and record["reason"] == reference.reason
        else:
            assert record["score"] == pytest.approx(reference.score, rel=1e-3, abs=1e-3)
        assert record["threshold"] == pytest.approx(reference.threshold)
        assert len(record["flagged"]) == len(reference.flagged)
        for patch in record["flagged"]:
            x0, y0, x1, y1 = patch["box"]
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128 and len(patch["corners"]) == 4
        assert set(record["timings_ms"]) >= {"decode", "segment", "pose", "reconstruct", "postprocess", "total"}
        overlay = cv2.imread(record["overlay"])
        assert overlay.shape == (128, 128, 3)
    assert code == (1 if any(e.anomalous for e in expected) else 0)
    # overlays keep the folder structure, so equal file names in two defect folders do not collide
    assert len(list((tmp_path / "ov").rglob("*.overlay.png"))) == len(images)


@pytest.mark.slow
def test_readable_lines_and_exit_code_for_good_images(edge, capsys):
    data, _, bundle = edge
    good = sorted((data / "train" / "good").glob("*.png"))[:2]
    code = main(["inspect", "--bundle", str(bundle), *map(str, good)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(str(p) in line for p, line in zip(good, lines, strict=True))
    assert all(line.split()[0] in ("good", "ANOMALOUS") and "threshold" in line for line in lines)
    assert code == (1 if any(line.startswith("ANOMALOUS") for line in lines) else 0)


@pytest.mark.slow
def test_bad_inputs_are_reported_and_the_rest_processed(edge, capsys, tmp_path):
    data, _, bundle = edge
    folder = tmp_path / "mixed"
    folder.mkdir()
    source = sorted((data / "train" / "good").glob("*.png"))[0]
    gray = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    shutil.copy(source, folder / "a_good.png")
    (folder / "b_corrupt.png").write_bytes(source.read_bytes()[:200])
    (folder / "c_text.png").write_text("not an image")
    colour = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    colour[:, :, 2] = 255 - colour[:, :, 2]
    cv2.imwrite(str(folder / "d_colour.png"), colour)
    cv2.imwrite(str(folder / "e_gray_as_rgb.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(folder / "f_wide.png"), cv2.resize(gray, (256, 128)))
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    table = tmp_path / "reports" / "today" / "inspect.csv"  # parents created
    code = main(["inspect", "--bundle", str(bundle), str(folder), str(tmp_path / "missing.png"), "--json",
                 "--csv", str(table)])
    captured = capsys.readouterr()
    records = {r["path"].split("/")[-1]: r for r in _json_lines(captured.out)}
    assert set(records) == {"missing.png", "a_good.png", "b_corrupt.png", "c_text.png", "d_colour.png",
                            "e_gray_as_rgb.png", "f_wide.png"}
    for name in ("missing.png", "b_corrupt.png", "c_text.png", "d_colour.png"):
        assert records[name]["verdict"] == "error" and name in records[name]["error"]
        assert f"error: {records[name]['error']}" in captured.err
    assert "colour image" in records["d_colour.png"]["error"]
    assert records["e_gray_as_rgb.png"]["verdict"] in ("good", "anomalous")
    assert records["e_gray_as_rgb.png"]["score"] == pytest.approx(records["a_good.png"]["score"], abs=1e-4)
    assert records["f_wide.png"]["verdict"] != "error" and "aspect ratio" in records["f_wide.png"]["warnings"][0]
    assert "warning" in captured.err and "Traceback" not in captured.err
    assert code == 2
    anomalous = sum(r["verdict"] == "anomalous" for r in records.values())
    assert captured.err.rstrip().splitlines()[-1].startswith(
        f"scae inspect: 7 images: {anomalous} anomalous, {3 - anomalous} good, 4 could not be inspected"
    )
    with table.open(newline="") as handle:
        rows = {row["path"].split("/")[-1]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(records)
    for name, record in records.items():
        assert rows[name]["verdict"] == record["verdict"]
        if record["verdict"] == "error":
            assert rows[name]["error"] == record["error"] and rows[name]["score"] == ""
        else:
            assert float(rows[name]["score"]) == pytest.approx(record["score"], rel=1e-5)
            assert int(rows[name]["n_flagged"]) == len(record["flagged"]) and float(rows[name]["total_ms"]) > 0
    assert [p.name for p in table.parent.iterdir()] == ["inspect.csv"]  # no temporary file left


@pytest.mark.slow
def test_tampered_bundle_exits_2_naming_the_file(edge, capsys, tmp_path):
    data, _, bundle = edge
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "cae.tflite").write_bytes((copy / "cae.tflite").read_bytes()[:-10])
    image = sorted((data / "train" / "good").glob("*.png"))[0]
    assert main(["inspect", "--bundle", str(copy), str(image)]) == 2
    err = capsys.readouterr().err
    assert "cae.tflite" in err and "re-export the bundle" in err and "Traceback" not in err


@pytest.mark.slow
def test_unusable_out_folder_is_a_clear_error(edge, capsys, tmp_path):
    data, _, bundle = edge
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    image = sorted((data / "train" / "good").glob("*.png"))[0]
    assert main(["inspect", "--bundle", str(bundle), str(image), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "cannot create the overlay folder" in err and str(blocker) in err and "Traceback" not in err


def test_collect_inputs_recurses_and_names_overlays(tmp_path):
    for relative in ("set/good/001.png", "set/crack/001.png", "set/.hidden/x.png", "set/readme.txt", "lone.png"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    images, errors = collect_inputs([tmp_path / "set", tmp_path / "lone.png", tmp_path / "empty", tmp_path / "nope"])
    assert [str(i.overlay_name) for i in images] == ["set/crack/001", "set/good/001", "lone"]
    assert [e.path.name for e in errors] == ["empty", "nope"]
    assert "no images" in errors[0].error and "no such file" in errors[1].error
    twice, _ = collect_inputs([tmp_path / "lone.png", tmp_path / "lone.png"])
    assert [str(i.overlay_name) for i in twice] == ["lone", "lone-2"]


def test_same_named_files_from_different_folders_carry_their_folder(tmp_path):
    for relative in ("test/good/000.png", "test/crack/000.png", "test/crack/001.png", "a/x/007.png", "b/x/007.png"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    files = [tmp_path / r for r in ("test/good/000.png", "test/crack/000.png", "test/crack/001.png", "a/x/007.png",
                                    "b/x/007.png")]
    images, _ = collect_inputs(files)
    assert [str(i.overlay_name) for i in images] == ["good_000", "crack_000", "001", "a_x_007", "b_x_007"]


class _Result:
    def __init__(self, anomalous: bool, score: float):
        self.anomalous, self.score, self.threshold, self.flagged = anomalous, score, 1.0, []


def test_summary_line_counts_anomalous_good_and_failed():
    records = [Record("a", _Result(True, 2.0)), Record("b", _Result(False, 0.5)), Record("c", _Result(False, 0.2)),
               Record("d", error="d: corrupt")]
    assert summary_line(records) == "4 images: 1 anomalous, 2 good, 1 could not be inspected"
    assert summary_line([records[1]]) == "1 image: 0 anomalous, 1 good, 0 could not be inspected"


def test_csv_report_appears_whole_at_the_end_or_not_at_all(tmp_path):
    target = tmp_path / "deep" / "er" / "rows.csv"
    with csv_report(target) as add_row:
        add_row(Record("a.png", _Result(True, 2.5), timings={"total": 0.012}))
        add_row(Record("b.png", error="b.png: corrupt"))
        assert not target.exists()  # still a temporary file
    rows = list(csv.reader(target.open(newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1][:6] == ["a.png", "anomalous", "2.5", "1", "0", "12"]
    assert rows[2][:2] == ["b.png", "error"] and rows[2][CSV_COLUMNS.index("error")] == "b.png: corrupt"

    with pytest.raises(KeyboardInterrupt), csv_report(target) as add_row:
        add_row(Record("c.png", _Result(False, 0.1)))
        raise KeyboardInterrupt
    assert len(list(csv.reader(target.open(newline="")))) == 3  # the earlier file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["rows.csv"]


def test_aspect_warning_and_exit_codes():
    assert aspect_warning((1024, 1024), [512, 512], 512) is None
    assert aspect_warning((600, 800), [512, 512], 512) is not None
    assert aspect_warning((600, 800), None, 512) is not None

    class Result:
        def __init__(self, anomalous):
            self.anomalous = anomalous

    good, bad = Record("a", Result(False)), Record("b", Result(True))
    error = Record("c", error="c: corrupt")
    assert exit_code([good]) == 0 and exit_code([good, bad]) == 1 and exit_code([bad, error]) == 2


def test_render_overlay_marks_heat_contour_and_boxes():
    image = np.full((100, 200), 0.5, np.float32)
    heat = np.zeros((64, 64), np.float32)
    heat[20:30, 20:30] = 4.0
    mask = np.zeros((64, 64), bool)
    mask[10:50, 10:50] = True
    corners = np.array([[150, 60], [190, 60], [190, 90], [150, 90]], np.float32)
    out = render_overlay(image, heat, mask, [corners], vmax=4.0, label="ANOMALOUS", anomalous=True)
    assert out.shape == (100, 200, 3) and out.dtype == np.uint8
    hot = out[40:45, 78:90].reshape(-1, 3).mean(axis=0)  # heat square, resized onto the image
    assert hot[0] > hot[1] + 50 and hot[0] > hot[2] + 50  # red end of the colour map
    assert tuple(out[60, 170]) == (255, 0, 0)  # flagged box edge
    assert out[70, 170].tolist() == [128, 128, 128]  # inside the box, no heat: untouched
    assert (out[:, :, 1] > 200).any()  # green object contour
