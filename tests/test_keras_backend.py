"""KerasBackend: the back-end contract on the .keras models of a run dir."""

from __future__ import annotations

import numpy as np
import pytest

from scae_tf.artifacts import RunDir
from scae_tf.backends.keras_backend import KerasBackend
from scae_tf.config import CaeConfig, UnetConfig
from scae_tf.errors import ScaeError
from scae_tf.models import build_cae, build_unet


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2, input_downsample=2)).save(folder / "segmenter.keras")
    build_cae((16, 48, 1), CaeConfig(base_filters=4, max_filters=8, latent_filters=4, depth=3)).save(folder / "cae.keras")
    return folder


def test_contract_shapes_and_values(run_dir):
    backend = RunDir(run_dir).backend()
    rng = np.random.default_rng(0)
    seg_in = rng.random((32, 32)).astype(np.float32)
    crop = rng.random((16, 48)).astype(np.float32)
    prob = backend.segment(seg_in)
    recon = backend.reconstruct(crop)
    assert prob.shape == (32, 32) and prob.dtype == np.float32 and 0 <= prob.min() and prob.max() <= 1
    assert recon.shape == (16, 48) and recon.dtype == np.float32
    np.testing.assert_allclose(prob, backend.segmenter(seg_in[None, ..., None]).numpy()[0, ..., 0], atol=1e-6)
    np.testing.assert_allclose(recon, backend.cae(crop[None, ..., None]).numpy()[0, ..., 0], atol=1e-6)
    np.testing.assert_array_equal(backend.reconstruct(crop), recon)  # deterministic, no retracing surprises


def test_wrong_input_shape_is_rejected(run_dir):
    models = RunDir(run_dir).keras_models()
    backend = KerasBackend(models["segmenter"], models["cae"])
    with pytest.raises(ValueError, match="expects 16x48x1"):
        backend.reconstruct(np.zeros((16, 32), np.float32))


def test_missing_run_dir_or_model_is_a_clear_error(tmp_path):
    with pytest.raises(ScaeError, match="run dir not found"):
        RunDir(tmp_path / "nope").backend()
    with pytest.raises(ScaeError, match="model not found"):
        RunDir(tmp_path).backend()
    (tmp_path / "segmenter.keras").write_text("not a model")
    (tmp_path / "cae.keras").write_text("not a model")
    with pytest.raises(ScaeError, match="cannot load"):
        RunDir(tmp_path).backend()
