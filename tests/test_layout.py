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


def test_mvtec3d_layout_reads_the_colour_pictures_and_their_masks(tmp_path: Path):
    """MVTec 3D-AD as downloaded: pictures in rgb/, masks of the same name in gt/, point clouds beside them
    (not read); the validation goods train too, and a moved category still finds each of its listed images."""
    from scae_tf.artifacts.split import resolve_image

    for split in ("train", "validation"):
        for name in ("000.png", "001.png"):
            _img(tmp_path / split / "good" / "rgb" / name)
        (tmp_path / split / "good" / "xyz").mkdir()
        (tmp_path / split / "good" / "xyz" / "000.tiff").write_bytes(b"not read")
    _img(tmp_path / "test" / "good" / "rgb" / "000.png")
    _img(tmp_path / "test" / "good" / "gt" / "000.png")
    _img(tmp_path / "test" / "cut" / "rgb" / "000.png")
    _img(tmp_path / "test" / "cut" / "gt" / "000.png")
    train = list_dataset(tmp_path, "train")
    assert [s.path.relative_to(tmp_path).as_posix() for s in train] == [
        "train/good/rgb/000.png",
        "train/good/rgb/001.png",
        "validation/good/rgb/000.png",
        "validation/good/rgb/001.png",
    ]
    test = list_dataset(tmp_path, "test")
    assert [(s.name, s.label) for s in test] == [("cut/000.png", 1), ("good/000.png", 0)]
    assert test[0].mask_path == tmp_path / "test" / "cut" / "gt" / "000.png" and test[1].mask_path is None
    (tmp_path / "test" / "cut" / "gt" / "000.png").unlink()
    with pytest.raises(ScaeError, match="missing defect mask"):
        list_dataset(tmp_path, "test")

    moved = tmp_path.parent / (tmp_path.name + "_moved")
    shutil.copytree(tmp_path, moved)
    listed = str(tmp_path / "validation" / "good" / "rgb" / "001.png")
    shutil.rmtree(tmp_path)
    assert resolve_image(listed, [moved]) == moved / "validation" / "good" / "rgb" / "001.png"
    assert resolve_image("/elsewhere/train/good/000.png", [moved]) is None  # an MVTec AD name: no such file here
