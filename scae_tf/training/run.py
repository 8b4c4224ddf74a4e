"""``scae train`` end to end: split, segmenter, pre-processing state, crops, CAE, calibration.

Every stage writes its result before the next starts and is skipped when already done, so
rerunning the same command after an interruption continues where it stopped (mid-stage
from the last epoch checkpoint, see ``resumable.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from scae_tf.artifacts import RunDir, Split
from scae_tf.config import PostprocessConfig, PreprocessConfig, RunConfig, load_config, save_json, to_dict
from scae_tf.data.layout import list_dataset
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_image, read_mask, resize
from scae_tf.part_kind import KINDS, KindDecision
from scae_tf.preprocessing import (
    MIN_PART_PIXELS,
    Preprocessor,
    PreprocessState,
    fit_preprocess_state,
    initial_state,
    seg_shape_for,
    surface_frame,
)
from scae_tf.progress import progress, progress_enabled
from scae_tf.references import GoodReferences
from scae_tf.residual import DARK_PART_BRIGHTNESS, brightness_power_for, part_brightness
from scae_tf.segmentation_targets import training_targets
from scae_tf.training.cae import check_loss_fits, train_cae
from scae_tf.training.curves import plot_curves
from scae_tf.training.resumable import save_model_atomic
from scae_tf.training.segmenter import iou, predict_probabilities, train_segmenter
from scae_tf.training.strategy import get_strategy

log = logging.getLogger(__name__)

MIN_TRAIN_IMAGES = 8
MIN_UNET_RESOLUTION = 128  # --image-size never makes the U-Net run on fewer pixels than this
COMPACT_REFERENCE_SHIFT = 2  # px each way a compact part's good references may shift (docs/results.md: "Compact parts: nearest good references")
COMPACT_REFERENCE_BANDS = 4  # a compact part's crop is square: narrower bands (tall strips) let its references explain defects away (docs/results.md: "Nearest good references")
# Settings a rerun may change without invalidating the checkpoints of the run dir.
MODEL_SECTIONS = ("preprocess", "cae", "unet", "loss", "training")
RESUMABLE_CHANGES = {"epochs", "segmenter_epochs", "learning_rate", "patience", "strategy"}
MIN_IMAGE_SIDE = 64  # smaller images are skipped with a warning
TILES_PER_IMAGE = 4  # surfaces: random tiles (drawn once) per training image, so a CAE epoch costs about what a part crop per image does
GRAY_TOLERANCE = 2  # 8-bit levels: an RGB file whose channels differ by no more is gray


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
    postprocess = scale_lengths(config.postprocess, preprocess.crop_height / p.crop_height)
    return dataclasses.replace(config, preprocess=preprocess, unet=unet, postprocess=postprocess)


def with_fitted_crop(config: RunConfig, state: PreprocessState) -> RunConfig:
    """The config with the crop fitted to the data. A compact part's crop may be finer than the
    configured crop's pixel budget (``compact_crop_pixels``); its post-processor lengths then grow with it,
    so a patch covers the same part of the work image as at the budget's scale."""
    fitted = dataclasses.replace(config, preprocess=state.config)
    if state.kind != "compact":
        return fitted
    configured, crop = config.preprocess, state.config
    budget_scale = state.crop_scale * math.sqrt(configured.crop_height * configured.crop_width / (crop.crop_height * crop.crop_width))
    if state.crop_scale <= 1.1 * budget_scale:  # within the rounding of the crop's sides
        return fitted
    ratio = state.crop_scale / budget_scale
    log.info("compact part: crop %dx%d at scale %.2f (the configured %dx%d budget would give %.2f): the CAE costs ~%.1fx "
             "per step; patch lengths x%.2f (preprocess.compact_crop_pixels %d)", crop.crop_height, crop.crop_width,
             state.crop_scale, configured.crop_height, configured.crop_width, budget_scale, ratio**2, ratio,
             configured.compact_crop_pixels)
    return dataclasses.replace(fitted, postprocess=scale_lengths(config.postprocess, ratio))


