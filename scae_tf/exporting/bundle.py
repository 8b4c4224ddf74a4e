"""``export_bundle``: run dir -> verified TFLite bundle folder, atomically.

Conversion, parity and (for int8) recalibration happen first; the bundle is then written by
``scae_tf.artifacts.write_bundle`` (temp folder renamed into place when complete), so a failed
or interrupted export never leaves a half bundle that an inspection PC could load.
"""

from __future__ import annotations

import datetime
import logging
import math
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf import __version__
from scae_tf.artifacts import FORMAT_VERSION, PRECISIONS, RunDir, check_bundle_target, names, write_bundle
from scae_tf.backends.keras_backend import KerasBackend
from scae_tf.backends.litert import LiteBackend
from scae_tf.calibration import Calibration, calibrate
from scae_tf.config import RunConfig, config_hash
from scae_tf.errors import ScaeError
from scae_tf.exporting.convert import batch1_shape, convert_model
from scae_tf.exporting.parity import difference_stats, disagreement_message, pipeline_agreement
from scae_tf.imageio import read_raw
from scae_tf.pipeline import InspectionPipeline
from scae_tf.pose import Pose
from scae_tf.preprocessing import Preprocessor, PreprocessState
from scae_tf.references import GoodReferences

log = logging.getLogger(__name__)


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
    """Work images (the segmenter's input is ``preprocessor.seg_input`` of each) and canonical crops of
    ``paths``, through the same pre-processing as inspection; images without a part are skipped."""
    works, crops = [], []
    for path in paths:
        try:
            prepared = preprocessor.prepare_image(keras.segment, preprocessor.read(path))
        except ScaeError as err:
            log.warning("export: skipping %s: %s", path, err)
            continue
        if not prepared.found:
            log.warning("export: skipping %s: %s", path, prepared.reason)
            continue
        works.append(prepared.work)
        crops.extend(preprocessor.cae_inputs(prepared.crop))  # tiles of a surface
    return works, crops


def _check_shapes(models: dict[str, Any], config: RunConfig, run: RunDir, state: PreprocessState) -> None:
    pre = Preprocessor(state)
    expected = {"segmenter": pre.seg_shape, "cae": pre.cae_shape}
    for model, want in expected.items():
        got = batch1_shape(models[model])[1:3]
        if tuple(want) != tuple(got):
            raise ScaeError(
                f"model input is {got} but {names.CONFIG} says {want}; the run dir is inconsistent, retrain", run.model_file(model)
            )


def _tool_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"scae_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def _measure_parity(
    run: RunDir,
    config: RunConfig,
    state: PreprocessState,
    keras: KerasBackend,
    lite: LiteBackend,
    lite_calibration: Calibration,
    count: int,
) -> dict[str, Any]:
    source = "validation"
    paths = evenly_spaced(run.split_images(source), count)
    if not paths:
        log.warning("export: %s lists no held-out (validation) images; parity not measured", run.split_file)
        return {"source": None, "images": 0}
    preprocessor = Preprocessor(state)
    _, images = _readable_images(paths, preprocessor)
    works, crops = model_inputs(paths, preprocessor, keras)
    pipelines = [
        InspectionPipeline(keras, state, run.calibration(config, state), config.postprocess),
        InspectionPipeline(lite, state, lite_calibration, config.postprocess),
    ]
    parity = {
        "source": source,
        "images": len(images),
        "segmenter": difference_stats(keras.segment, lite.segment, [preprocessor.seg_input(work) for work in works]),
        "cae": difference_stats(keras.reconstruct, lite.reconstruct, crops),
        "pipeline": pipeline_agreement(pipelines[0], pipelines[1], images),
    }
    message = disagreement_message(parity["pipeline"], source)
    if message:
        log.warning("export: %s", message)
    return parity


def _readable_images(paths: list[Path], preprocessor: Preprocessor) -> tuple[list[Path], list[np.ndarray]]:
    readable, images = [], []
    for path in paths:
        try:
            images.append(preprocessor.read(path))
            readable.append(path)
        except ScaeError as err:
            log.warning("export: skipping %s: %s", path, err)
    return readable, images


