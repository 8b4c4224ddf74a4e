"""NaN-safe MS-SSIM and the CAE loss ``alpha * (1 - MS-SSIM) + (1 - alpha) * MSE``.

``ms_ssim`` reproduces ``tf.image.ssim_multiscale`` (Gaussian window built by softmax,
VALID depthwise filtering, K1/K2, compensation 1.0, 2x average pooling with symmetric
padding of odd sides, ReLU on the contrast-structure terms, weighted geometric mean) but
its gradient is finite everywhere. The TF op takes ``relu(cs) ** p`` with ``p < 1``: when a
scale's contrast-structure term is <= 0 (anti-correlated images, common early in
training) the derivative of the power at 0 is infinite and the gradient becomes NaN.
Here the power is taken of ``max(x, eps)`` for the gradient path while the forward value
stays exactly the TF value (``where`` selects the exact value below ``eps`` with the
gradient stopped), so values match the op and gradients are bounded.

Power factors: the five MS-SSIM weights of Wang et al. (0.0448, 0.2856, 0.3001, 0.2363,
0.1333), i.e. the TF default, used as is for 5 scales. With ``scales < 5`` the first ``scales`` weights are kept and
renormalised to sum to 1 (``power_factors(scales)``), so that MS-SSIM of identical images
is 1 and the value stays on the same scale as the 5-scale one. Pass the same factors to
``tf.image.ssim_multiscale`` to get the same number.
"""

from __future__ import annotations

import keras
import tensorflow as tf

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_SAFE_POW_EPS = 1e-6  # below this the forward value is exact but carries no gradient


def power_factors(scales: int) -> tuple[float, ...]:
    """The first ``scales`` default MS-SSIM weights, renormalised to sum to 1."""
    if not 1 <= scales <= len(MSSSIM_WEIGHTS):
        raise ValueError(f"scales must be in 1..{len(MSSSIM_WEIGHTS)}, got {scales}")
    if scales == len(MSSSIM_WEIGHTS):
        return MSSSIM_WEIGHTS  # exactly the TF default (they sum to 1.0001)
    kept = MSSSIM_WEIGHTS[:scales]
    total = sum(kept)
    return tuple(w / total for w in kept)


def min_side(scales: int, filter_size: int) -> int:
    """Smallest image side for which every scale still fits the Gaussian window."""
    # each 2x pooling rounds odd sides up, so the last scale keeps >= filter_size pixels
    return (filter_size - 1) * 2 ** (scales - 1) + 1


def _gaussian_kernel(filter_size: int, filter_sigma: float, channels: int) -> tf.Tensor:
    coords = tf.range(filter_size, dtype=tf.float32) - (filter_size - 1) / 2.0
    g = tf.square(coords) * (-0.5 / (filter_sigma**2))
    g = tf.reshape(g, [1, -1]) + tf.reshape(g, [-1, 1])
    g = tf.nn.softmax(tf.reshape(g, [1, -1]))
    kernel = tf.reshape(g, [filter_size, filter_size, 1, 1])
    return tf.tile(kernel, [1, 1, channels, 1])