def scale_lengths(post: PostprocessConfig, ratio: float) -> PostprocessConfig:
    """The post-processor's lengths are crop pixels: keep them in proportion to the crop, so a patch
    covers the same part of the screw at every size (patch 16 on a 128-px crop = 8 on a 64-px crop)."""
    return dataclasses.replace(
        post,
        patch_size=max(2, round(post.patch_size * ratio)),
        patch_stride=max(1, round(post.patch_stride * ratio)),
        zscore_smooth_sigma=post.zscore_smooth_sigma * ratio,
        analysis_dilation=round(post.analysis_dilation * ratio),
    )


def resolve_config(
    config_file: str | Path | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    strategy: str | None = None,
    kind: str | None = None,
    fixtured: bool | None = None,
) -> RunConfig:
    """Defaults, then the --config file (any subset of RunConfig), then the command-line options.

    ``--epochs N`` sets the CAE epochs and caps the segmenter epochs at N; ``--kind``/``--fixtured``
    override what training would choose from the images."""
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
    if kind is not None or fixtured is not None:
        preprocess = dataclasses.replace(
            config.preprocess, kind=kind or config.preprocess.kind, fixtured=config.preprocess.fixtured if fixtured is None else fixtured
        )
        config = dataclasses.replace(config, preprocess=preprocess)
    return config


def _check_config(config: RunConfig, where: Path) -> None:
    p = config.preprocess
    unet_multiple = 2**config.unet.depth * config.unet.input_downsample
    if p.seg_size % unet_multiple:
        raise ScaeError(f"preprocess.seg_size {p.seg_size} must be divisible by {unet_multiple} (U-Net depth and input_downsample)", where)
    cae_multiple = 2**config.cae.depth
    if p.crop_height % cae_multiple or p.crop_width % cae_multiple:
        raise ScaeError(f"preprocess crop {p.crop_height}x{p.crop_width} must be divisible by 2**cae.depth = {cae_multiple}", where)
    if config.cae.channels not in (1, 3):
        raise ScaeError(f"cae.channels must be 1 (gray) or 3 (colour), got {config.cae.channels}", where)
    if p.kind not in ("auto", *KINDS):
        raise ScaeError(f"preprocess.kind must be auto or one of {', '.join(KINDS)}, got {p.kind!r}", where)
    if p.color not in ("auto", "gray", "rgb"):
        raise ScaeError(f"preprocess.color must be auto, gray or rgb, got {p.color!r}", where)
    check_loss_fits(config, where)


def _check_resume_compatible(config: RunConfig, out: Path) -> None:
    """A finished run dir is only resumed with the same settings; an unfinished one (no training
    summary: interrupted or failed) with other settings starts over, with a warning."""
    run = RunDir(out)
    if not run.config_file.is_file():
        return
    try:
        _compare_settings(config, run.config_file, out)
    except ScaeError as err:
        if run.summary_file.is_file():
            raise
        log.warning("%s; the earlier run did not finish, so it is discarded and training starts over", err)
        for target in (run.checkpoints, run.split_file, run.model_file("segmenter"), run.model_file("cae"),
                       run.preprocessing_file, run.calibration_file, run.config_file):
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def _compare_settings(config: RunConfig, path: Path, out: Path) -> None:
    # Post-processing is re-fitted (calibration) at the end of every run, so only the sections
    # that shape the trained models and crops must match.
    old = {k: v for k, v in json.loads(path.read_text()).items() if k in MODEL_SECTIONS}
    new = {k: v for k, v in to_dict(config).items() if k in MODEL_SECTIONS}
    for section in (old, new):
        for key in RESUMABLE_CHANGES:
            section.get("training", {}).pop(key, None)
        if section.get("preprocess", {}).get("kind") in ("compact", "surface"):
            for key in ("crop_height", "crop_width"):  # fitted from the data after this check, not chosen
                section["preprocess"].pop(key, None)
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


