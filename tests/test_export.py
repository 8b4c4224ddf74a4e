"""Export: Keras -> TFLite conversion at three precisions, parity figures, atomic bundles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from edge_fixtures import cached_bundle, cached_tiny_run, random_images
from litert_parity import assert_litert_parity

from scae_tf.errors import ScaeError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_models():
    """The project's own builders, small configurations (untrained: parity needs no training)."""
    import keras

    from scae_tf.config import CaeConfig, UnetConfig
    from scae_tf.models.cae import build_cae
    from scae_tf.models.unet import build_unet

    keras.utils.set_random_seed(3)
    return {
        "unet": build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2)),
        "cae": build_cae((32, 64, 1), CaeConfig(base_filters=8, depth=2, latent_filters=8)),
        "cae_nearest": build_cae((32, 64, 1), CaeConfig(base_filters=8, depth=2, latent_filters=8, upsampling="nearest")),
    }


TOLERANCE = {"fp32": 1e-5, "fp16": 5e-3, "int8": 0.06}


@pytest.mark.parametrize(
    "name, precision",
    [(m, p) for m in ("unet", "cae") for p in TOLERANCE] + [("cae_nearest", "int8")],
)
def test_converted_models_match_keras(real_models, name, precision):
    atol = TOLERANCE[precision]
    from scae_tf.exporting.convert import convert_model

    model = real_models[name]
    shape = tuple(model.inputs[0].shape[1:3])
    representative = random_images(16, shape, seed=1)
    flatbuffer = convert_model(model, precision, lambda: iter(representative))
    stats = assert_litert_parity(model, flatbuffer, random_images(4, shape, seed=2), atol)
    assert stats["images"] == 4 and stats["mean_abs"] <= stats["max_abs"]


def test_parity_helper_fails_on_a_different_model(real_models):
    import keras

    from scae_tf.config import UnetConfig
    from scae_tf.exporting.convert import convert_model
    from scae_tf.models.unet import build_unet

    keras.utils.set_random_seed(99)
    other = build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2))
    with pytest.raises(AssertionError, match="LiteRT differs from Keras"):
        assert_litert_parity(real_models["unet"], convert_model(other, "fp32"), random_images(2, (32, 32)), 1e-3)


def test_int8_needs_representative_data_and_known_precision(real_models):
    from scae_tf.exporting.convert import convert_model

    with pytest.raises(ValueError, match="representative"):
        convert_model(real_models["unet"], "int8")
    with pytest.raises(ScaeError, match="unknown precision 'int4'"):
        convert_model(real_models["unet"], "int4")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_export_bundle_manifest_and_parity(tmp_path_factory, precision):
    from scae_tf import __version__
    from scae_tf.artifacts import open_bundle, sha256_file
    from scae_tf.config import config_hash, load_config

    base = tmp_path_factory.getbasetemp()
    _, run = cached_tiny_run(base)
    path = cached_bundle(base, precision)
    bundle = open_bundle(path)
    manifest = bundle.manifest
    assert manifest["format_version"] == 1 and manifest["precision"] == precision
    assert manifest["config_hash"] == config_hash(load_config(run / "config.json"))
    assert manifest["tool"]["scae_tf"] == __version__
    assert manifest["input"]["seg_size"] == 32 and manifest["input"]["crop_width"] == 96
    assert manifest["input"]["train_image_size"] == [128, 128]
    assert manifest["models"]["cae"]["input_shape"] == [1, 32, 96, 1]
    for name in ("segmenter.tflite", "cae.tflite", "config.json", "preprocessing.json", "calibration.json"):
        assert manifest["files"][name]["sha256"] == sha256_file(path / name)
    copied = (path / "calibration.json").read_bytes() == (run / "calibration.json").read_bytes()
    assert copied == (precision != "int8")  # int8 is recalibrated on the int8 models
    assert manifest["calibration"]["backend"] == ("tflite-int8" if precision == "int8" else "keras (copied from the run dir)")
    assert manifest["calibration"]["images"] == 4

    parity = manifest["parity"]
    assert parity["source"] == "validation" and parity["images"] == 4
    assert parity["pipeline"]["verdict_agreement"] is not None
    if precision == "fp32":
        assert parity["segmenter"]["max_abs"] < 1e-4 and parity["cae"]["max_abs"] < 1e-4
        assert parity["pipeline"]["verdict_agreement"] == 1.0 and parity["pipeline"]["patch_flag_agreement"] == 1.0
    else:
        assert 0 < parity["cae"]["max_abs"] < 0.2
    backend = open_bundle(path).backend()
    assert backend.cae.quantized_io == (precision == "int8") and manifest["representative_images"] == (6 if precision == "int8" else 0)