def _safe_pow(x: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """``relu(x) ** p`` with exactly that value and a finite gradient (0 where x <= eps)."""
    positive = x > 0.0
    exact = tf.where(positive, tf.pow(tf.where(positive, x, 1.0), p), 0.0)
    smooth = tf.pow(tf.maximum(x, _SAFE_POW_EPS), p)
    return tf.where(x > _SAFE_POW_EPS, smooth, tf.stop_gradient(exact))


def _ssim_per_channel(x, y, kernel, max_val, k1, k2):
    def reducer(t):
        return tf.nn.depthwise_conv2d(t, kernel, strides=[1, 1, 1, 1], padding="VALID")

    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    mean0 = reducer(x)
    mean1 = reducer(y)
    num0 = mean0 * mean1 * 2.0
    den0 = tf.square(mean0) + tf.square(mean1)
    luminance = (num0 + c1) / (den0 + c1)
    num1 = reducer(x * y) * 2.0
    den1 = reducer(tf.square(x) + tf.square(y))
    cs = (num1 - num0 + c2) / (den1 - den0 + c2)
    ssim_val = tf.reduce_mean(luminance * cs, axis=[1, 2])
    return ssim_val, tf.reduce_mean(cs, axis=[1, 2])


def _downscale(x: tf.Tensor) -> tf.Tensor:
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        shape = tf.shape(x)
        pad_h, pad_w = shape[1] % 2, shape[2] % 2
    else:
        pad_h, pad_w = height % 2, width % 2
    x = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


def ms_ssim(
    img1: tf.Tensor,
    img2: tf.Tensor,
    max_val: float = 1.0,
    scales: int = 5,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    factors: tuple[float, ...] | None = None,
) -> tf.Tensor:
    """MS-SSIM per image of NHWC batches, equal to ``tf.image.ssim_multiscale`` with
    ``power_factors=factors or power_factors(scales)``, with finite gradients."""
    weights = tuple(factors) if factors is not None else power_factors(scales)
    img1 = tf.convert_to_tensor(img1, dtype=tf.float32)
    img2 = tf.convert_to_tensor(img2, dtype=tf.float32)
    height, width = img1.shape[1], img1.shape[2]
    needed = min_side(len(weights), filter_size)
    if height is not None and width is not None and min(height, width) < needed:
        raise ValueError(
            f"MS-SSIM with {len(weights)} scales and filter size {filter_size} needs images of at least "
            f"{needed}x{needed} px, got {height}x{width}; use fewer scales or a smaller filter"
        )
    kernel = _gaussian_kernel(filter_size, filter_sigma, img1.shape[-1] or 1)
    mcs = []
    ssim_val = None
    for k in range(len(weights)):
        if k > 0:
            img1, img2 = _downscale(img1), _downscale(img2)
        ssim_val, cs = _ssim_per_channel(img1, img2, kernel, max_val, k1, k2)
        mcs.append(cs)
    terms = tf.stack(mcs[:-1] + [ssim_val], axis=-1)  # (batch, channels, scales)
    p = tf.constant(weights, dtype=tf.float32)
    value = tf.reduce_prod(_safe_pow(terms, p), axis=-1)
    return tf.reduce_mean(value, axis=-1)


@keras.saving.register_keras_serializable(package="scae_tf")
class MSSSIMLoss(keras.losses.Loss):
    """``alpha * (1 - MS-SSIM) + (1 - alpha) * MSE`` per image, NaN-safe.

    MS-SSIM captures the structure (thread flanks, edges) a plain MSE blurs away; the MSE
    term keeps the absolute grey level honest where MS-SSIM is insensitive (flat areas).
    """

    def __init__(
        self,
        alpha: float = 0.85,
        scales: int = 3,
        filter_size: int = 7,
        filter_sigma: float = 1.5,
        max_val: float = 1.0,
        name: str = "ms_ssim_mse",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.scales = int(scales)
        self.filter_size = int(filter_size)
        self.filter_sigma = float(filter_sigma)
        self.max_val = float(max_val)
        power_factors(self.scales)  # validate early

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        mse = tf.reduce_mean(tf.square(y_true - y_pred), axis=[1, 2, 3])
        if self.alpha == 0.0:
            return mse
        similarity = ms_ssim(
            y_true,
            y_pred,
            max_val=self.max_val,
            scales=self.scales,
            filter_size=self.filter_size,
            filter_sigma=self.filter_sigma,
        )
        return self.alpha * (1.0 - similarity) + (1.0 - self.alpha) * mse

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            alpha=self.alpha,
            scales=self.scales,
            filter_size=self.filter_size,
            filter_sigma=self.filter_sigma,
            max_val=self.max_val,
        )
        return config


def loss_from_config(config) -> MSSSIMLoss:
    """Build the CAE loss from a ``LossConfig``."""
    return MSSSIMLoss(
        alpha=config.alpha, scales=config.scales, filter_size=config.filter_size, filter_sigma=config.filter_sigma
    )


@keras.saving.register_keras_serializable(package="scae_tf")
class BceDiceLoss(keras.losses.Loss):
    """Binary cross-entropy + soft Dice per image, for the segmenter.

    The part covers a few per cent of the frame: with cross-entropy alone the U-Net first
    learns "all background" and finds the part only slowly; the Dice term rewards overlap
    with the part from the first step on.
    """

    def __init__(self, dice_weight: float = 1.0, name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.clip_by_value(tf.cast(y_pred, tf.float32), 1e-7, 1.0 - 1e-7)
        bce = -tf.reduce_mean(y_true * tf.math.log(y_pred) + (1.0 - y_true) * tf.math.log(1.0 - y_pred), axis=[1, 2, 3])
        intersection = tf.reduce_sum(y_true * y_pred, axis=[1, 2, 3])
        total = tf.reduce_sum(y_true + y_pred, axis=[1, 2, 3])
        dice = 1.0 - (2.0 * intersection + 1.0) / (total + 1.0)
        return bce + self.dice_weight * dice

    def get_config(self) -> dict:
        return {**super().get_config(), "dice_weight": self.dice_weight}