def recalibrate(
    run: RunDir, config: RunConfig, state: PreprocessState, lite: LiteBackend, references: GoodReferences | None = None
) -> Calibration:
    """Calibrate the post-processor on the TFLite models, with the run's calibration images and
    the run's good references (training crops: the same whichever back-end reconstructs).

    Why: the threshold and the per-position / zone statistics describe the residuals of the
    model that makes the decision. int8 reconstructions carry quantisation noise the Keras
    residuals do not have (on the dev split the int8 image scores correlated only ~0.8 with
    the Keras ones), so a Keras calibration would put an int8 bundle at another false-alarm rate.
    """
    preprocessor = Preprocessor(state)
    paths, images = _readable_images(run.split_images("validation"), preprocessor)
    works = [preprocessor.work_image(image) for image in images]
    # read one at a time, and only if calibration asks for them (postprocess.zscore_training_floor)
    training = (preprocessor.work_image(image) for path in run.split_images("train") for image in _readable_images([path], preprocessor)[1])
    return calibrate(lite, preprocessor, config.postprocess, works, [p.name for p in paths], references, training)


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
    run, out = RunDir(run_dir), Path(out)
    if precision not in PRECISIONS:
        raise ScaeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    run.check_complete()
    check_bundle_target(out, overwrite)
    if out.resolve() == run.path.resolve():
        raise ScaeError("the bundle cannot be written into its own run dir; choose another --out", out)
    config = run.config()
    state = run.preprocess_state()
    keras_models = run.keras_models()
    _check_shapes(keras_models, config, run, state)
    segmenter, cae = keras_models["segmenter"], keras_models["cae"]
    keras = KerasBackend(segmenter, cae)

    train_paths = run.split_images("train")
    representative: dict[str, Any] = {"segmenter": None, "cae": None}
    used_representative = 0
    preprocessor = Preprocessor(state)
    if precision == "int8":
        works, crops = model_inputs(evenly_spaced(train_paths, representative_images), preprocessor, keras)
        seg_inputs = [preprocessor.seg_input(work) for work in works]
        if not crops:
            raise ScaeError("int8 export needs good training images for the activation ranges, but the split lists none "
                            "that could be read and segmented; export fp32/fp16 or retrain", run.split_file)
        used_representative = len(crops)
        representative = {"segmenter": lambda: iter(seg_inputs), "cae": lambda: iter(crops)}
    log.info("export: converting %s to TFLite %s", run.path, precision)
    models = {
        "segmenter": convert_model(segmenter, precision, representative["segmenter"]),
        "cae": convert_model(cae, precision, representative["cae"]),
    }
    segmenter_precision = precision
    if precision == "int8":
        models["segmenter"], segmenter_precision = _int8_segmenter_or_fp16(segmenter, models["segmenter"], keras, works, preprocessor, threads)
    lite = LiteBackend.from_models(models["segmenter"], models["cae"], threads=threads, precision=precision)
    log.info("export: measuring parity with Keras")
    if recalibrate_on_tflite is None:
        recalibrate_on_tflite = precision == "int8"
    run_calibration = run.calibration(config, state)
    calibration = recalibrate(run, config, state, lite, run_calibration.references) if recalibrate_on_tflite else run_calibration
    parity = _measure_parity(run, config, state, keras, lite, calibration, parity_images)

    lite_models = {"segmenter": lite.segmenter, "cae": lite.cae}
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "scae-tf bundle",
        "precision": precision,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source_run": str(run.path.resolve()),
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
                "file": names.TFLITE_MODELS[name],
                "input_shape": list(model.input_shape),
                "output_shape": list(model.output_shape),
                "io_dtype": model.input_dtype.name,
            }
            for name, model in lite_models.items()
        },
        "segmenter_precision": segmenter_precision,
        "representative_images": used_representative,
        "calibration": {
            "backend": f"tflite-{precision}" if recalibrate_on_tflite else "keras (copied from the run dir)",
            "images": calibration.n_images,
            "threshold": calibration.threshold,
            "run_threshold": run_calibration.threshold,
        },
        "parity": parity,
    }
    copies = {name: run.file(name) for name in names.COPIED_FROM_RUN}
    with tempfile.TemporaryDirectory(prefix="scae-export-") as scratch:
        if recalibrate_on_tflite:
            copies[names.CALIBRATION] = Path(scratch) / names.CALIBRATION
            calibration.save(copies[names.CALIBRATION])
        manifest = write_bundle(out, models, copies, manifest, overwrite)
    log.info("export: wrote %s (%s)", out, precision)
    return manifest