def test_reduced_precisions_are_smaller(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    sizes = {p: (cached_bundle(base, p) / "cae.tflite").stat().st_size for p in ("fp32", "fp16", "int8")}
    assert sizes["int8"] < sizes["fp16"] < sizes["fp32"]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def test_failed_export_leaves_nothing(tmp_path_factory, tmp_path, monkeypatch):
    import scae_tf.artifacts.bundle as bundle_writer
    import scae_tf.exporting.bundle as bundle_module

    _, run = cached_tiny_run(tmp_path_factory.getbasetemp())

    def broken_save(obj, path):
        (path.parent / "partial-manifest").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(bundle_writer, "save_json", broken_save)
    monkeypatch.setattr(bundle_module, "_measure_parity", lambda *args: {"images": 0})  # not under test here
    with pytest.raises(OSError, match="disk full"):
        bundle_module.export_bundle(run, tmp_path / "bundle", "fp32")
    assert not (tmp_path / "bundle").exists() and _leftovers(tmp_path) == []

    monkeypatch.undo()
    calls = []

    def failing_convert(model, precision, representative=None):
        calls.append(model.name)
        raise ScaeError(f"TFLite conversion of model {model.name!r} to {precision} failed: boom")

    monkeypatch.setattr(bundle_module, "convert_model", failing_convert)
    with pytest.raises(ScaeError, match="conversion"):
        bundle_module.export_bundle(run, tmp_path / "bundle", "fp32")
    assert calls and list(tmp_path.iterdir()) == []


def test_existing_bundle_is_kept_unless_forced(tmp_path_factory, tmp_path):
    from scae_tf.artifacts import open_bundle
    from scae_tf.exporting import export_bundle

    base = tmp_path_factory.getbasetemp()
    _, run = cached_tiny_run(base)
    out = tmp_path / "bundle"
    shutil.copytree(cached_bundle(base, "fp32"), out)
    with pytest.raises(ScaeError, match="already exists.*--force"):
        export_bundle(run, out, "fp16")
    assert open_bundle(out).precision == "fp32"
    export_bundle(run, out, "fp16", overwrite=True, parity_images=1)
    assert open_bundle(out).precision == "fp16" and _leftovers(tmp_path) == []

    folder = tmp_path / "my-files"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ScaeError, match="not a bundle.*--force only replaces bundles"):
        export_bundle(run, folder, "fp32", overwrite=True)
    assert (folder / "keep.txt").read_text() == "mine"


def test_incomplete_run_dir_is_named(tmp_path_factory, tmp_path):
    from scae_tf.exporting import export_bundle

    _, run = cached_tiny_run(tmp_path_factory.getbasetemp())
    partial = tmp_path / "run"
    shutil.copytree(run, partial)
    (partial / "cae.keras").unlink()
    with pytest.raises(ScaeError, match=r"missing cae\.keras.*scae train"):
        export_bundle(partial, tmp_path / "b", "fp32")
    (partial / "cae.keras").write_bytes(b"not a model")
    with pytest.raises(ScaeError, match=r"cae\.keras: cannot load the Keras model"):
        export_bundle(partial, tmp_path / "b", "fp32")
    assert not (tmp_path / "b").exists()


