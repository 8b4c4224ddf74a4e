"""Calibration on good images: everything the post-processor needs, saved as ``calibration.json``.

``calibrate`` runs segment -> canonical crop -> reconstruct -> residual on good calibration images
(a split of train/good, never test images) and measures, from good parts only:

* for a colour part, first the weights of its squared error's brightness and colour components
  (``scae_tf/colour.py``), which every residual below is measured with;
* per-position mean/std of the residual (for per-pixel z-scores), when enabled;
* sigma of the neighbour deviation per zone (RMS about 0 over all object patches of the zone, so a
  zone whose patches are systematically hotter than their neighbours also gets a larger sigma),
  floored at ``zone_sigma_floor`` x the pooled sigma; zones never seen fall back to the pooled one;
* tau, the image threshold, on the distribution of the image score (max d over candidates);
* and it keeps the good references the residual is also taken against (``scae_tf/references.py``):
  canonical crops of the training images, never of the calibration images, so the residuals
  calibration measures are out of sample as they are at inspection.

Leave-one-out, so tau is not measured on the images that made the statistics: image i's z-map is
computed with per-position statistics of the OTHER images, and its max statistic with zone sigmas
of the other images (exact, from per-image sums). Every image then serves both to estimate the
statistics and, out of sample, to set tau. (Second-order leakage remains: image i took part in the
position statistics of the images whose deviations make its sigma, and in the median and highest
residual level, ``postprocess/level.py``; it is small next to the first-order effect and not worth
halving an already small calibration set.) The stored statistics use
all images.

The file also records the false-alarm rate on the calibration images of the final rule and of the
plain pooled ``d > k`` rule (and of zone sigmas with ``d > k``), so the effect of calibrating the
max statistic and of zones is visible. For ablations it also keeps ``pooled_threshold``, tau of the
same calibrated rule with one pooled sigma instead of zone sigmas (``postprocessor(zones=False)``).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.colour import ColourBalance, fit_colour_balance
from scae_tf.config import PostprocessConfig, from_dict, save_json, to_dict
from scae_tf.errors import ScaeError
from scae_tf.postprocess import (
    PositionStats,
    PositionSums,
    PostProcessor,
    ResidualLevel,
    analysis_region,
    errors_and_region,
    image_threshold,
    outline_sums,
    stats_from_sums,
    with_std_floor,
)
from scae_tf.references import GoodReferences, needs_reconstruction, part_residual, uses_references
from scae_tf.texture import TextureModel

log = logging.getLogger(__name__)

CALIBRATION_VERSION = 1
MIN_CALIBRATION_IMAGES = 4
# Post-processing settings that only set tau from the stored scores; every other field shapes the
# stored statistics, so a new knob is covered without being listed here.
DECISION_FIELDS = ("k_sigma", "target_false_alarm_rate", "threshold_method")
STATISTICS_FIELDS = tuple(f.name for f in dataclasses.fields(PostprocessConfig) if f.name not in DECISION_FIELDS)
# Post-processing fields added after calibration files were first written, with the value that
# reproduces what older files were made with (a missing key must not take today's default).
LEGACY_FIELD_VALUES = {"residual_brightness_power": 0.0, "residual_brightness_denoise": 0.0, "colour_balance": False, "residual_level_percentile": 0.0, "zscore_training_floor": False, "neighbour_ring": 1, "analysis_dilation": 0, "reference_neighbours": 0, "reference_shift": 0, "reference_subpixel": 1, "reference_bands": 1, "reference_axial_search": 0, "texture_model": False, "texture_components": 1, "texture_weight": 0.5, "missing_material_map": False, "reference_weight": 0.5}


def _encode_array(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_array(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text.encode("ascii"), validate=True)), allow_pickle=False)


@dataclass
class Calibration:
    """What calibration measured on good images; ``postprocessor()`` turns it into a decision rule."""

    config: PostprocessConfig
    crop_shape: tuple[int, int]
    zone_sigma: np.ndarray  # (n_zones,)
    pooled_sigma: float
    threshold: float  # tau on the image score (max d over candidates)
    pooled_threshold: float  # tau of the same rule with the pooled sigma in every zone (ablation)
    position_stats: PositionStats | None
    max_statistics: list[float]  # out-of-sample image score of every calibration image
    false_alarm_rate: float  # of the final rule (d > tau) on the calibration images
    false_alarm_rate_pooled_k: float  # of the plain rule: pooled sigma, d > k
    false_alarm_rate_zones_k: float  # zone sigmas, d > k
    n_images: int  # calibration images used (a crop without object has no max statistic)
    image_names: list[str] = field(default_factory=list)
    skipped_images: list[str] = field(default_factory=list)  # good images where no part was found
    method: str = "leave-one-out"
    version: int = CALIBRATION_VERSION
    outline_stats: PositionStats | None = None  # per-position mean/std of good crop masks (outline_weight > 0)
    legacy_fields: tuple[str, ...] = ()  # fields absent from the file, set from LEGACY_FIELD_VALUES
    references: GoodReferences | TextureModel | None = None  # good training crops (aligned parts) or good texture (surfaces) the residual is also taken against; None: the CAE's alone
    residual_level: ResidualLevel | None = None  # the good parts' residual levels (postprocess.residual_level_percentile > 0)
    colour: ColourBalance | None = None  # colour parts: the weights of their squared error's components (postprocess.colour_balance)

    def with_false_alarm_rate(self, rate: float) -> Calibration:
        """The same statistics with tau re-set for another false-alarm target (no images needed:
        tau is a quantile of the stored out-of-sample scores of the good calibration images)."""
        if not 0.0 < rate < 0.5:
            raise ScaeError(f"the false-alarm rate must be in (0, 0.5), got {rate}")
        config = dataclasses.replace(self.config, target_false_alarm_rate=float(rate))
        scores = np.asarray(self.max_statistics, np.float64)
        threshold = image_threshold(scores, rate, config.k_sigma, config.threshold_method)
        return dataclasses.replace(self, config=config, threshold=threshold, false_alarm_rate=float(np.mean(scores > threshold)))

    def postprocessor(self, zones: bool = True) -> PostProcessor:
        """The calibrated decision rule; ``zones=False``: pooled sigma everywhere, with its own tau."""
        if zones:
            return PostProcessor(
                self.config, self.crop_shape, self.position_stats, self.zone_sigma, self.threshold, self.outline_stats, self.residual_level
            )
        if not math.isfinite(self.pooled_threshold):
            raise ScaeError("this calibration.json has no pooled_threshold (written by an earlier version); re-run calibration")
        pooled = np.full_like(self.zone_sigma, self.pooled_sigma)
        return PostProcessor(self.config, self.crop_shape, self.position_stats, pooled, self.pooled_threshold, self.outline_stats, self.residual_level)

    def check_compatible(self, config: PostprocessConfig, crop_shape: tuple[int, int], path: str | Path | None = None) -> None:
        """ScaeError when ``config``/``crop_shape`` differ from what the statistics were measured with."""
        if tuple(crop_shape) != tuple(self.crop_shape):
            raise ScaeError(
                f"calibration was measured on {self.crop_shape[0]}x{self.crop_shape[1]} crops but the pipeline makes "
                f"{crop_shape[0]}x{crop_shape[1]} crops; re-run calibration with this pre-processing",
                path,
            )
        ours, theirs = to_dict(self.config), to_dict(config)
        # A run config written before a field existed takes today's default for it; the calibration
        # knows the value its statistics were made with and its postprocessor() uses that one.
        differing = [name for name in STATISTICS_FIELDS if name not in self.legacy_fields and ours[name] != theirs[name]]
        if differing:
            detail = ", ".join(f"{n}={ours[n]!r} vs {theirs[n]!r}" for n in differing)
            raise ScaeError(f"calibration was made with other post-processing settings ({detail}); re-run calibration", path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "method": self.method,
            "config": to_dict(self.config),
            "crop_shape": list(self.crop_shape),
            "zone_sigma": [float(s) for s in self.zone_sigma],
            "pooled_sigma": float(self.pooled_sigma),
            "threshold": float(self.threshold),
            "pooled_threshold": float(self.pooled_threshold),
            "k_sigma": float(self.config.k_sigma),
            "target_false_alarm_rate": float(self.config.target_false_alarm_rate),
            "false_alarm_rate": float(self.false_alarm_rate),
            "false_alarm_rate_pooled_k": float(self.false_alarm_rate_pooled_k),
            "false_alarm_rate_zones_k": float(self.false_alarm_rate_zones_k),
            "max_statistics": [float(v) for v in self.max_statistics],
            "n_images": self.n_images,
            "image_names": list(self.image_names),
            "skipped_images": list(self.skipped_images),
            "position_stats": _stats_to_dict(self.position_stats, self.config.stats_downsample),
            "outline_stats": _stats_to_dict(self.outline_stats, self.config.stats_downsample),
            "references": self.references.to_dict() if self.references is not None else None,
            "residual_level": self.residual_level.to_dict() if self.residual_level is not None else None,
            "colour": self.colour.to_dict() if self.colour is not None else None,
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (temp name, then rename): a crash never leaves half a calibration."""
        save_json(self.to_dict(), path, indent=1, sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise ScaeError("calibration not found; run `scae train` (it calibrates) or restore calibration.json", path)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ScaeError(f"corrupt calibration ({err}); re-run calibration or restore the file", path) from None
        if not isinstance(data, dict):
            raise ScaeError("corrupt calibration (not a JSON object); re-run calibration or restore the file", path)
        if data.get("version") != CALIBRATION_VERSION:
            raise ScaeError(
                f"calibration format version {data.get('version')!r} is not the supported {CALIBRATION_VERSION}; re-run calibration",
                path,
            )
        try:
            config = from_dict(PostprocessConfig, data["config"], where=f"{path}: config")
            legacy = tuple(name for name in LEGACY_FIELD_VALUES if name not in data["config"])
            config = dataclasses.replace(config, **{name: LEGACY_FIELD_VALUES[name] for name in legacy})
            stats = _stats_from_dict(data["position_stats"])
            outline = _stats_from_dict(data.get("outline_stats"))  # absent in files written before the outline channel
            if config.outline_weight > 0 and outline is None:
                raise ValueError("outline_weight > 0 but no outline_stats")
            references = _references_from_dict(data.get("references"))
            residual_level = ResidualLevel.from_dict(data["residual_level"]) if data.get("residual_level") else None
            if config.residual_level_percentile > 0 and residual_level is None:
                raise ValueError("residual_level_percentile > 0 but no residual_level")
            colour = ColourBalance.from_dict(data["colour"]) if data.get("colour") else None
            calibration = cls(
                config=config,
                crop_shape=tuple(int(v) for v in data["crop_shape"]),
                zone_sigma=np.asarray(data["zone_sigma"], dtype=np.float64),
                pooled_sigma=float(data["pooled_sigma"]),
                threshold=float(data["threshold"]),
                pooled_threshold=float(data.get("pooled_threshold", math.nan)),  # absent in early files
                position_stats=stats,
                max_statistics=[float(v) for v in data["max_statistics"]],
                false_alarm_rate=float(data["false_alarm_rate"]),
                false_alarm_rate_pooled_k=float(data["false_alarm_rate_pooled_k"]),
                false_alarm_rate_zones_k=float(data["false_alarm_rate_zones_k"]),
                n_images=int(data["n_images"]),
                image_names=[str(n) for n in data.get("image_names", [])],
                skipped_images=[str(n) for n in data.get("skipped_images", [])],
                method=str(data.get("method", "leave-one-out")),
                outline_stats=outline,
                legacy_fields=legacy,
                references=references,
                residual_level=residual_level,
                colour=colour,
            )
            calibration.postprocessor()  # validates zone count, sigma > 0, stats shape
        except ScaeError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as err:
            raise ScaeError(f"corrupt calibration ({err.__class__.__name__}: {err}); re-run calibration or restore the file", path) from None
        return calibration


def _references_from_dict(raw: dict[str, Any] | None) -> GoodReferences | TextureModel | None:
    if not raw:
        return None
    return TextureModel.from_dict(raw) if raw.get("kind") == "texture" else GoodReferences.from_dict(raw)


def _stats_to_dict(stats: PositionStats | None, downsample: int) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "shape": list(stats.shape),
        "downsample": downsample,
        "mean_npy_base64": _encode_array(stats.compact_mean),
        "std_npy_base64": _encode_array(stats.compact_std),
    }


