"""``export_bundle``: run dir -> verified TFLite bundle folder, atomically.

The bundle is assembled in a hidden temp folder next to the target and renamed into place
only when every file, the parity check and the manifest are written, so a failed or
interrupted export never leaves a half bundle that an inspection PC could load.
"""

from __future__ import annotations

import datetime
import logging
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from export.convert import PRECISIONS, batch1_shape, convert_model
from export.parity import difference_stats, pipeline_agreement
from export.run_dir import check_run_dir, run_config, split_images
from scae_tf import __version__
from scae_tf.calibration import Calibration, calibrate
from scae_tf.config import RunConfig, config_hash, save_json
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, read_raw
from scae_tf.keras_backend import KerasBackend, load_keras_model
from scae_tf.pipeline import InspectionPipeline
from scae_tf.preprocessing import Preprocessor, PreprocessState
from scae_tf.runtime.bundle import BUNDLE_FILES, FORMAT_VERSION, MANIFEST_NAME, MODEL_FILES, sha256_file
from scae_tf.runtime.lite_backend import LiteBackend

log = logging.getLogger(__name__)

COPIED_FILES = ("config.json", "preprocessing.json", "calibration.json")


def evenly_spaced(items: list[Path], count: int) -> list[Path]:
    """``count`` items spread over the list (deterministic, not just the first few)."""
    if count <= 0 or not items:
        return []
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


def model_inputs(
    paths: list[Path], preprocessor: Preprocessor, keras: KerasBackend
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seg inputs and canonical crops of ``paths``, through the same pre-processing as inspection."""
    seg_inputs, crops = [], []
    for path in paths:
        try:
            work = preprocessor.work_image(read_image(path))
            seg = preprocessor.seg_input(work)
            mask = preprocessor.mask_from_prob(keras.segment(seg))
            crop = preprocessor.canonical(work, mask)[0]
        except ScaeError as err:
            log.warning("export: skipping %s: %s", path, err)
            continue
        seg_inputs.append(seg)
        crops.append(crop)
    return seg_inputs, crops


def _check_shapes(segmenter, cae, config: RunConfig, run_dir: Path) -> None:
    pre = config.preprocess
    expected = {
        "segmenter.keras": ((pre.seg_size, pre.seg_size), batch1_shape(segmenter)[1:3]),
        "cae.keras": ((pre.crop_height, pre.crop_width), batch1_shape(cae)[1:3]),
    }
    for name, (want, got) in expected.items():
        if tuple(want) != tuple(got):
            raise ScaeError(f"model input is {got} but config.json says {want}; the run dir is inconsistent, retrain", run_dir / name)


def _tool_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"scae_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def _measure_parity(
    run_dir: Path,
    config: RunConfig,
    state: PreprocessState,
    keras: KerasBackend,
    lite: LiteBackend,
    lite_calibration: Calibration,
    count: int,
) -> dict[str, Any]:
    source = "validation"
    paths = split_images(run_dir, "validation")
    if not paths:
        source, paths = "calibration", split_images(run_dir, "calibration")
    paths = evenly_spaced(paths, count)
    if not paths:
        log.warning("export: split.json has no validation or calibration images; parity not measured")
        return {"source": None, "images": 0}
    _, images = _readable_images(paths)
    seg_inputs, crops = model_inputs(paths, Preprocessor(state), keras)
    pipelines = [
        InspectionPipeline(keras, state, Calibration.load(run_dir / "calibration.json"), config.postprocess),
        InspectionPipeline(lite, state, lite_calibration, config.postprocess),
    ]
    parity = {
        "source": source,
        "images": len(images),
        "segmenter": difference_stats(keras.segment, lite.segment, seg_inputs),
        "cae": difference_stats(keras.reconstruct, lite.reconstruct, crops),
        "pipeline": pipeline_agreement(pipelines[0], pipelines[1], images),
    }
    if parity["pipeline"]["verdict_agreement"] != 1.0:
        log.warning("export: TFLite and Keras verdicts differ on %s images: %s", source, parity["pipeline"])
    return parity


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier bundle (or an empty folder), and only when asked."""
    if not out.exists():
        return
    if not overwrite:
        raise ScaeError("already exists; choose another --out or pass --force to replace it", out)
    if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file()):
        raise ScaeError("exists and is not a bundle (no manifest.json); --force only replaces bundles, choose another --out", out)


def _readable_images(paths: list[Path]) -> tuple[list[Path], list[np.ndarray]]:
    readable, images = [], []
    for path in paths:
        try:
            images.append(read_image(path))
            readable.append(path)
        except ScaeError as err:
            log.warning("export: skipping %s: %s", path, err)
    return readable, images


