"""Edge runtime: bundle verification, interpreter choice, LiteBackend on tiny models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from edge_fixtures import random_images, tiny_cae, tiny_segmenter, write_plain_bundle
from litert_parity import assert_litert_parity

from scae_tf.artifacts import open_bundle
from scae_tf.backends import litert as interpreter_module
from scae_tf.errors import ScaeError


@pytest.fixture(scope="module")
def models():
    return tiny_segmenter(), tiny_cae()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("bundles")
    return {p: (root / p, write_plain_bundle(root / p, *models, precision=p)) for p in ("fp32", "int8")}


@pytest.fixture
def bundle_copy(tmp_path, bundles):
    """A fresh copy of the fp32 bundle that a test may damage."""
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(bundles["fp32"][0], copy)
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-5), ("int8", 0.08)])
def test_lite_backend_matches_keras(bundles, models, precision, atol):
    path, manifest = bundles[precision]
    backend = open_bundle(path).backend(threads=2)
    assert backend.precision == precision and backend.runtime == "ai_edge_litert"
    segmenter, cae = models
    seg_in, crops = random_images(3, (32, 32), seed=5), random_images(3, (16, 48), seed=6)
    for x in seg_in:
        assert backend.segment(x).shape == (32, 32) and backend.segment(x).dtype == np.float32
    for x in crops:
        assert backend.reconstruct(x).shape == (16, 48)
    assert_litert_parity(segmenter, path / "segmenter.tflite", seg_in, atol)
    assert_litert_parity(cae, path / "cae.tflite", crops, atol)
    io = "int8" if precision == "int8" else "float32"
    assert backend.cae.input_dtype == np.dtype(io) and backend.cae.quantized_io == (precision == "int8")


@pytest.mark.slow
def test_open_bundle_reads_manifest(bundles):
    path, written = bundles["fp32"]
    bundle = open_bundle(path)
    assert bundle.precision == "fp32" and bundle.manifest["files"] == written["files"]
    assert bundle.config().preprocess.work_size == 512


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda b: (b / "cae.tflite").unlink(), "cae.tflite: file missing from the bundle"),
        (lambda b: (b / "segmenter.tflite").write_bytes((b / "segmenter.tflite").read_bytes()[:100]), "truncated"),
        (lambda b: _flip_byte(b / "cae.tflite"), "cae.tflite: sha256 does not match"),
        (lambda b: (b / "calibration.json").write_text('{"placeholder": false}\n'), "calibration.json"),
        (lambda b: _edit_manifest(b, format_version=99), "format version 99 is not supported"),
        (lambda b: _edit_manifest(b, precision="int4"), "unknown precision 'int4'"),
        (lambda b: (b / "manifest.json").write_text("{not json"), "corrupt manifest"),
        (lambda b: (b / "manifest.json").unlink(), "not a bundle"),
    ],
)
def test_damaged_bundle_is_refused_naming_the_file(bundle_copy, damage, expected):
    damage(bundle_copy)
    with pytest.raises(ScaeError, match="re-export the bundle") as err:
        open_bundle(bundle_copy).backend()
    assert expected in str(err.value)


def test_missing_bundle_folder(tmp_path):
    with pytest.raises(ScaeError, match="bundle folder not found"):
        open_bundle(tmp_path / "nope")


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(bundle, **changes):
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(changes)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_interpreter_preference_order(monkeypatch):
    real_import = interpreter_module.importlib.import_module
    attempts = []

    candidates = {module for module, _ in interpreter_module.CANDIDATES}

    def only(allowed):
        def fake(name, package=None):
            if name not in candidates:  # TensorFlow's own imports while it loads
                return real_import(name, package)
            attempts.append(name)
            if name.split(".")[0] not in allowed:
                raise ImportError(name)
            return real_import(name)

        return fake

    monkeypatch.setattr(interpreter_module.importlib, "import_module", only({"ai_edge_litert", "tensorflow"}))
    assert interpreter_module.interpreter_class()[1] == "ai_edge_litert"
    assert attempts == ["ai_edge_litert.interpreter"]  # TensorFlow never touched when LiteRT is there
    attempts.clear()
    monkeypatch.setattr(interpreter_module.importlib, "import_module", only({"tensorflow"}))
    cls, name = interpreter_module.interpreter_class()
    assert name == "tensorflow" and list(dict.fromkeys(attempts)) == ["ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow"]
    monkeypatch.setattr(interpreter_module.importlib, "import_module", only(set()))
    with pytest.raises(ScaeError, match=r"pip install 'scae-tf\[edge\]'"):
        interpreter_module.interpreter_class()


def test_runtime_imports_without_tensorflow():
    code = (
        "import sys, scae_tf.runtime, scae_tf.overlay, scae_tf.commands.inspect;"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quantisation_round_trip_and_clipping():
    from scae_tf.backends.litert import _dequantize, _quantize

    int8 = {"dtype": np.int8, "quantization": (1 / 255, -128)}
    x = np.array([-0.5, 0.0, 0.6, 1.0, 2.0], np.float32)
    q = _quantize(x, int8)
    assert q.dtype == np.int8 and q.tolist() == [-128, -128, 25, 127, 127]  # out of range clips
    assert np.allclose(_dequantize(q, int8), [0.0, 0.0, 0.6, 1.0, 1.0])
    float_io = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert _quantize(x, float_io) is x and _dequantize(x, float_io) is x  # float I/O passes through
