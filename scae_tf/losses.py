"""NaN-safe MS-SSIM and the CAE loss ``alpha * (1 - MS-SSIM) + (1 - alpha) * MSE``.

``ms_ssim`` reproduces ``tf.image.ssim_multiscale`` (Gaussian window built by softmax,
VALID filtering, K1/K2, compensation 1.0, 2x average pooling with symmetric
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
import numpy as np
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


def _gaussian_1d(filter_size: int, filter_sigma: float) -> np.ndarray:
    """The TF op's window is softmax(g(x) + g(y)) = outer product of this normalised 1-D Gaussian."""
    coords = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2.0
    g = np.exp(-0.5 * coords**2 / filter_sigma**2)
    return g / g.sum()


def _valid_blur_matrix(size: int, window: np.ndarray) -> tf.Tensor:
    """(size - k + 1, size) band matrix: a VALID 1-D convolution as one matmul."""
    k = len(window)
    rows = np.zeros((size - k + 1, size), np.float32)
    for i in range(size - k + 1):
        rows[i, i : i + k] = window
    return tf.constant(rows)


def _safe_pow(x: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """``relu(x) ** p`` with exactly that value and a finite gradient (0 where x <= eps)."""
    positive = x > 0.0
    exact = tf.where(positive, tf.pow(tf.where(positive, x, 1.0), p), 0.0)
    smooth = tf.pow(tf.maximum(x, _SAFE_POW_EPS), p)
    return tf.where(x > _SAFE_POW_EPS, smooth, tf.stop_gradient(exact))


def _ssim_per_channel(x, y, window: np.ndarray, max_val, k1, k2):
    """SSIM and contrast-structure per image and channel. The Gaussian window is separable, so
    each of the four local means is two band-matrix products (one per axis), all four at once:
    6x faster than a 2-D depthwise convolution on CPU, forward and backward."""
    height, width = x.shape[1], x.shape[2]
    stacked = tf.concat([x, y, x * y, tf.square(x) + tf.square(y)], axis=-1)
    blurred = tf.einsum("ih,bhwc->biwc", _valid_blur_matrix(height, window), stacked)
    blurred = tf.einsum("jw,biwc->bijc", _valid_blur_matrix(width, window), blurred)
    mean0, mean1, mean_xy, mean_sq = tf.split(blurred, 4, axis=-1)
    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    num0 = mean0 * mean1 * 2.0
    den0 = tf.square(mean0) + tf.square(mean1)
    luminance = (num0 + c1) / (den0 + c1)
    cs = (mean_xy * 2.0 - num0 + c2) / (mean_sq - den0 + c2)
    ssim_val = tf.reduce_mean(luminance * cs, axis=[1, 2])
    return ssim_val, tf.reduce_mean(cs, axis=[1, 2])


def _downscale(x: tf.Tensor) -> tf.Tensor:
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
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
    if height is None or width is None or img1.shape[3] is None:
        raise ValueError(f"MS-SSIM needs static image shapes (height, width, channels), got {img1.shape}")
    needed = min_side(len(weights), filter_size)
    if min(height, width) < needed:
        raise ValueError(
            f"MS-SSIM with {len(weights)} scales and filter size {filter_size} needs images of at least "
            f"{needed}x{needed} px, got {height}x{width}; use fewer scales or a smaller filter"
        )
    window = _gaussian_1d(filter_size, filter_sigma)
    mcs = []
    ssim_val = None
    for k in range(len(weights)):
        if k > 0:
            img1, img2 = _downscale(img1), _downscale(img2)
        ssim_val, cs = _ssim_per_channel(img1, img2, window, max_val, k1, k2)
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
