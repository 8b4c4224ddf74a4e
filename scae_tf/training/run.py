"""``scae train`` end to end: split, segmenter, pre-processing state, crops, CAE, calibration.

Every stage writes its result before the next starts and is skipped when already done, so
rerunning the same command after an interruption continues where it stopped (mid-stage
from the last epoch checkpoint, see ``resumable.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import keras
import numpy as np

from scae_tf.artifacts import RunDir, Split
from scae_tf.config import RunConfig, load_config, save_json, to_dict
from scae_tf.data.layout import list_dataset
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, read_mask, resize
from scae_tf.preprocessing import Preprocessor, PreprocessState, fit_preprocess_state
from scae_tf.progress import progress, progress_enabled
from scae_tf.segmentation_targets import classical_object_mask
from scae_tf.training.cae import check_loss_fits, train_cae
from scae_tf.training.curves import plot_curves
from scae_tf.training.resumable import save_model_atomic
from scae_tf.training.segmenter import iou, predict_probabilities, train_segmenter
from scae_tf.training.strategy import get_strategy

log = logging.getLogger(__name__)

MIN_TRAIN_IMAGES = 8
MIN_UNET_RESOLUTION = 128  # --image-size never makes the U-Net run on fewer pixels than this
# Settings a rerun may change without invalidating the checkpoints of the run dir.
MODEL_SECTIONS = ("preprocess", "cae", "unet", "loss", "training")
RESUMABLE_CHANGES = {"epochs", "segmenter_epochs", "learning_rate", "patience", "strategy"}


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def scale_sizes(config: RunConfig, image_size: int) -> RunConfig:
    """``--image-size S``: work_size = S; seg and crop sizes keep their ratio to work_size,
    rounded to what the networks accept (U-Net: 2**depth * input_downsample, CAE: 2**depth).
    With the defaults (512 / 256 / 128x384): S=256 gives seg 128 and crop 64x192. The U-Net's
    input_downsample is lowered so that it still works on >= 128 px (S=256: 1). The post-processor's
    patch size, stride and smoothing (crop pixels) scale with the crop height."""
    p = config.preprocess
    ratio = image_size / p.work_size
    unet_multiple = 2**config.unet.depth * config.unet.input_downsample
    cae_multiple = 2**config.cae.depth
    preprocess = dataclasses.replace(
        p,
        work_size=image_size,
        seg_size=_round_to(p.seg_size * ratio, unet_multiple),
        crop_height=_round_to(p.crop_height * ratio, cae_multiple),
        crop_width=_round_to(p.crop_width * ratio, cae_multiple),
    )
    downsample = config.unet.input_downsample
    while downsample > 1 and preprocess.seg_size // downsample < MIN_UNET_RESOLUTION:
        downsample //= 2  # a smaller frame: the U-Net keeps enough pixels across the thin part
    unet = dataclasses.replace(config.unet, input_downsample=downsample)
    # The post-processor's lengths are crop pixels: keep them in proportion to the crop, so a patch
    # covers the same part of the screw at every size (patch 16 on a 128-px crop = 8 on a 64-px crop).
    crop_ratio = preprocess.crop_height / p.crop_height
    post = config.postprocess
    postprocess = dataclasses.replace(
        post,
        patch_size=max(2, round(post.patch_size * crop_ratio)),
        patch_stride=max(1, round(post.patch_stride * crop_ratio)),
        zscore_smooth_sigma=post.zscore_smooth_sigma * crop_ratio,
        analysis_dilation=round(post.analysis_dilation * crop_ratio),
    )
    return dataclasses.replace(config, preprocess=preprocess, unet=unet, postprocess=postprocess)


def resolve_config(
    config_file: str | Path | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    strategy: str | None = None,
) -> RunConfig:
    """Defaults, then the --config file (any subset of RunConfig), then the command-line options.

    ``--epochs N`` sets the CAE epochs and caps the segmenter epochs at N."""
    config = load_config(config_file) if config_file else RunConfig()
    if image_size is not None:
        if image_size < 32:
            raise ScaeError(f"--image-size {image_size} is too small; use 32 or more")
        config = scale_sizes(config, image_size)
    if epochs is not None:
        if epochs < 1:
            raise ScaeError(f"--epochs must be >= 1, got {epochs}")
        training = dataclasses.replace(
            config.training, epochs=epochs, segmenter_epochs=min(config.training.segmenter_epochs, epochs)
        )
        config = dataclasses.replace(config, training=training)
    if strategy is not None:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, strategy=strategy))
    return config


def _check_config(config: RunConfig, where: Path) -> None:
    p = config.preprocess
    unet_multiple = 2**config.unet.depth * config.unet.input_downsample
    if p.seg_size % unet_multiple:
        raise ScaeError(f"preprocess.seg_size {p.seg_size} must be divisible by {unet_multiple} (U-Net depth and input_downsample)", where)
    cae_multiple = 2**config.cae.depth
    if p.crop_height % cae_multiple or p.crop_width % cae_multiple:
        raise ScaeError(f"preprocess crop {p.crop_height}x{p.crop_width} must be divisible by 2**cae.depth = {cae_multiple}", where)
    if config.cae.channels != 1:
        raise ScaeError("cae.channels must be 1: the inspection path works on gray canonical crops", where)
    check_loss_fits(config, where)


def _check_resume_compatible(config: RunConfig, out: Path) -> None:
    path = RunDir(out).config_file
    if not path.is_file():
        return
    # Post-processing is re-fitted (calibration) at the end of every run, so only the sections
    # that shape the trained models and crops must match.
    old = {k: v for k, v in json.loads(path.read_text()).items() if k in MODEL_SECTIONS}
    new = {k: v for k, v in to_dict(config).items() if k in MODEL_SECTIONS}
    for section in (old, new):
        for key in RESUMABLE_CHANGES:
            section.get("training", {}).pop(key, None)
    if old != new:
        diff = sorted(
            f"{s}.{k}" for s in new for k in new[s] if not isinstance(old.get(s), dict) or old[s].get(k) != new[s][k]
        )
        raise ScaeError(
            f"this run dir was trained with different settings ({', '.join(diff) or 'config layout'}); "
            "rerun with the same options to resume, or choose a new --out",
            out,
        )


def _attach_log(out: Path) -> logging.Handler:
    handler = logging.FileHandler(RunDir(out).train_log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    package = logging.getLogger("scae_tf")
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    return handler


def _read_works(paths: list[str], preprocessor: Preprocessor, work_size: int) -> list[np.ndarray]:
    works = []
    for path in progress(paths, desc="reading", total=len(paths)):
        image = read_image(path)
        if min(image.shape[:2]) < work_size:
            raise ScaeError(
                f"image is {image.shape[1]}x{image.shape[0]}, smaller than the work size {work_size}; "
                f"use --image-size {min(image.shape[:2])} or larger images",
                path,
            )
        works.append(preprocessor.work_image(image))
    return works


def _true_object_masks(data: Path, paths: list[str], size: int) -> list[np.ndarray] | None:
    """Exact object masks shipped by synthetic datasets (object_masks/train/good/<name>)."""
    folder = data / "object_masks" / "train" / "good"
    if not folder.is_dir():
        return None
    files = [folder / Path(p).name for p in paths]
    if not all(f.is_file() for f in files):
        return None
    return [resize(read_mask(f), size, "nearest") for f in files]


def _segmenter_arrays(works: list[np.ndarray], targets: list[np.ndarray], pre: Preprocessor) -> tuple[np.ndarray, np.ndarray]:
    size = pre.config.seg_size
    x = np.stack([pre.seg_input(w) for w in works])[..., None]
    y = np.stack([resize(t.astype(np.float32), size, "area") for t in targets])[..., None]
    return x.astype(np.float32), y.astype(np.float32)


def train_run(
    data: str | Path,
    out: str | Path,
    config: RunConfig,
    callbacks: dict[str, list[keras.callbacks.Callback]] | None = None,
) -> dict:
    """Train into run dir ``out`` (created or resumed); returns the summary also saved as
    ``training_summary.json``. ``callbacks``: extra Keras callbacks per stage ("segmenter", "cae")."""
    data, out = Path(data), Path(out)
    callbacks = callbacks or {}
    started = time.time()
    _check_config(config, out)
    samples = list_dataset(data, "train")
    if len(samples) < MIN_TRAIN_IMAGES:
        raise ScaeError(
            f"only {len(samples)} good training image(s); need at least {MIN_TRAIN_IMAGES} (better 100+) in train/good",
            data,
        )
    out.mkdir(parents=True, exist_ok=True)
    _check_resume_compatible(config, out)
    handler = _attach_log(out)
    try:
        save_json(config, RunDir(out).config_file)
        return _train(data, out, config, samples, callbacks, started)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _train(data: Path, out: Path, config: RunConfig, samples, callbacks, started: float) -> dict:
    t = config.training
    keras.utils.set_random_seed(t.seed)
    strategy = get_strategy(t.strategy)
    verbose = 1 if progress_enabled() else 0
    run = RunDir(out)
    checkpoints = run.checkpoints
    checkpoints.mkdir(exist_ok=True)
    log.info("training %s -> %s (%d good images, strategy %s, %d replica(s))", data, out, len(samples), t.strategy, strategy.num_replicas_in_sync)

    split = run.split() if run.split_file.is_file() else Split.make([s.path for s in samples], t.validation_fraction, t.seed)
    run.write_split(split)  # also brings a resumed run's older split file to the current format
    log.info("split: %d train, %d validation (seed %d)", len(split.train), len(split.validation), t.seed)

    bootstrap = Preprocessor(PreprocessState(config=config.preprocess, crop_scale=1.0, illumination=None))
    train_works = _read_works(split.train, bootstrap, config.preprocess.work_size)
    val_works = _read_works(split.validation, bootstrap, config.preprocess.work_size)

    # Stage 1: segmenter on classical targets.
    t0 = time.time()
    train_targets = [classical_object_mask(w) for w in progress(train_works, desc="targets")]
    val_targets = [classical_object_mask(w) for w in val_works]
    empty = sum(int(not m.any()) for m in train_targets + val_targets)
    if empty:
        log.warning("%d image(s) have an empty classical object mask (no part found); they teach the U-Net 'no part'", empty)
    seg_train = _segmenter_arrays(train_works, train_targets, bootstrap)
    seg_val = _segmenter_arrays(val_works, val_targets, bootstrap)
    segmenter, seg_state = train_segmenter(
        config,
        seg_train,
        seg_val,
        checkpoints,
        strategy,
        verbose,
        callbacks.get("segmenter"),
    )
    save_model_atomic(segmenter, run.model_file("segmenter"))
    plot_curves(seg_state.history, run.curves_file("segmenter"), "U-Net segmenter")

    train_masks = [bootstrap.mask_from_prob(p) for p in predict_probabilities(segmenter, seg_train[0])]
    val_masks = [bootstrap.mask_from_prob(p) for p in predict_probabilities(segmenter, seg_val[0])]
    seg_metrics = {
        "val_iou_vs_classical": float(np.mean([iou(m, c) for m, c in zip(val_masks, val_targets, strict=True)])),
        "train_iou_vs_classical": float(np.mean([iou(m, c) for m, c in zip(train_masks, train_targets, strict=True)])),
        "epochs": seg_state.epoch,
        "best_epoch": seg_state.best_epoch,
        "best_val_loss": seg_state.best,
        "seconds": round(time.time() - t0, 1),
    }
    true_val = _true_object_masks(data, split.validation, config.preprocess.work_size)
    if true_val is not None:
        seg_metrics["val_iou_vs_true"] = float(np.mean([iou(m, g) for m, g in zip(val_masks, true_val, strict=True)]))
        seg_metrics["val_iou_classical_vs_true"] = float(np.mean([iou(c, g) for c, g in zip(val_targets, true_val, strict=True)]))
    log.info("segmenter: %s", ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in seg_metrics.items()))

    # Pre-processing state from the U-Net masks, then canonical crops.
    train_masks = _usable_masks(train_masks, train_targets, split.train)
    val_masks = _usable_masks(val_masks, val_targets, split.validation)
    keep = [i for i, m in enumerate(train_masks) if m is not None]
    state = fit_preprocess_state([train_works[i] for i in keep], [train_masks[i] for i in keep], config.preprocess)
    state.save(run.preprocessing_file)
    preprocessor = Preprocessor(state)
    train_crops = _crops(preprocessor, train_works, train_masks)
    val_crops = _crops(preprocessor, val_works, val_masks)
    log.info("canonical crops: %d train, %d validation, %dx%d, crop_scale %.4f", len(train_crops), len(val_crops), *train_crops.shape[1:3], state.crop_scale)

    # Stage 2: CAE on the crops.
    t0 = time.time()
    cae, cae_state = train_cae(config, train_crops, val_crops, checkpoints, strategy, verbose, callbacks.get("cae"))
    save_model_atomic(cae, run.model_file("cae"))
    plot_curves(cae_state.history, run.curves_file("cae"), "CAE-MSSIM")
    cae_metrics = {
        "epochs": cae_state.epoch,
        "best_epoch": cae_state.best_epoch,
        "best_val_loss": cae_state.best,
        "final": {k: v[-1] for k, v in cae_state.history.items()},
        "seconds": round(time.time() - t0, 1),
    }
    log.info("cae: best val_loss %.5f at epoch %d of %d", cae_state.best, cae_state.best_epoch, cae_state.epoch)

    calibrated = _calibrate(out, config, preprocessor, segmenter, cae, val_works)
    summary = {
        "segmenter": seg_metrics,
        "cae": cae_metrics,
        "calibration": calibrated,
        "images": {"train": len(split.train), "validation": len(split.validation)},
        "seconds": round(time.time() - started, 1),
    }
    save_json(summary, run.summary_file)
    log.info("done in %.1f s: %s", time.time() - started, out)
    return summary


def _usable_masks(masks: list[np.ndarray], targets: list[np.ndarray], paths: list[str]) -> list[np.ndarray | None]:
    """U-Net mask, or the classical one where the U-Net found nothing; None when neither did."""
    usable: list[np.ndarray | None] = []
    for mask, target, path in zip(masks, targets, paths, strict=True):
        if mask.any():
            usable.append(mask)
        elif target.any():
            log.warning("%s: the U-Net found no part, using the classical mask", path)
            usable.append(target)
        else:
            log.warning("%s: no part found, image left out of CAE training", path)
            usable.append(None)
    return usable


def _crops(preprocessor: Preprocessor, works: list[np.ndarray], masks: list[np.ndarray | None]) -> np.ndarray:
    crops = [preprocessor.canonical(w, m)[0] for w, m in zip(works, masks, strict=True) if m is not None]
    return np.stack(crops)[..., None].astype(np.float32)


def _calibrate(out: Path, config: RunConfig, preprocessor: Preprocessor, segmenter, cae, works: list[np.ndarray]) -> bool:
    """Last step: the decision threshold from the validation (good) images -> calibration.json."""
    from scae_tf.backends.keras_backend import KerasBackend
    from scae_tf.calibration import calibrate

    backend = KerasBackend(segmenter, cae)
    calibration = calibrate(backend, preprocessor, config.postprocess, works)
    calibration.save(RunDir(out).calibration_file)
    log.info("calibration written from %d validation images", len(works))
    return True
