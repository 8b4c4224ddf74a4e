"""MS-SSIM + MSE loss: same value as tf.image.ssim_multiscale, finite gradients where the op's are NaN."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from scae_tf.losses import MSSSIM_WEIGHTS, MSSSIMLoss, min_side, ms_ssim, power_factors


def _pair(shape, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return a, b


def test_power_factors_are_truncated_and_renormalised():
    assert power_factors(5) == pytest.approx(MSSSIM_WEIGHTS)
    three = power_factors(3)
    assert sum(three) == pytest.approx(1.0)
    assert three == pytest.approx(np.array(MSSSIM_WEIGHTS[:3]) / sum(MSSSIM_WEIGHTS[:3]))
    with pytest.raises(ValueError):
        power_factors(6)


@pytest.mark.parametrize(
    "shape, scales, filter_size",
    [((3, 37, 53, 1), 3, 7), ((2, 64, 64, 1), 5, 3), ((2, 161, 170, 3), 5, 11), ((2, 25, 25, 1), 3, 7)],
)
def test_equals_tf_ssim_multiscale(shape, scales, filter_size):
    a, b = _pair(shape)
    mine = ms_ssim(a, b, scales=scales, filter_size=filter_size).numpy()
    ref = tf.image.ssim_multiscale(a, b, 1.0, power_factors=power_factors(scales), filter_size=filter_size).numpy()
    # the Gaussian window is applied as two matmuls instead of one 2-D conv: float32 sums in another order
    np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)
    assert mine.shape == (shape[0],)
    assert np.all(mine < 1.0)


def test_identical_images_give_one_and_zero_loss():
    a, _ = _pair((2, 32, 32, 1))
    np.testing.assert_allclose(ms_ssim(a, a, scales=3, filter_size=7).numpy(), 1.0, atol=1e-6)
    assert float(MSSSIMLoss(scales=3, filter_size=7)(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_loss_combines_ms_ssim_and_mse():
    a, b = _pair((2, 32, 32, 1))
    alpha = 0.7
    loss = float(MSSSIMLoss(alpha=alpha, scales=2, filter_size=5)(a, b))
    expected = np.mean(alpha * (1 - ms_ssim(a, b, scales=2, filter_size=5).numpy()) + (1 - alpha) * np.mean((a - b) ** 2, axis=(1, 2, 3)))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_gradient_finite_where_tf_op_is_nan():
    a, _ = _pair((2, 32, 32, 1))
    anti = tf.Variable(1.0 - a)  # anti-correlated: contrast-structure terms <= 0
    with tf.GradientTape() as tape:
        ref = tf.image.ssim_multiscale(a, anti, 1.0, power_factors=power_factors(3), filter_size=7)
    assert np.isnan(tape.gradient(ref, anti).numpy()).any(), "the TF op's gradient is expected to be NaN here"
    with tf.GradientTape() as tape:
        mine = ms_ssim(a, anti, scales=3, filter_size=7)
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), atol=1e-7)
    assert np.isfinite(tape.gradient(mine, anti).numpy()).all()
    with tf.GradientTape() as tape:
        loss = MSSSIMLoss(scales=3, filter_size=7)(a, anti)
    grad = tape.gradient(loss, anti).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0  # the MSE term still pulls


def test_gradient_finite_on_constant_and_near_zero_inputs():
    zeros = tf.Variable(tf.zeros((2, 32, 32, 1)))
    ones = np.ones((2, 32, 32, 1), np.float32)
    rng = np.random.default_rng(1)
    noisy = tf.Variable(rng.random((2, 32, 32, 1)).astype(np.float32) * 1e-4)
    for pred in (zeros, noisy):
        with tf.GradientTape() as tape:
            loss = MSSSIMLoss(scales=3, filter_size=7)(ones, pred)
        assert np.isfinite(loss.numpy()) and np.isfinite(tape.gradient(loss, pred).numpy()).all()


def test_too_small_images_raise_clear_error():
    assert min_side(3, 7) == 25
    a, b = _pair((1, 24, 40, 1))
    with pytest.raises(ValueError, match="at least 25x25"):
        ms_ssim(a, b, scales=3, filter_size=7)
    ms_ssim(*_pair((1, 25, 40, 1)), scales=3, filter_size=7)


def test_loss_is_keras_serializable():
    loss = MSSSIMLoss(alpha=0.6, scales=2, filter_size=5, filter_sigma=1.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MSSSIMLoss)
    assert (restored.alpha, restored.scales, restored.filter_size, restored.filter_sigma) == (0.6, 2, 5, 1.0)
    a, b = _pair((2, 32, 32, 1))
    assert float(restored(a, b)) == pytest.approx(float(loss(a, b)))


def test_train_step_benchmark_writes_its_figures(tmp_path):
    import json

    from benchmarks.train_step import main

    out = tmp_path / "step.json"
    assert main(["--out", str(out), "--image-size", "128", "--steps", "1", "--batch-size", "2"]) == 0
    result = json.loads(out.read_text())
    assert result["crop"] == [32, 96, 1] and result["batch_size"] == 2
    assert result["seconds_per_training_step"] > 0 and result["seconds_per_loss_and_gradient"] > 0
