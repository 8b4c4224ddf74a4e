"""Run dirs and bundles on disk (scae_tf.artifacts): the split format, old files, path lookup, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scae_tf.artifacts import Bundle, RunDir, Split, manifest_source_run, open_artifact
from scae_tf.errors import ScaeError


def test_split_is_seeded_and_disjoint():
    paths = [Path(f"/d/{i:03d}.png") for i in range(40)]
    a, b = Split.make(paths, 0.15, 0), Split.make(paths, 0.15, 0)
    assert a == b and len(a.validation) == 6 and len(a.train) == 34
    assert not set(a.train) & set(a.validation)
    assert Split.make(paths, 0.15, 1) != a
    assert len(Split.make(paths[:8], 0.15, 0).validation) == 4  # enough good images to calibrate
    with pytest.raises(ScaeError, match="validation_fraction"):
        Split.make(paths, 1.0, 0)


def test_split_stores_the_held_out_list_once_and_reads_version_1(tmp_path):
    run = RunDir(tmp_path)
    run.write_split(Split(train=["a.png", "b.png"], validation=["c.png"]))
    assert json.loads(run.split_file.read_text()) == {"version": 2, "train": ["a.png", "b.png"], "validation": ["c.png"]}
    assert run.split() == Split(["a.png", "b.png"], ["c.png"])
    old = {"version": 1, "train": ["a.png"], "validation": ["c.png", "d.png"], "calibration": ["c.png", "d.png"]}
    run.split_file.write_text(json.dumps(old))
    assert run.split() == Split(["a.png"], ["c.png", "d.png"])
    run.split_file.write_text(json.dumps({"calibration": ["c.png"]}))  # a hand-written list of good images
    assert run.split() == Split([], ["c.png"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "corrupt split file"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"version": 3, "train": []}), "newer than this scae-tf"),
        (json.dumps({"train": [{"path": "a.png"}], "validation": []}), "list of image paths"),
    ],
)
def test_bad_split_files_give_one_clear_message(tmp_path, content, message):
    (tmp_path / "split.json").write_text(content)
    with pytest.raises(ScaeError, match=message) as caught:
        RunDir(tmp_path).split()
    assert caught.value.path == tmp_path / "split.json"


def test_split_images_are_found_where_the_data_is_now(tmp_path):
    data = tmp_path / "moved_dataset"
    (data / "train" / "good").mkdir(parents=True)
    (data / "train" / "good" / "001.png").write_bytes(b"png")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (run.path / "local.png").write_bytes(b"png")
    run.write_split(Split(train=["/old/place/train/good/001.png"], validation=["local.png", "/nowhere/x.png"]))
    assert run.split_images("train", data) == [data / "train" / "good" / "001.png"]
    assert run.split_images("validation") == [run.path / "local.png", Path("/nowhere/x.png")]  # the reader reports it
    with pytest.raises(ScaeError, match="'/nowhere/x.png' listed there was not found"):
        run.split_images("validation", data, must_exist=True)
    with pytest.raises(ValueError, match="split part"):
        run.split_images("calibration")


def test_open_artifact_tells_run_dirs_from_bundles(tmp_path):
    with pytest.raises(ScaeError, match="not a folder"):
        open_artifact(tmp_path / "missing")
    run = open_artifact(tmp_path)
    assert isinstance(run, RunDir) and run.path == tmp_path
    with pytest.raises(ScaeError, match=r"this run dir has no config\.json"):
        run.config()
    with pytest.raises(ScaeError, match=r"missing config\.json, preprocessing\.json, calibration\.json, segmenter\.keras"):
        run.check_complete()
    (tmp_path / "manifest.json").write_text(json.dumps({"source_run": str(tmp_path)}))
    with pytest.raises(ScaeError, match="format_version"):  # a bundle is verified before anything is read
        open_artifact(tmp_path)
    assert manifest_source_run(tmp_path) == RunDir(tmp_path)


def test_a_bundle_gives_its_files_and_model_paths():
    bundle = Bundle(Path("/b"), {"precision": "int8", "parity": {"images": 3}})
    assert bundle.model_file("cae") == Path("/b/cae.tflite") and bundle.calibration_file == Path("/b/calibration.json")
    assert bundle.precision == "int8" and bundle.parity == {"images": 3}