def train_run(
    data: str | Path,
    out: str | Path,
    config: RunConfig,
    callbacks: dict[str, list[keras.callbacks.Callback]] | None = None,
) -> dict:
    """Train into run dir ``out`` (created or resumed); returns the summary also saved as
    ``training_summary.json``. ``callbacks``: extra Keras callbacks per stage ("segmenter", "cae").

    The settings that follow the data (part kind, colour, work size, crop size) are resolved from
    the good images first; ``config.json`` holds the resolved settings. A run dir left unfinished
    by a failure can be rerun into, with the same or other settings."""
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
    handler = _attach_log(out)
    try:
        return _train(data, out, config, samples, callbacks, started)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _read_images(paths: list[str], skipped: dict[str, list[str]]) -> tuple[list[str], list[np.ndarray]]:
    """Decode every image as stored (gray or RGB float); unreadable or too small ones are skipped
    with a warning naming them (one odd image never stops a run)."""
    kept, images = [], []
    for path in progress(paths, desc="reading", total=len(paths)):
        try:
            image = read_image(path, gray=False)
        except ScaeError as err:
            log.warning("%s: skipped, unreadable (%s)", path, err)
            skipped.setdefault("unreadable", []).append(str(path))
            continue
        if min(image.shape[:2]) < MIN_IMAGE_SIDE:
            log.warning("%s: skipped, %dx%d is smaller than %d px", path, image.shape[1], image.shape[0], MIN_IMAGE_SIDE)
            skipped.setdefault("too_small", []).append(str(path))
            continue
        kept.append(str(path))
        images.append(image)
    return kept, images


def is_colour(image: np.ndarray) -> bool:
    """RGB with channels that differ (a gray image saved as RGB counts as gray)."""
    if image.ndim != 3 or image.shape[2] != 3:
        return False
    return float(np.max(image.max(axis=2) - image.min(axis=2))) > GRAY_TOLERANCE / 255.0


def resolve_data_settings(config: RunConfig, images: list[np.ndarray], paths: list[str] | None = None) -> tuple[RunConfig, int]:
    """Colour and work size from the images: colour when most are colour (or as ``preprocess.color``
    says), work size = min(configured, median short side) with the other sizes following it. Images of
    the other kind are named in a warning: they train converted, but inspection refuses such a file."""
    p = config.preprocess
    coloured = [is_colour(i) for i in images]
    colour = p.color == "rgb" or (p.color == "auto" and np.mean(coloured) > 0.5)
    channels = 3 if colour else 1
    odd = [i for i, c in enumerate(coloured) if c != colour]
    if odd:
        kind, trained = ("gray", "colour") if colour else ("colour", "gray")
        example = f" (e.g. {paths[odd[0]]})" if paths is not None else ""
        log.warning(
            "%d of %d good images are %s%s, the part is trained in %s: they train converted, but at inspection a %s "
            "file is refused; use one kind of camera image",
            len(odd), len(images), kind, example, trained, kind,
        )
    short = int(np.median([min(i.shape[:2]) for i in images]))
    if short < p.work_size / 1.5:
        config = scale_sizes(config, short)  # small images: every size follows
        log.info("work size %d px: the images' median short side is smaller than %d", short, p.work_size)
    elif short < p.work_size:
        # Nearly the configured size: the work image stays at native resolution, the networks keep their sizes.
        config = dataclasses.replace(config, preprocess=dataclasses.replace(p, work_size=short))
        log.info("work size %d px: the images' median short side", short)
    preprocess = dataclasses.replace(config.preprocess, color="rgb" if colour else "gray")
    cae = dataclasses.replace(config.cae, channels=channels)
    return dataclasses.replace(config, preprocess=preprocess, cae=cae), channels


def _surface_works(train_paths: list[str], val_paths: list[str], work_size: int, channels: int):
    """(train paths, works, validation paths, works, scale) of a surface: every image scaled by one factor (the
    median short side -> ``work_size``) so its grain keeps one size whatever the image's size and
    aspect, then fitted into the frame they define (``surface_frame``; a rare huge one is shrunk)."""
    train_paths, train_images = _read_images(train_paths, {})  # read again: the works so far were each scaled to their own short side
    val_paths, val_images = _read_images(val_paths, {})
    scale = work_size / float(np.median([min(i.shape[:2]) for i in train_images + val_images]))
    reader = Preprocessor(PreprocessState(PreprocessConfig(), 1.0, None, kind="surface", channels=channels, work_scale=scale))
    reader.state.frame_shape = surface_frame([reader.work_shape(i.shape) for i in train_images + val_images])
    return train_paths, [reader.work_image(i) for i in train_images], val_paths, [reader.work_image(i) for i in val_images], scale


