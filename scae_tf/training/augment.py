"""tf.data augmentation for the two models (pure TF ops, run inside ``Dataset.map``).

Segmenter: the part lies anywhere at any angle in the work image, so flips, 90-degree
rotations, brightness/contrast changes and sensor noise are all label-preserving, and
they teach the U-Net the part's shape rather than one pose or one exposure.
CAE: the canonical crop fixes pose and normalises illumination, so only what remains after
that varies: small residual shifts and small brightness/contrast jitter. No flips (a
mirrored thread is a different part).
"""

from __future__ import annotations

import tensorflow as tf


def _photometric(image: tf.Tensor, brightness: float, contrast: float, noise: float) -> tf.Tensor:
    mean = tf.reduce_mean(image)
    scale = tf.random.uniform([], 1.0 - contrast, 1.0 + contrast)
    shift = tf.random.uniform([], -brightness, brightness)
    image = (image - mean) * scale + mean + shift
    if noise > 0:
        image = image + tf.random.normal(tf.shape(image), stddev=tf.random.uniform([], 0.0, noise))
    return tf.clip_by_value(image, 0.0, 1.0)


def augment_segmenter(image: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Same random flip / 90-degree rotation for image and target; photometric on the image."""
    both = tf.concat([image, target], axis=-1)
    both = tf.image.random_flip_left_right(both)
    both = tf.image.random_flip_up_down(both)
    if both.shape[0] == both.shape[1]:  # quarter turns only keep a square frame's shape (flips cover 180 degrees)
        both = tf.image.rot90(both, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
    image, target = both[..., :-1], both[..., -1:]  # gray or colour image, one target channel
    return _photometric(image, brightness=0.15, contrast=0.25, noise=0.03), target


def augment_crop(crop: tf.Tensor, max_shift: int) -> tf.Tensor:
    """Small reflect-padded shift plus brightness/contrast jitter of a canonical crop."""
    if max_shift > 0:
        height, width = crop.shape[0], crop.shape[1]
        padded = tf.pad(crop, [[max_shift, max_shift], [max_shift, max_shift], [0, 0]], mode="REFLECT")
        crop = tf.image.random_crop(padded, [height, width, crop.shape[2]])
    return _photometric(crop, brightness=0.03, contrast=0.06, noise=0.0)
