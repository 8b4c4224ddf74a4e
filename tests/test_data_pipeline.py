"""tf.data pipelines: arrays, images and (image, mask) pairs; seeded shuffling; clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from scae_tf.data.layout import Sample, list_dataset  # noqa: E402
from scae_tf.data.pipeline import (  # noqa: E402
    dataset_from_arrays,
    image_dataset,
    image_mask_dataset,
    load_gray,
    load_masks,
    random_flip,
)
from scae_tf.errors import ScaeError  # noqa: E402


def _order(ds) -> list[float]:
    return [float(v) for batch in ds for v in batch[:, 0, 0, 0].numpy()]


def test_dataset_from_arrays_batches_shuffles_with_seed_and_augments():
    x = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((10, 4, 6), np.float32)
    plain = dataset_from_arrays(x, batch_size=4, shuffle=False)
    shapes = [tuple(b.shape) for b in plain]
    assert shapes == [(4, 4, 6, 1), (4, 4, 6, 1), (2, 4, 6, 1)]
    assert _order(plain) == list(range(10))
    a = _order(dataset_from_arrays(x, batch_size=4, seed=3))
    assert sorted(a) == list(range(10)) and a != list(range(10))
    assert a == _order(dataset_from_arrays(x, batch_size=4, seed=3))
    assert a != _order(dataset_from_arrays(x, batch_size=4, seed=4))
    doubled = dataset_from_arrays(x, batch_size=10, shuffle=False, augment_fn=lambda t: t * 2)
    assert _order(doubled) == [2.0 * i for i in range(10)]
    dropped = dataset_from_arrays(x, batch_size=4, shuffle=False, drop_remainder=True)
    assert len(list(dropped)) == 2


def test_dataset_from_arrays_pairs_and_flip_keeps_them_aligned():
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1)).astype(np.float32)
    ds = dataset_from_arrays(x, x.copy(), batch_size=3, shuffle=True, seed=1, augment_fn=random_flip)
    for xb, yb in ds:
        np.testing.assert_array_equal(xb.numpy(), yb.numpy())
    with pytest.raises(ValueError):
        dataset_from_arrays(x, x[:2])


def test_image_and_mask_datasets_from_synthetic(synthetic_root: Path):
    train = list_dataset(synthetic_root, "train")
    batches = list(image_dataset(train, 64, batch_size=4, shuffle=False))
    assert [tuple(b.shape) for b in batches] == [(4, 64, 64, 1), (2, 64, 64, 1)]
    assert 0.0 <= float(tf.reduce_min(batches[0])) and float(tf.reduce_max(batches[0])) <= 1.0
    test = list_dataset(synthetic_root, "test")
    pairs = list(image_mask_dataset(test, 32, batch_size=len(test), shuffle=False))
    images, masks = pairs[0]
    assert images.shape == masks.shape == (len(test), 32, 32, 1)
    labels = np.array([s.label for s in test])
    has_defect = masks.numpy().reshape(len(test), -1).max(axis=1)
    np.testing.assert_array_equal(has_defect, labels)


def test_load_gray_any_depth_and_channels(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.full((10, 12, 3), 65535, np.uint16))
    image = load_gray(tmp_path / "rgb16.png", 8)
    assert image.shape == (8, 8) and image.dtype == np.float32
    np.testing.assert_allclose(image, 1.0, atol=1e-5)


def test_mask_of_wrong_size_names_the_mask(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16), np.uint8))
    cv2.imwrite(str(tmp_path / "a_mask.png"), np.zeros((8, 16), np.uint8))
    sample = Sample(tmp_path / "a.png", 1, "scratch", tmp_path / "a_mask.png")
    with pytest.raises(ScaeError, match="must match") as info:
        load_masks([sample], 8)
    assert info.value.path == tmp_path / "a_mask.png"


def test_bad_image_names_the_file(tmp_path: Path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ScaeError) as info:
        image_dataset([tmp_path / "broken.png"], 8)
    assert info.value.path == tmp_path / "broken.png"


def test_shrinking_a_mask_keeps_a_one_pixel_defect():
    from scae_tf.data.pipeline import shrink_mask

    mask = np.zeros((64, 64), bool)
    mask[13, 41] = True
    small = shrink_mask(mask, (16, 16))
    assert small.sum() == 1 and small[3, 10]
    assert shrink_mask(mask, (128, 128)).sum() == 4