def _with_kind(config: RunConfig, decision: KindDecision) -> RunConfig:
    """The chosen kind in the config; surfaces have no per-position statistics (a texture has no
    positions that mean something) and one zone. Nearest good references for aligned parts: they explain
    structure good parts share out of phase (threads); a compact part's references may also shift by
    COMPACT_REFERENCE_SHIFT px each way (a fixture holds a part less exactly than the canonical pose, and
    its rim moves by a pixel or two) and choose them in at most COMPACT_REFERENCE_BANDS bands, shifted by whole
    pixels only (half-pixel steps cost 3x at that shift and did not help a washer). A surface has nothing aligned to compare with: its residual is taken
    against a model of good texture instead (scae_tf/texture.py). The pixel map's missing-material band
    around the part is for elongated parts only: around a fixtured washer it lit the textured background
    (pixel AUROC 0.899 -> 0.817 on its tuning set)."""
    preprocess = dataclasses.replace(config.preprocess, kind=decision.kind, fixtured=decision.fixtured if decision.kind == "compact" else None)
    config = dataclasses.replace(config, preprocess=preprocess)
    post = config.postprocess
    if decision.kind != "elongated":
        post = dataclasses.replace(post, missing_material_map=False)
    if decision.kind == "compact":
        post = dataclasses.replace(
            post,
            reference_shift=max(post.reference_shift, COMPACT_REFERENCE_SHIFT),
            reference_bands=min(post.reference_bands, COMPACT_REFERENCE_BANDS),
            reference_subpixel=1,
        )
    if decision.kind == "surface":
        post = dataclasses.replace(post, zones=1, per_position_zscore=False, texture_model=True, reference_neighbours=0)
    return dataclasses.replace(config, postprocess=post)


def _with_brightness_power(config: RunConfig, works: list[np.ndarray], targets: list[np.ndarray], kind: str) -> RunConfig:
    """``postprocess.residual_brightness_power`` when left to scae train (-1): relative errors for a dark part
    (``brightness_power_for``), off otherwise and on surfaces (their texture model has its own scale)."""
    post = config.postprocess
    if post.residual_brightness_power >= 0:
        return config
    power = 0.0
    if kind != "surface":
        brightness = part_brightness(works, targets)
        power = brightness_power_for(brightness)
        if power > 0:
            log.info(
                "dark part (median brightness %.3f < %.2f): squared errors judged relative to the light on them, "
                "the difference first smoothed by %g px against the sensor noise of its shadows "
                "(postprocess.residual_brightness_power %g, residual_brightness_denoise)",
                brightness, DARK_PART_BRIGHTNESS, post.residual_brightness_denoise, power,
            )
    return dataclasses.replace(config, postprocess=dataclasses.replace(post, residual_brightness_power=power))


def _true_object_masks(data: Path, paths: list[str], shapes: list[tuple[int, int]]) -> list[np.ndarray] | None:
    """Exact object masks shipped by synthetic datasets (object_masks/train/good/<name>)."""
    folder = data / "object_masks" / "train" / "good"
    if not folder.is_dir():
        return None
    files = [folder / Path(p).name for p in paths]
    if not all(f.is_file() for f in files):
        return None
    return [resize(read_mask(f), shape, "nearest") for f, shape in zip(files, shapes, strict=True)]


def _segmenter_arrays(works: list[np.ndarray], targets: list[np.ndarray], pre: Preprocessor) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([pre.seg_input(w) for w in works])
    if x.ndim == 3:
        x = x[..., None]
    y = np.stack([resize(t.astype(np.float32), pre.seg_shape, "area") for t in targets])[..., None]
    return x.astype(np.float32), y.astype(np.float32)