MIN_INT8_MASK_IOU = 0.8  # mean IoU of the int8 U-Net's masks against Keras' on the representative images
MAX_INT8_CROP_SHIFT = 1.0  # crop px: the int8 U-Net's masks may move a part's crop (centre, and turn at the crop's end) this far from Keras'


def _int8_segmenter_or_fp16(
    segmenter: Any, int8_model: bytes, keras: KerasBackend, works: list[np.ndarray], preprocessor: Preprocessor, threads: int
) -> tuple[bytes, str]:
    """The int8 U-Net if its masks agree with Keras' and put the crop where Keras' do, else the fp16 one
    (float I/O, same backend code).

    TFLite's int8 concat gives a skip connection the decoder's quantisation; on a dark part (the real
    tyre) that wipes out the first level's fine features and the int8 U-Net finds no part at all
    (probability <= 0.5 everywhere). Where the mask places the crop (a part that moves), a mask off by a
    pixel or two moves the crop as far, which the CAE, the good references and the per-position statistics
    all take for a defect: int8 U-Nets on loose capsules moved it by up to 3-4.5 px (masks at IoU 0.9).
    The U-Net is the cheaper model, so keeping it in float costs little.
    """
    from scae_tf.backends.litert import LiteModel
    from scae_tf.training.segmenter import iou

    lite = LiteModel(int8_model, threads, "segmenter")
    scores, shifts = [], []
    for work in works[:16]:
        x = preprocessor.seg_input(work)
        reference, candidate = (preprocessor.mask_from_prob(prob, work.shape[:2]) for prob in (keras.segment(x), lite(x)))
        scores.append(iou(reference, candidate))
        if reference.any() and candidate.any():
            shifts.append(crop_shift(preprocessor.pose(work, reference), preprocessor.pose(work, candidate)))
    agreement = float(np.mean(scores)) if scores else 1.0
    shift = max(shifts, default=0.0)
    if agreement >= MIN_INT8_MASK_IOU and shift <= MAX_INT8_CROP_SHIFT:
        return int8_model, "int8"
    log.warning("export: the int8 U-Net's masks agree with Keras' at IoU %.2f (at least %.2f) and move the crop by up to "
                "%.1f px (at most %.1f): the segmenter is exported in fp16, the CAE in int8",
                agreement, MIN_INT8_MASK_IOU, shift, MAX_INT8_CROP_SHIFT)
    return convert_model(segmenter, "fp16"), "fp16"


def crop_shift(reference: Pose, candidate: Pose) -> float:
    """How far (crop px) ``candidate`` moves the crop from ``reference``: its centre, plus the arc its turn makes at the crop's far end."""
    centre = math.hypot(reference.centre[0] - candidate.centre[0], reference.centre[1] - candidate.centre[1]) * reference.scale
    turn = abs((reference.angle - candidate.angle + 180.0) % 360.0 - 180.0)
    height, width = reference.crop_size
    return centre + math.radians(turn) * math.hypot(height, width) / 2.0


def _image_size(paths: list[Path]) -> list[int] | None:
    """(height, width) of the first readable training image, so inspection can warn about other shapes."""
    for path in paths[:3]:
        try:
            return list(read_raw(path).shape[:2])
        except ScaeError:
            continue
    return None