def _stats_from_dict(raw: dict[str, Any] | None) -> PositionStats | None:
    if raw is None:
        return None
    return PositionStats(_decode_array(raw["mean_npy_base64"]), _decode_array(raw["std_npy_base64"]), tuple(int(v) for v in raw["shape"]))


def crop_residual(
    backend: Any,
    preprocessor: Any,
    work: np.ndarray,
    config: PostprocessConfig,
    references: GoodReferences | TextureModel | None = None,
    leave_own_out: bool = False,
    colour: ColourBalance | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(residual, crop mask) of one work image: segment -> canonical crop -> reconstruct -> residual.
    ``leave_own_out``: the image is one of the references (a training image), so its nearest one (itself)
    is not compared with. ``colour``: a colour part's error components weighted (``scae_tf/colour.py``).
    Raises ``ScaeError`` when no part is found (the caller skips the image)."""
    crop, crop_mask = _canonical_crop(backend, preprocessor, work)
    if needs_reconstruction(config, references):
        reconstruction = preprocessor.reconstruct(backend.reconstruct, crop, crop_mask)
    else:
        reconstruction = crop  # a surface judged by its texture alone
    aligned = isinstance(references, GoodReferences) and uses_references(config, references) and len(references) >= 2
    own = int(references.nearest(crop, 1)[0]) if leave_own_out and aligned else None
    return part_residual(crop, reconstruction, config, references, preprocessor.analysis_box(crop_mask), own, colour), crop_mask


def _canonical_crop(backend: Any, preprocessor: Any, work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, crop mask) of one work image; ``ScaeError`` when no part is found."""
    prepared = preprocessor.prepare_image(backend.segment, work, work=True)
    if not prepared.found:
        raise ScaeError(prepared.reason)
    return prepared.crop, prepared.crop_mask


def colour_balance(
    backend: Any,
    preprocessor: Any,
    works: Iterable[np.ndarray],
    config: PostprocessConfig,
    references: GoodReferences | TextureModel | None = None,
) -> ColourBalance | None:
    """The weights of a colour part's squared-error components, from good work images (``scae_tf/colour.py``);
    None for gray parts, with ``postprocess.colour_balance`` off, or when the residual has no CAE errors to weigh
    (a surface judged by its texture alone, ``needs_reconstruction``). A gray part costs one crop, not a pass."""
    if not config.colour_balance or not needs_reconstruction(config, references):
        return None

    def samples() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for work in works:
            try:
                crop, crop_mask = _canonical_crop(backend, preprocessor, work)
            except ScaeError:
                continue  # the calibration pass names the images without a part
            if crop.ndim != 3 or crop.shape[2] != 3:
                return
            yield crop, preprocessor.reconstruct(backend.reconstruct, crop, crop_mask), crop_mask

    return fit_colour_balance(samples())


def good_references(
    backend: Any,
    preprocessor: Any,
    works: Iterable[np.ndarray],
    names: Sequence[str] | None = None,
    texture: bool = False,
    texture_components: int = PostprocessConfig.texture_components,
) -> GoodReferences | TextureModel | None:
    """What the residual is also taken against, from good work images (those where a part is found):
    ``texture`` a model of their texture (surfaces; ``texture_components`` Gaussians), else their canonical
    crops as references (None for surfaces, whose texture has no aligned counterpart); None when no part is
    found at all."""
    if not texture and not preprocessor.segments:
        return None
    crops, masks = [], []
    for index, work in enumerate(works):
        try:
            crop, mask = _canonical_crop(backend, preprocessor, work)
        except ScaeError as err:
            log.warning("reference image %s skipped: %s", names[index] if names is not None else f"#{index}", err)
            continue
        crops.append(crop)
        masks.append(mask)
    if not crops:
        return None
    return TextureModel.fit(crops, masks, texture_components) if texture else GoodReferences.from_crops(np.stack(crops))


def calibrate(
    backend: Any,
    preprocessor: Any,
    config: PostprocessConfig,
    works: Iterable[np.ndarray],
    names: Sequence[str] | None = None,
    references: GoodReferences | TextureModel | None = None,
    training_works: Iterable[np.ndarray] | None = None,
) -> Calibration:
    """Calibrate on good work images (``Preprocessor.work_image`` output); see the module docstring.
    ``training_works``: the training images, whose per-position spread floors the calibration images'
    (``postprocess.zscore_training_floor``; ``training_std_floor``).

    A good image on which the segmenter finds no part cannot be cropped; it is skipped with a
    warning and listed in ``skipped_images`` (the same image would be an error at inspection, so
    the count says how reliable the segmenter is on good parts).
    """
    works = list(works)
    colour = colour_balance(backend, preprocessor, works, config, references)
    residuals, masks, kept, skipped = [], [], [], []
    for index, work in enumerate(works):
        name = names[index] if names is not None else f"#{index}"
        try:
            residual, crop_mask = crop_residual(backend, preprocessor, work, config, references, colour=colour)
        except ScaeError as err:
            log.warning("calibration image %s skipped: %s", name, err)
            skipped.append(name)
            continue
        residuals.append(residual)
        masks.append(crop_mask)
        kept.append(name)
    if len(residuals) < MIN_CALIBRATION_IMAGES and skipped:
        raise ScaeError(
            f"calibration needs at least {MIN_CALIBRATION_IMAGES} good images the segmenter can locate, got "
            f"{len(residuals)} ({len(skipped)} skipped: no part found); train the segmenter longer or add good images"
        )
    level = ResidualLevel.fit(residuals, masks, config.residual_level_percentile) if config.residual_level_percentile > 0 and residuals else None
    floor = None
    if training_works is not None and config.per_position_zscore and config.zscore_training_floor:
        floor = training_std_floor(backend, preprocessor, config, training_works, references, level, colour)
    calibration = calibrate_residuals(residuals, masks, config, kept if names is not None else None, floor, level)
    calibration.skipped_images = skipped
    calibration.references = references if uses_references(config, references) else None
    calibration.colour = colour
    return calibration


def training_std_floor(
    backend: Any,
    preprocessor: Any,
    config: PostprocessConfig,
    works: Iterable[np.ndarray],
    references: GoodReferences | TextureModel | None,
    level: ResidualLevel | None = None,
    colour: ColourBalance | None = None,
) -> PositionStats | None:
    """Per-position statistics of the training images' residuals, each crop compared with the other references.

    Few calibration images see a rare but normal detail (a bold recess, the first crest at a neck) at
    most once, so the std there rests on that one image and the next good part with it scores far
    above the rest. The training images are several times more: their spread at each place is a floor
    for the calibration images' (the mean stays theirs: the CAE rebuilds its own training crops a
    little better). A training crop is among the references, so its nearest one (itself) is left out.
    None when no training image has a part. ``level``: the calibration parts' residual levels, which scale these residuals too;
    ``colour``: their colour weights, which weight them too.
    """
    total = None
    for work in works:
        try:
            residual, crop_mask = crop_residual(backend, preprocessor, work, config, references, leave_own_out=True, colour=colour)
        except ScaeError:
            continue  # the calibration pass names the images without a part; here one less sample
        if level is not None:
            residual = level(residual, crop_mask)
        sums = PositionSums.of(residual, analysis_region(crop_mask, config))
        total = sums if total is None else total + sums
    if total is None or float(total.weight.sum()) <= 0:
        return None
    return stats_from_sums(total, config.zscore_smooth_sigma, config.zscore_std_floor, config.stats_downsample)


def _zone_sums(deviation: np.ndarray, is_object: np.ndarray, zones: np.ndarray, n_zones: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-zone sum of squared deviations and patch count of one image."""
    squares = np.bincount(zones[is_object], weights=deviation[is_object] ** 2, minlength=n_zones)
    counts = np.bincount(zones[is_object], minlength=n_zones).astype(np.float64)
    return squares, counts


def _sigmas(squares: np.ndarray, counts: np.ndarray, floor_fraction: float) -> tuple[np.ndarray, float]:
    """(zone sigmas, pooled sigma) from summed squares and counts; floored, unseen zones pooled."""
    total = counts.sum()
    pooled = math.sqrt(squares.sum() / total) if total > 0 else 0.0
    pooled = max(pooled, 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        zone = np.where(counts > 0, np.sqrt(squares / np.maximum(counts, 1)), pooled)
    return np.maximum(zone, max(floor_fraction * pooled, 1e-9)), pooled


def calibrate_residuals(
    residuals: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    config: PostprocessConfig,
    names: Sequence[str] | None = None,
    std_floor: PositionStats | None = None,
    level: ResidualLevel | None = None,
) -> Calibration:
    """Calibration from residual maps and crop masks of good images (leave-one-out, see module docstring);
    ``std_floor``: per-position statistics whose std the calibration images' never fall below; ``level``:
    the residual levels the residuals are scaled by (``postprocess.residual_level_percentile`` > 0; fitted
    on these residuals when not given)."""
    n = len(residuals)
    if n < MIN_CALIBRATION_IMAGES:
        raise ScaeError(
            f"calibration needs at least {MIN_CALIBRATION_IMAGES} good images, got {n}; add good images to the training set"
        )
    if len(masks) != n or (names is not None and len(names) != n):
        raise ValueError("residuals, masks and names must have the same length")
    crop_shape = tuple(int(v) for v in residuals[0].shape)
    with_object = sum(1 for mask in masks if np.any(mask))
    if with_object == 0:
        raise ScaeError("no object patch in any calibration crop; check the segmentation of the good images")
    if with_object < 2:
        raise ScaeError("fewer than 2 calibration crops contain the object; check the segmentation of the good images")
    plain = PostProcessor(config, crop_shape)  # raw errors, sigma 1: only the analysis is used
    if config.residual_level_percentile > 0:
        level = level or ResidualLevel.fit(residuals, masks, config.residual_level_percentile)
        residuals = [level(r, m) for r, m in zip(residuals, masks, strict=True)]
    else:
        level = None

    def stats_of(sums: PositionSums) -> PositionStats:
        return with_std_floor(stats_from_sums(sums, config.zscore_smooth_sigma, config.zscore_std_floor, config.stats_downsample), std_floor)

    def outline_of(sums: PositionSums) -> PositionStats:
        return stats_from_sums(sums, config.zscore_smooth_sigma, 0.0, config.stats_downsample, config.outline_std_floor)

    position_stats = None
    total = None
    sums = [PositionSums.of(r, analysis_region(m, config)) for r, m in zip(residuals, masks, strict=True)] if config.per_position_zscore else []
    if config.per_position_zscore:
        total = sums[0]
        for other in sums[1:]:
            total = total + other
        position_stats = stats_of(total)

    outline_stats = None
    outline_total = None
    outlines = [outline_sums(m) for m in masks] if config.outline_weight > 0 else []
    if outlines:
        outline_total = outlines[0]
        for other in outlines[1:]:
            outline_total = outline_total + other
        outline_stats = outline_of(outline_total)

    analyses = []
    for i, (residual, mask) in enumerate(zip(residuals, masks, strict=True)):
        if residual.shape != crop_shape:
            raise ValueError(f"residual {i} has shape {residual.shape}, expected {crop_shape}")
        own_stats = stats_of(total - sums[i]) if config.per_position_zscore else None
        own_outline = outline_of(outline_total - outlines[i]) if outlines else None
        analyses.append(plain.analyse_map(*errors_and_region(residual, mask, config, own_stats, own_outline)))
    if not any(a.is_object.any() for a in analyses):
        raise ScaeError("no object patch in any calibration crop; check the segmentation of the good images")

    n_zones = plain.n_zones
    per_image = [_zone_sums(a.deviation, a.is_object, a.zones, n_zones) for a in analyses]
    squares = np.stack([s for s, _ in per_image])
    counts = np.stack([c for _, c in per_image])
    zone_sigma, pooled_sigma = _sigmas(squares.sum(0), counts.sum(0), config.zone_sigma_floor)

    max_zone, max_pooled = [], []
    for i, analysis in enumerate(analyses):
        sigma_i, pooled_i = _sigmas(squares.sum(0) - squares[i], counts.sum(0) - counts[i], config.zone_sigma_floor)
        candidates = analysis.candidate
        if not candidates.any():
            continue  # segmentation found no object in this good image: nothing to learn from it
        deviation = analysis.deviation[candidates]
        max_zone.append(float(np.max(deviation / sigma_i[analysis.zones[candidates]])))
        max_pooled.append(float(np.max(deviation / pooled_i)))
    max_zone_arr = np.asarray(max_zone)
    max_pooled_arr = np.asarray(max_pooled)
    if max_zone_arr.size < 2:
        raise ScaeError("fewer than 2 calibration crops contain the object; check the segmentation of the good images")
    threshold = image_threshold(max_zone_arr, config.target_false_alarm_rate, config.k_sigma, config.threshold_method)
    k = config.k_sigma
    return Calibration(
        config=config,
        crop_shape=crop_shape,
        zone_sigma=zone_sigma,
        pooled_sigma=pooled_sigma,
        threshold=threshold,
        pooled_threshold=image_threshold(max_pooled_arr, config.target_false_alarm_rate, config.k_sigma, config.threshold_method),
        position_stats=position_stats,
        max_statistics=max_zone,
        false_alarm_rate=float(np.mean(max_zone_arr > threshold)),
        false_alarm_rate_pooled_k=float(np.mean(max_pooled_arr > k)),
        false_alarm_rate_zones_k=float(np.mean(max_zone_arr > k)),
        n_images=n,
        image_names=[str(name) for name in names] if names is not None else [],
        outline_stats=outline_stats,
        residual_level=level,
    )