def _drop_without_part(paths: list[str], works: list[np.ndarray], targets: list[np.ndarray], skipped: dict[str, list[str]]):
    """Images whose target shows no part are left out of training, with a warning naming each."""
    keep = [i for i, t in enumerate(targets) if int(np.count_nonzero(t)) >= MIN_PART_PIXELS]
    for i in sorted(set(range(len(paths))) - set(keep)):
        log.warning("%s: skipped, no part found in this good image", paths[i])
        skipped.setdefault("no_part_found", []).append(paths[i])
    return [paths[i] for i in keep], [works[i] for i in keep], [targets[i] for i in keep]


def _train(data: Path, out: Path, config: RunConfig, samples, callbacks, started: float) -> dict:
    t = config.training
    keras.utils.set_random_seed(t.seed)
    strategy = get_strategy(t.strategy)
    verbose = 1 if progress_enabled() else 0
    run = RunDir(out)
    log.info("training %s -> %s (%d good images, strategy %s, %d replica(s))", data, out, len(samples), t.strategy, strategy.num_replicas_in_sync)

    split = run.split() if run.split_file.is_file() else Split.make([s.path for s in samples], t.validation_fraction, t.seed)
    skipped: dict[str, list[str]] = {}
    train_paths, train_images = _read_images(split.train, skipped)
    val_paths, val_images = _read_images(split.validation, skipped)
    _require_images(train_paths, val_paths, skipped, data)

    # What follows the data: colour, work size, then the part kind from the images' part masks.
    config, channels = resolve_data_settings(config, train_images + val_images, train_paths + val_paths)
    unet_multiple = 2**config.unet.depth * config.unet.input_downsample
    keep_aspect = dataclasses.replace(PreprocessState(config.preprocess, 1.0, None), channels=channels, keep_aspect=True)
    reader = Preprocessor(keep_aspect)
    train_works = [reader.work_image(i) for i in train_images]
    val_works = [reader.work_image(i) for i in val_images]
    del train_images, val_images
    p = config.preprocess
    targets, decision = training_targets(
        train_works + val_works, None if p.kind == "auto" else p.kind, p.fixtured
    )
    log.info("part kind: %s, alignment %s (%s)", decision.kind, decision.alignment, decision.reason)
    config = _with_kind(config, decision)
    work_scale = 0.0
    if decision.kind == "surface":
        train_paths, train_works, val_paths, val_works, work_scale = _surface_works(train_paths, val_paths, config.preprocess.work_size, channels)
        targets = [np.ones(w.shape[:2], bool) for w in train_works + val_works]
    median_shape = tuple(int(v) for v in np.median([w.shape[:2] for w in train_works], axis=0))
    seg_shape = seg_shape_for(median_shape, config.preprocess.seg_size, unet_multiple)
    bootstrap_state = initial_state(config.preprocess, decision, channels, seg_shape)
    bootstrap_state.work_scale = work_scale
    bootstrap = Preprocessor(bootstrap_state)
    log.info("%s images, work %dx%d (median), segmenter %dx%d", "colour" if channels == 3 else "gray", median_shape[1], median_shape[0], seg_shape[1], seg_shape[0])
    train_targets, val_targets = targets[: len(train_works)], targets[len(train_works) :]
    train_paths, train_works, train_targets = _drop_without_part(train_paths, train_works, train_targets, skipped)
    val_paths, val_works, val_targets = _drop_without_part(val_paths, val_works, val_targets, skipped)
    _require_images(train_paths, val_paths, skipped, data)
    config = _with_brightness_power(config, train_works, train_targets, decision.kind)
    _check_resume_compatible(config, out)
    run.checkpoints.mkdir(exist_ok=True)
    run.write_split(split)
    save_json(config, run.config_file)  # the resolved settings; a rerun compares against them
    log.info("split: %d train, %d validation (seed %d)", len(split.train), len(split.validation), t.seed)

    # Stage 1: segmenter on the classical targets (a surface has no background: one quick epoch,
    # its output is not used).
    t0 = time.time()
    seg_train = _segmenter_arrays(train_works, train_targets, bootstrap)
    seg_val = _segmenter_arrays(val_works, val_targets, bootstrap)
    seg_config = config
    if decision.kind == "surface":
        seg_config = dataclasses.replace(config, training=dataclasses.replace(config.training, segmenter_epochs=1))
    segmenter, seg_state = train_segmenter(seg_config, seg_train, seg_val, run.checkpoints, strategy, verbose, callbacks.get("segmenter"))
    save_model_atomic(segmenter, run.model_file("segmenter"))
    plot_curves(seg_state.history, run.curves_file("segmenter"), "U-Net segmenter")

    train_prepared = [bootstrap.prepare(w, p) for w, p in zip(train_works, predict_probabilities(segmenter, seg_train[0]), strict=True)]
    val_prepared = [bootstrap.prepare(w, p) for w, p in zip(val_works, predict_probabilities(segmenter, seg_val[0]), strict=True)]
    val_masks = [r.object_mask for r in val_prepared]
    seg_metrics = {
        "val_iou_vs_classical": float(np.mean([iou(m, c) for m, c in zip(val_masks, val_targets, strict=True)])),
        "train_iou_vs_classical": float(np.mean([iou(r.object_mask, c) for r, c in zip(train_prepared, train_targets, strict=True)])),
        "epochs": seg_state.epoch,
        "best_epoch": seg_state.best_epoch,
        "best_val_loss": seg_state.best,
        "seconds": round(time.time() - t0, 1),
    }
    true_val = _true_object_masks(data, val_paths, [w.shape[:2] for w in val_works])
    if true_val is not None:
        seg_metrics["val_iou_vs_true"] = float(np.mean([iou(m, g) for m, g in zip(val_masks, true_val, strict=True)]))
        seg_metrics["val_iou_classical_vs_true"] = float(np.mean([iou(c, g) for c, g in zip(val_targets, true_val, strict=True)]))
    log.info("segmenter: %s", ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in seg_metrics.items()))

    # Pre-processing state from the U-Net masks (the classical one where the U-Net found nothing), then the crops.
    train_masks = _usable_masks(train_prepared, train_targets, train_paths, skipped)
    val_masks_usable = _usable_masks(val_prepared, val_targets, val_paths, skipped)
    keep = [i for i, m in enumerate(train_masks) if m is not None]
    if len(keep) < 2:
        raise ScaeError(f"the part was found in only {len(keep)} training image(s); check the images show the part", data)
    state = fit_preprocess_state(
        [train_works[i] for i in keep], [train_masks[i] for i in keep], config.preprocess, bootstrap_state, 2**config.cae.depth
    )
    config = with_fitted_crop(config, state)
    preprocessor = Preprocessor(state)
    cae_height, cae_width = preprocessor.cae_shape  # a surface's CAE sees tiles of the frame
    cae_config = dataclasses.replace(config, preprocess=dataclasses.replace(state.config, crop_height=cae_height, crop_width=cae_width))
    _check_config(cae_config, out)
    state.save(run.preprocessing_file)
    rng = np.random.default_rng(t.seed)
    train_crops = _crops(preprocessor, train_works, train_masks, rng)
    val_crops = _crops(preprocessor, val_works, val_masks_usable, rng)
    log.info("canonical crops: %d train, %d validation, %dx%d, crop_scale %.4f", len(train_crops), len(val_crops), *train_crops.shape[1:3], state.crop_scale)

    # Stage 2: CAE on the crops.
    t0 = time.time()
    cae, cae_state = train_cae(cae_config, train_crops, val_crops, run.checkpoints, strategy, verbose, callbacks.get("cae"))
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

    calibrated = _calibrate(out, config, preprocessor, segmenter, cae, val_works, val_paths, train_works, train_paths, train_crops)
    save_json(config, run.config_file)  # with the fitted crop size
    summary = {
        "segmenter": seg_metrics,
        "cae": cae_metrics,
        "calibration": calibrated,
        "part_kind": state.kind_decision or decision.to_dict(),  # with the turn chosen from the images
        "channels": channels,
        "images": {"train": len(train_paths), "validation": len(val_paths)},
        "skipped": skipped,
        "skipped_count": sum(len(v) for v in skipped.values()),
        "seconds": round(time.time() - started, 1),
    }
    save_json(summary, run.summary_file)
    log.info("done in %.1f s: %s", time.time() - started, out)
    return summary