def test_export_command(tmp_path_factory, tmp_path, capsys):
    from scae_tf.cli import main

    _, run = cached_tiny_run(tmp_path_factory.getbasetemp())
    args = ["export", str(run), "--out", str(tmp_path / "b"), "--precision", "fp16", "--parity-images", "2", "--recalibrate"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "fp16" and summary["parity"]["images"] == 2
    assert summary["calibration"]["backend"] == "tflite-fp16"
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "run dir not found" in err and "Traceback" not in err


def test_evenly_spaced_is_spread_and_deterministic():
    from pathlib import Path

    from scae_tf.exporting.bundle import evenly_spaced

    items = [Path(str(i)) for i in range(10)]
    assert evenly_spaced(items, 3) == [Path("0"), Path("4"), Path("9")]
    assert evenly_spaced(items, 20) == items and evenly_spaced(items, 0) == []
    assert np.unique([str(p) for p in evenly_spaced(items, 5)]).size == 5


def test_pipeline_agreement_compares_flags_by_position_and_counts_failures():
    from types import SimpleNamespace

    from scae_tf.exporting.parity import disagreement_message, pipeline_agreement

    def result(anomalous, score, flags):
        positions = np.array(list(flags), dtype=int).reshape(-1, 2)
        patches = SimpleNamespace(grid_index=positions, flagged=np.array(list(flags.values()), bool))
        return SimpleNamespace(anomalous=anomalous, score=score, threshold=2.0, patches=patches)

    class Fake:
        def __init__(self, outcomes):
            self.outcomes = outcomes

        def inspect(self, index):
            outcome = self.outcomes[index]
            if outcome is None:
                raise ScaeError("no object found")
            return outcome

    reference = Fake([result(True, 3.0, {(0, 0): True, (0, 1): False}), result(False, 1.0, {(0, 0): False}), None, None])
    candidate = Fake([result(True, 2.5, {(0, 1): False, (1, 1): False}), result(True, 2.1, {(0, 0): False}), None,
                      result(False, 0.5, {})])
    stats = pipeline_agreement(reference, candidate, [0, 1, 2, 3])
    assert stats["verdict_agreement"] == 0.5  # image 0 agrees, 1 differs, 2 both fail (agree), 3 one fails
    assert stats["inspection_failures"] == {"both": 1, "reference": 1, "candidate": 0}
    assert stats["patch_flag_agreement"] == pytest.approx(3 / 4)  # (0,0) flagged only in the reference
    assert stats["score_max_abs_diff"] == pytest.approx(1.1) and stats["score_max_diff_over_threshold"] == pytest.approx(0.55)

    # the export's warning is one readable line, not the raw figures
    message = disagreement_message(stats, "validation")
    assert "differs from Keras on 2 of 4 validation images" in message and "55% of the threshold" in message
    assert "{" not in message and "manifest.json" in message
    assert disagreement_message({**stats, "verdict_agreement": 1.0}, "validation") is None


def _square(offset: int) -> np.ndarray:
    probability = np.zeros((32, 32), np.float32)
    probability[4:28, 4 + offset : 28 + offset] = 0.9
    return probability


@pytest.mark.parametrize(
    ("lite_probability", "expected"),
    [(_square(0), "int8"), (np.zeros((32, 32), np.float32), "fp16"), (_square(2), "fp16")],
    ids=["same masks", "no part", "crop moved by 2 px"],
)
def test_int8_segmenter_is_kept_only_when_its_masks_agree_with_keras(monkeypatch, lite_probability, expected):
    """A dark part can lose its first-level features to int8 requantisation (the real tyre: no part found
    at all), and masks that agree at IoU 0.85 can still move a loose part's crop by 2 px; then the U-Net is
    exported in fp16 and the bundle says so."""
    from scae_tf.backends.litert import LiteModel
    from scae_tf.config import PreprocessConfig, UnetConfig
    from scae_tf.exporting.bundle import _int8_segmenter_or_fp16
    from scae_tf.exporting.convert import convert_model
    from scae_tf.models import build_unet
    from scae_tf.preprocessing import Preprocessor, PreprocessState

    unet = build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2, input_downsample=1))
    inputs = [np.random.default_rng(i).random((32, 32, 1)).astype(np.float32) for i in range(4)]
    int8_model = convert_model(unet, "int8", lambda: iter(inputs))
    state = PreprocessState(PreprocessConfig(work_size=32, seg_size=32, crop_height=32, crop_width=32), 1.0, None,
                            kind="compact", alignment="translation", seg_shape=(32, 32))

    class KerasMasks:  # the Keras U-Net finds the part in the middle
        def segment(self, image):
            return _square(0)

    monkeypatch.setattr(LiteModel, "__call__", lambda self, image: lite_probability)
    works = [x[..., 0] for x in inputs]
    model, precision = _int8_segmenter_or_fp16(unet, int8_model, KerasMasks(), works, Preprocessor(state), threads=1)
    assert precision == expected
    assert (model is int8_model) == (expected == "int8")
    monkeypatch.undo()
    lite = LiteModel(model, 1, "segmenter")
    assert lite(inputs[0]).shape == (32, 32)
    assert lite.quantized_io == (expected == "int8")


def test_a_model_xnnpack_refuses_runs_on_the_builtin_kernels(monkeypatch, caplog):
    """XNNPACK can refuse an int8 graph at prepare time (seen once after a fast-mode training); the model
    must still load and give the same results, up to int8 rounding, with the built-in kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from scae_tf.backends import litert
    from scae_tf.config import UnetConfig
    from scae_tf.exporting.convert import convert_model
    from scae_tf.models import build_unet

    unet = build_unet((32, 32, 1), UnetConfig(base_filters=4, depth=2, input_downsample=1))
    inputs = [np.random.default_rng(i).random((32, 32, 1)).astype(np.float32) for i in range(4)]
    model = convert_model(unet, "int8", lambda: iter(inputs))
    expected = litert.LiteModel(model, 1, "segmenter")(inputs[0])

    class RefusingXnnpack(Interpreter):
        def __init__(self, *args, experimental_op_resolver_type=OpResolverType.AUTO, **kwargs):
            super().__init__(*args, experimental_op_resolver_type=experimental_op_resolver_type, **kwargs)
            self.resolver = experimental_op_resolver_type

        def allocate_tensors(self):
            if self.resolver != OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES:
                raise RuntimeError("failed to create XNNPACK runtimeNode number 25 (TfLiteXNNPackDelegate) failed to prepare.")
            return super().allocate_tensors()

    RefusingXnnpack.__module__ = Interpreter.__module__  # where the runtime's OpResolverType is found
    monkeypatch.setattr(litert, "interpreter_class", lambda: (RefusingXnnpack, "ai_edge_litert"))
    with caplog.at_level("WARNING"):
        lite = litert.LiteModel(model, 1, "segmenter")
    assert "XNNPACK cannot run this model" in caplog.text and lite.interpreter.resolver == OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    assert np.abs(lite(inputs[0]) - expected).max() <= 2 / 255  # int8 kernels round differently, by a step or so
