"""``tf.data`` pipelines: images, (image, mask) pairs and precomputed arrays, batched and seeded.

Why in memory: the datasets this toolkit trains on are a few hundred images, and the CAE trains
on canonical crops computed in NumPy (``scae_tf.preprocessing``), so decoding once with
``scae_tf.imageio`` (clear ``ScaeError`` on a bad file) and slicing arrays is simpler and faster
than decoding inside the graph. Shuffling is seeded so a run can be repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from scae_tf.data.layout import Sample
from scae_tf.imageio import read_image, read_mask, resize
from scae_tf.progress import progress

AugmentFn = Callable[..., object]


def _path_of(item: Sample | str | Path) -> Path:
    return item.path if isinstance(item, Sample) else Path(item)


def load_gray(path: str | Path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Any image file (8/16-bit, gray/RGB/RGBA) -> float32 gray in [0, 1], resized when ``size``."""
    image = read_image(path, gray=True)
    return image if size is None else resize(image, size, "area").astype(np.float32, copy=False)


def load_images(items: Sequence[Sample | str | Path], size: int | tuple[int, int]) -> np.ndarray:
    """Decode ``items`` to a float32 (N, H, W, 1) array at ``size``; raises ScaeError naming a bad file."""
    height, width = (size, size) if isinstance(size, int) else size
    out = np.empty((len(items), height, width, 1), np.float32)
    for i, item in enumerate(progress(items, desc="load images", total=len(items))):
        out[i, :, :, 0] = load_gray(_path_of(item), (height, width))
    return out


def load_masks(samples: Sequence[Sample], size: int | tuple[int, int]) -> np.ndarray:
    """Defect masks of ``samples`` as float32 (N, H, W, 1) in {0, 1}; good samples get all zeros.

    Each mask is checked against its image's size before resizing (a mismatch is a ScaeError).
    """
    height, width = (size, size) if isinstance(size, int) else size
    out = np.zeros((len(samples), height, width, 1), np.float32)
    for i, sample in enumerate(samples):
        if sample.mask_path is None:
            continue
        image_shape = read_image(sample.path).shape[:2]
        mask = read_mask(sample.mask_path, image_shape)
        out[i, :, :, 0] = shrink_mask(mask, (height, width))
    return out


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask so that a pixel is set when any part of it was: nearest-neighbour
    shrinking would silently drop the thin scratches and small pits this toolkit is about."""
    height, width = size
    if height >= mask.shape[0] and width >= mask.shape[1]:
        return resize(mask, size)
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return coverage > 0


def dataset_from_arrays(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 0,
    augment_fn: AugmentFn | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batched, optionally shuffled (seeded, reshuffled each epoch) and prefetched dataset.

    ``x`` (N, H, W[, C]) float; a channel axis is added to 3-D arrays. Elements are ``x`` or
    ``(x, y)``. ``augment_fn`` maps one element (``x`` or ``x, y``) with TensorFlow ops and runs
    before batching, in parallel.
    """
    x = _with_channel(np.asarray(x, np.float32))
    if y is not None:
        y = np.asarray(y, np.float32)
        y = _with_channel(y) if y.ndim == 3 else y
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} elements but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("cannot build a dataset from zero elements")
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if augment_fn is not None:
        ds = ds.map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def image_dataset(
    items: Sequence[Sample | str | Path],
    size: int | tuple[int, int],
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 0,
    augment_fn: AugmentFn | None = None,
) -> tf.data.Dataset:
    """Images of ``items`` at ``size`` as batches of (B, H, W, 1) float32."""
    return dataset_from_arrays(load_images(items, size), None, batch_size, shuffle, seed, augment_fn)


def image_mask_dataset(
    samples: Sequence[Sample],
    size: int | tuple[int, int],
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 0,
    augment_fn: AugmentFn | None = None,
) -> tf.data.Dataset:
    """(image, defect mask) batches of ``samples`` at ``size``; good samples have empty masks."""
    return dataset_from_arrays(load_images(samples, size), load_masks(samples, size), batch_size, shuffle, seed, augment_fn)


def random_flip(x: tf.Tensor, y: tf.Tensor | None = None, seed: int | None = None):
    """Augmentation for segmentation: the same random horizontal/vertical flip of image and target.

    Not for canonical CAE crops, whose head-on-the-left orientation is meaningful.
    """
    both = x if y is None else tf.concat([x, y], axis=-1)
    both = tf.image.random_flip_left_right(both, seed=seed)
    both = tf.image.random_flip_up_down(both, seed=None if seed is None else seed + 1)
    if y is None:
        return both
    channels = tf.shape(x)[-1]
    return both[..., :channels], both[..., channels:]


def _with_channel(array: np.ndarray) -> np.ndarray:
    return array[..., None] if array.ndim == 3 else array