def _require_images(train: list[str], validation: list[str], skipped: dict[str, list[str]], data: Path) -> None:
    if len(train) < MIN_TRAIN_IMAGES - 2 or len(validation) < 2:
        lost = sum(len(v) for v in skipped.values())
        raise ScaeError(
            f"only {len(train)} training and {len(validation)} validation image(s) left after skipping {lost} "
            "(see the warnings in train.log); add good images",
            data,
        )


def _usable_masks(prepared: list, targets: list[np.ndarray], paths: list[str], skipped: dict[str, list[str]]) -> list[np.ndarray | None]:
    """U-Net mask, or the classical one where the U-Net found nothing; None (skipped, with a warning) when neither did."""
    usable: list[np.ndarray | None] = []
    for result, target, path in zip(prepared, targets, paths, strict=True):
        if result.found:
            usable.append(result.object_mask)
        elif int(np.count_nonzero(target)) >= MIN_PART_PIXELS:
            log.warning("%s: the U-Net found no part (%s), using the classical mask", path, result.reason)
            usable.append(target)
        else:
            log.warning("%s: skipped, no part found", path)
            skipped.setdefault("no_part_found", []).append(path)
            usable.append(None)
    return usable


def _crops(preprocessor: Preprocessor, works: list[np.ndarray], masks: list[np.ndarray | None], rng: np.random.Generator) -> np.ndarray:
    """The CAE's training inputs: canonical crops, or TILES_PER_IMAGE random tiles of each surface."""
    pieces = []
    for work, mask in zip(works, masks, strict=True):
        if mask is None:
            continue
        crop, crop_mask = preprocessor.canonical(work, mask)[:2]
        tiles = preprocessor.cae_inputs(crop)
        if len(tiles) > TILES_PER_IMAGE:
            inside = [i for i, m in enumerate(preprocessor.cae_inputs(crop_mask)) if m.mean() >= 0.5]  # a small surface's frame is mostly its reflection
            pool = inside if len(inside) >= TILES_PER_IMAGE else range(len(tiles))
            tiles = [tiles[i] for i in rng.choice(pool, TILES_PER_IMAGE, replace=False)]
        pieces.extend(tiles)
    crops = np.stack(pieces)
    return (crops[..., None] if crops.ndim == 3 else crops).astype(np.float32)