def recalibrate(run_dir: Path, config: RunConfig, state: PreprocessState, lite: LiteBackend) -> Calibration:
    """Calibrate the post-processor on the TFLite models, with the run's calibration images.

    Why: the threshold and the per-position / zone statistics describe the residuals of the
    model that makes the decision. int8 reconstructions carry quantisation noise the Keras
    residuals do not have (on the dev split the int8 image scores correlated only ~0.8 with
    the Keras ones), so a Keras calibration would put an int8 bundle at another false-alarm rate.
    """
    paths = split_images(run_dir, "calibration") or split_images(run_dir, "validation")
    paths, images = _readable_images(paths)
    preprocessor = Preprocessor(state)
    works = [preprocessor.work_image(image) for image in images]
    return calibrate(lite, preprocessor, config.postprocess, works, [p.name for p in paths])


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished temp folder to ``out`` (replacing an old bundle only when asked)."""
    if not out.exists():
        tmp.rename(out)
        return
    _check_target(out, overwrite)
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    backup.rmdir()
    out.rename(backup)
    tmp.rename(out)
    shutil.rmtree(backup, ignore_errors=True)


def write_bundle(
    out: Path, models: dict[str, bytes], copies: dict[str, Path], manifest: dict[str, Any], overwrite: bool = False
) -> dict[str, Any]:
    """Write a bundle atomically: models and copied files into a temp folder, hashes into the manifest, rename.

    ``models`` maps "segmenter"/"cae" to flatbuffers, ``copies`` maps bundle file names to source
    files; ``manifest`` gets its ``files`` entry (sha256 and size of every file) here.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        for name, flatbuffer in models.items():
            (tmp / MODEL_FILES[name]).write_bytes(flatbuffer)
        for name, source in copies.items():
            shutil.copyfile(source, tmp / name)
        manifest = {
            **manifest,
            "files": {
                name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size} for name in BUNDLE_FILES
            },
        }
        save_json(manifest, tmp / MANIFEST_NAME)
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def export_bundle(
    run_dir: str | Path,
    out: str | Path,
    precision: str = "fp32",
    *,
    representative_images: int = 64,
    parity_images: int = 8,
    threads: int = 2,
    overwrite: bool = False,
    recalibrate_on_tflite: bool | None = None,
) -> dict[str, Any]:
    """Export ``run_dir`` (written by ``scae train``) to the bundle folder ``out``; return the manifest.

    ``representative_images`` good training images drive the int8 activation ranges;
    ``parity_images`` held-aside good images measure TFLite-vs-Keras parity.
    ``recalibrate_on_tflite`` (default: only for int8) re-runs calibration on the converted
    models instead of copying the run's Keras calibration (see ``recalibrate``).
    """
    run_dir, out = Path(run_dir), Path(out)
    if precision not in PRECISIONS:
        raise ScaeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    check_run_dir(run_dir)
    _check_target(out, overwrite)
    if out.resolve() == run_dir.resolve():
        raise ScaeError("the bundle cannot be written into its own run dir; choose another --out", out)
    config = run_config(run_dir)
    state = PreprocessState.load(run_dir / "preprocessing.json")
    segmenter = load_keras_model(run_dir / "segmenter.keras")
    cae = load_keras_model(run_dir / "cae.keras")
    _check_shapes(segmenter, cae, config, run_dir)
    keras = KerasBackend(segmenter, cae)

    train_paths = split_images(run_dir, "train")
    representative: dict[str, Any] = {"segmenter": None, "cae": None}
    used_representative = 0
    if precision == "int8":
        seg_inputs, crops = model_inputs(evenly_spaced(train_paths, representative_images), Preprocessor(state), keras)
        if not crops:
            raise ScaeError("int8 export needs good training images for the activation ranges, but split.json lists none "
                            "that could be read and segmented; export fp32/fp16 or retrain", run_dir / "split.json")
        used_representative = len(crops)
        representative = {"segmenter": lambda: iter(seg_inputs), "cae": lambda: iter(crops)}
    log.info("export: converting %s to TFLite %s", run_dir, precision)
    models = {
        "segmenter": convert_model(segmenter, precision, representative["segmenter"]),
        "cae": convert_model(cae, precision, representative["cae"]),
    }
    lite = LiteBackend.from_models(models["segmenter"], models["cae"], threads=threads, precision=precision)
    log.info("export: measuring parity with Keras")
    if recalibrate_on_tflite is None:
        recalibrate_on_tflite = precision == "int8"
    run_calibration = Calibration.load(run_dir / "calibration.json")
    calibration = recalibrate(run_dir, config, state, lite) if recalibrate_on_tflite else run_calibration
    parity = _measure_parity(run_dir, config, state, keras, lite, calibration, parity_images)

    lite_models = {"segmenter": lite.segmenter, "cae": lite.cae}
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "scae-tf bundle",
        "precision": precision,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source_run": str(run_dir.resolve()),
        "config_hash": config_hash(config),
        "tool": _tool_versions(),
        "input": {
            "work_size": config.preprocess.work_size,
            "seg_size": config.preprocess.seg_size,
            "crop_height": config.preprocess.crop_height,
            "crop_width": config.preprocess.crop_width,
            "channels": config.cae.channels,
            "train_image_size": _image_size(train_paths),
        },
        "models": {
            name: {
                "file": MODEL_FILES[name],
                "input_shape": list(model.input_shape),
                "output_shape": list(model.output_shape),
                "io_dtype": model.input_dtype.name,
            }
            for name, model in lite_models.items()
        },
        "representative_images": used_representative,
        "calibration": {
            "backend": f"tflite-{precision}" if recalibrate_on_tflite else "keras (copied from the run dir)",
            "images": calibration.n_images,
            "threshold": calibration.threshold,
            "run_threshold": run_calibration.threshold,
        },
        "parity": parity,
    }
    copies = {name: run_dir / name for name in COPIED_FILES}
    with tempfile.TemporaryDirectory(prefix="scae-export-") as scratch:
        if recalibrate_on_tflite:
            copies["calibration.json"] = Path(scratch) / "calibration.json"
            calibration.save(copies["calibration.json"])
        manifest = write_bundle(out, models, copies, manifest, overwrite)
    log.info("export: wrote %s (%s)", out, precision)
    return manifest


def _image_size(paths: list[Path]) -> list[int] | None:
    """(height, width) of the first readable training image, so inspection can warn about other shapes."""
    for path in paths[:3]:
        try:
            return list(read_raw(path).shape[:2])
        except ScaeError:
            continue
    return None
