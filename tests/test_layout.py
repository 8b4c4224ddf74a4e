"""Dataset listing: real MVTec screws, the synthetic category, the plain layout and broken folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from scae_tf.data.layout import list_dataset, list_folder, list_mvtec
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_mask, read_raw


@pytest.mark.real_data
def test_real_screw_dev_split(real_data_root: Path):
    train = list_dataset(real_data_root, "train")
    test = list_dataset(real_data_root, "test")
    assert len(train) == 320 and {s.label for s in train} == {0}
    good = [s for s in test if s.label == 0]
    defective = [s for s in test if s.label == 1]
    assert len(good) == 10 and len(defective) == 25
    assert {s.defect_type for s in defective} == {"manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"}
    assert all(s.mask_path is None for s in good)
    for sample in defective:
        shape = read_raw(sample.path).shape[:2]
        assert sample.mask_path.parent.name == sample.defect_type
        assert read_mask(sample.mask_path, shape).any()


def test_synthetic_category(synthetic_root: Path):
    assert len(list_mvtec(synthetic_root, "train")) == 6
    test = list_mvtec(synthetic_root, "test")
    assert len(test) == 2 + 4 * 2
    assert all((s.label == 1) == (s.mask_path is not None) for s in test)


def _img(path: Path, shape=(16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(shape, 128, np.uint8))
    return path


def test_plain_layout(tmp_path: Path):
    _img(tmp_path / "good" / "a.png")
    _img(tmp_path / "test_good" / "b.png")
    _img(tmp_path / "defective" / "c.png")
    _img(tmp_path / "masks" / "c_mask.png")
    assert [s.path.name for s in list_folder(tmp_path, "train")] == ["a.png"]
    test = list_dataset(tmp_path, "test")
    assert [(s.path.name, s.label) for s in test] == [("b.png", 0), ("c.png", 1)]
    assert test[1].mask_path == tmp_path / "masks" / "c_mask.png"


def test_empty_folder_is_an_error(tmp_path: Path):
    (tmp_path / "train" / "good").mkdir(parents=True)
    with pytest.raises(ScaeError, match="no images") as info:
        list_dataset(tmp_path, "train")
    assert info.value.path == tmp_path / "train" / "good"


def test_wrong_layout_is_an_error(tmp_path: Path):
    _img(tmp_path / "images" / "a.png")
    with pytest.raises(ScaeError, match="not a dataset folder") as info:
        list_dataset(tmp_path, "train")
    assert info.value.path == tmp_path
    with pytest.raises(ScaeError, match="not found"):
        list_dataset(tmp_path / "missing", "train")


def test_missing_mask_names_the_image(tmp_path: Path, synthetic_root: Path):
    root = tmp_path / "cat"
    shutil.copytree(synthetic_root, root)
    victim = root / "ground_truth" / "pit" / "001_mask.png"
    victim.unlink()
    with pytest.raises(ScaeError, match="missing defect mask") as info:
        list_dataset(root, "test")
    assert info.value.path == root / "test" / "pit" / "001.png"
    assert str(victim) in str(info.value)


def test_non_image_files_are_skipped(tmp_path: Path):
    _img(tmp_path / "train" / "good" / "a.png")
    (tmp_path / "train" / "good" / "notes.txt").write_text("x")
    assert [s.path.name for s in list_dataset(tmp_path, "train")] == ["a.png"]