def _calibrate(
    out: Path,
    config: RunConfig,
    preprocessor: Preprocessor,
    segmenter,
    cae,
    works: list[np.ndarray],
    names: list[str],
    train_works: list[np.ndarray],
    train_names: list[str],
    train_crops: np.ndarray,
) -> bool:
    """Last step: the decision threshold from the validation (good) images, with what the residual is
    also taken against made from the training images (never the calibration ones) -> calibration.json."""
    from scae_tf.backends.keras_backend import KerasBackend
    from scae_tf.calibration import calibrate, good_references

    backend = KerasBackend(segmenter, cae)
    post = config.postprocess
    references = None
    if post.texture_model:  # whole frames: a surface's training crops are tiles, whose borders are not its texture
        references = good_references(backend, preprocessor, train_works, train_names, True, post.texture_components)
        log.info("model of good texture fitted on %d training images (%d Gaussians)", len(train_works), references.components if references else 0)
    elif post.reference_neighbours > 0:  # _with_kind leaves it > 0 for aligned parts (elongated and compact)
        references = GoodReferences.from_crops(train_crops)
    calibration = calibrate(backend, preprocessor, config.postprocess, works, names, references, train_works)
    calibration.save(RunDir(out).calibration_file)
    log.info("calibration written from %d validation images", len(works) - len(calibration.skipped_images))
    return True
