"""Typed configuration: one dataclass tree, saved as JSON next to every result.

Each section belongs to one component (pre-processing, models, loss, training,
post-processing). ``RunConfig`` is the whole thing; ``scae train --config FILE`` reads
a JSON or YAML file holding any subset of it, and the run dir keeps the full resolved
copy (``config.json``) so results can always be traced to the settings that made them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from scae_tf.errors import ScaeError

T = TypeVar("T")


@dataclass
class PreprocessConfig:
    """How an input image becomes model inputs (shared by Keras and TFLite paths)."""

    work_size: int = 512  # short side of the work image (1024 MVTec -> 512; smaller training images: their own size)
    seg_size: int = 256  # U-Net input side
    crop_height: int = 128  # canonical crop (screw axis horizontal, head on the left)
    crop_width: int = 384
    crop_fill: float = 0.9  # median training object length fills this fraction of crop_width
    canonical_pose: bool = True  # False: the CAE sees the whole frame resized to the crop size
    normalize_illumination: bool = True
    mask_threshold: float = 0.5
    kind: str = "auto"  # auto | elongated | compact | surface: chosen by `scae train` from the good images (part_kind.py)
    fixtured: bool | None = None  # compact parts: None = decided from the spread of position and angle
    turn_by_appearance: bool | None = None  # compact parts that move: None = when the turn is well defined (scae_tf/rotation.py), true = always, false = never
    compact_crop_pixels: int = 256 * 256  # compact parts: the crop's pixel budget (never finer than the work image); bounds the CAE's cost
    color: str = "auto"  # auto | gray | rgb: colour when the training images are colour (RGB files with equal channels are gray)


@dataclass
class CaeConfig:
    base_filters: int = 16  # filters of the first stage, doubled per stage up to max_filters
    depth: int = 4  # number of stride-2 stages; crop sides must be divisible by 2**depth
    latent_filters: int = 64  # 1x1 bottleneck channels at 1/2**depth resolution
    channels: int = 1
    max_filters: int = 128
    upsampling: str = "transpose"  # transpose (Conv2DTranspose) | nearest (UpSampling2D + Conv2D)


@dataclass
class UnetConfig:
    base_filters: int = 8
    depth: int = 4
    input_downsample: int = 2  # the net runs at seg_size / this (avg-pool in, bilinear out); 1 = full res


@dataclass
class LossConfig:
    """loss = alpha * (1 - MS-SSIM) + (1 - alpha) * MSE."""

    alpha: float = 0.85
    scales: int = 3
    filter_size: int = 7
    filter_sigma: float = 1.5


@dataclass
class TrainingConfig:
    epochs: int = 60
    segmenter_epochs: int = 25
    batch_size: int = 16
    learning_rate: float = 1e-3
    validation_fraction: float = 0.15  # of train/good, kept aside for early stopping and calibration
    patience: int = 20  # epochs without a better val_loss before stopping; the best epoch's weights are kept, so a longer wait costs time only (a CAE may plateau before it learns fine structure: the demo's, epochs 50-80)
    seed: int = 0
    strategy: str = "default"  # default | mirrored | multiworker
    min_steps_per_epoch: int = 16  # repeat small datasets so an epoch has at least this many batches (short runs on few images still converge)
    corruption: float = 0.75  # share of CAE training crops corrupted, target the clean crop (defect removal); 0 = plain autoencoder


@dataclass
class PostprocessConfig:
    """NumPy patch post-processor (see scae_tf/postprocess)."""

    residual: str = "l2"  # l2 | ssim | ssim+l2; l2 measured best on real screws (tuning proxy, benchmarks/proxy_split.py)
    patch_size: int = 8  # 8/4 measured best on the tuning proxy (benchmarks/proxy_split.py)
    patch_stride: int = 4
    min_object_fraction: float = 0.5  # a patch counts as object when this much of it is in the mask
    top_fraction: float = 0.10
    k_sigma: float = 3.0
    zones: int = 8  # zones along the canonical axis with their own statistics; 0/1 = one global zone, -1 = one per grid position
    per_position_zscore: bool = True
    target_false_alarm_rate: float = 0.01
    # residual map (scae_tf/residual.py)
    ssim_weight: float = 0.5  # ssim+l2: weight of (1-SSIM)/2; the rest goes to the squared error
    ssim_window_sigma: float = 1.5  # Gaussian SSIM window
    residual_smooth_sigma: float = 1.0  # light smoothing of the residual (0 = none)
    colour_balance: bool = True  # colour parts: the squared error's brightness and two opponent colour components weighted by how small each is on good parts (scae_tf/colour.py); False = the channel mean
    residual_brightness_power: float = -1.0  # squared errors divided by (local brightness + floor)^this (scae_tf/residual.py brightness_weight): 2 = relative errors, 0 = off; -1 = scae train chooses (2 for a dark part)
    residual_brightness_floor: float = 0.01  # the brightness added before that division (2.5 gray levels), so the sensor noise of black stays bounded
    residual_brightness_denoise: float = 1.0  # with relative errors: px the difference to the reconstruction and to the references is smoothed by before squaring (in a black part's shadow the sensor noise is as large as the brightness)
    residual_level_percentile: float = 90.0  # each part's residual is divided by this percentile of it over the part, kept within the good parts' range (scae_tf/postprocess/level.py); 0 = off
    reference_neighbours: int = 5  # nearest good training crops the residual is also taken against (scae_tf/references.py); 0 = the CAE's alone
    reference_weight: float = 0.75  # the references' exponent in the weighted geometric mean with the CAE's residual (0.5 = plain geometric mean; docs/results.md "Weight of the references: how it was chosen")
    reference_shift: int = 1  # px each way a reference may be shifted to match (misregistration)
    reference_subpixel: int = 2  # steps per px of that shift (bilinear): a crest half a pixel off its reference's lights every thread edge
    reference_axial_search: int = 8  # px each way a reference may slide along the axis to match a band (a thread's phase differs from part to part)
    texture_model: bool = False  # also judge each pixel's texture against a model of good texture (scae_tf/texture.py); scae train turns it on for surfaces
    texture_weight: float = 1.0  # surfaces: the texture distance's exponent in the weighted geometric mean with the CAE's residual (1: the texture alone) (docs/results.md "Surfaces: a mixture of Gaussians, judged alone")
    texture_components: int = 16  # Gaussians in that model: a grain of several kinds (a brick's face and its mortar) is several clusters (docs/results.md "Surfaces: a mixture of Gaussians, judged alone")
    reference_bands: int = 12  # bands of columns along the canonical axis, each choosing its own nearest references (head, neck and thread need not match the same good part); scae train keeps a compact part at 4
    # post-processor details (scae_tf/postprocess)
    neighbour_statistic: str = "median"  # median | mean of the 8-connected object neighbours | none (no comparison)
    neighbour_ring: int = 6  # grid distance of the neighbours compared with (1 = adjacent; 2 = the nearest patches not overlapping at stride = size/2; 6: 3 patch lengths away, so a defect wider than a patch is compared with the part around it, not with itself)
    zscore_smooth_sigma: float = 2.0  # smoothing of the per-position mean/std, and of the |z| map in the pixel anomaly map (crop pixels)
    missing_material_map: bool = True  # the pixel map also shows, in a band around the analysed region (scae_tf/postprocess/processor.py), where the residual exceeds what good parts show there (material the segmenter cut from the mask: a cut tip); scae train turns it off for compact parts and surfaces
    zscore_training_floor: bool = True  # the per-position std is at least what the training crops show there (each against the other references): a rare but normal detail is seen in more good parts than the calibration images
    zscore_std_floor: float = 0.5  # per-position std >= this fraction of the median object std
    zone_sigma_floor: float = 0.25  # zone sigma >= this fraction of the pooled sigma
    threshold_method: str = "gumbel"  # gumbel (extreme-value fit) | quantile (empirical) on the max statistic
    stats_downsample: int = 2  # per-position statistics are stored at 1/this resolution
    outline_weight: float = 0.0  # weight of the object mask's per-position z-score (missing/extra material); 0 = off
    outline_std_floor: float = 0.1  # per-position std of the calibration masks is at least this
    analysis_dilation: int = 2  # px the crop mask is grown by for the analysis: missing material (a cut tip, a chip) lies outside the mask


@dataclass
class RunConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    cae: CaeConfig = field(default_factory=CaeConfig)
    unet: UnetConfig = field(default_factory=UnetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, recursively; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ScaeError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ScaeError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = from_dict(kind, value, f"{where}.{key}")
        else:
            kwargs[key] = _coerce(kind, value, f"{where}.{key}")
    return cls(**kwargs)


def update_sections(config: RunConfig, sections: dict[str, Any], where: str = "config") -> RunConfig:
    """``config`` with the fields named in ``sections`` (a nested subset of RunConfig, like a ``--config``
    file: ``{"cae": {"depth": 3}}``) replaced; unknown sections and fields are an error."""
    data = to_dict(config)
    for section, values in sections.items():
        if section not in data or not isinstance(values, dict):
            raise ScaeError(f'{where}: expected RunConfig sections as objects (e.g. {{"cae": {{"depth": 3}}}}), got {section!r}')
        data[section].update(values)
    return from_dict(RunConfig, data, where=where)


def _coerce(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    if origin in (list, tuple):
        return origin(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not isinstance(value, kind):
        raise ScaeError(f"{where} must be {kind.__name__}, got {value!r}")
    return value


def save_json(obj: Any, path: str | Path, *, indent: int = 2, sort_keys: bool = True, allow_nan: bool = True) -> None:
    """Write ``obj`` (dataclass or dict) as JSON atomically: temp name, then rename, so a crash
    never leaves half a file. The one JSON writer of the project's state and result files."""
    path = Path(path)
    data = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")
    tmp.replace(path)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML mapping, with a clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ScaeError("file not found", path)
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as err:  # noqa: BLE001 - any parse error is the user's file
        raise ScaeError(f"cannot parse ({err.__class__.__name__}: {err})", path) from None
    if not isinstance(data, dict):
        raise ScaeError("expected a mapping at the top level", path)
    return data


def load_config(path: str | Path, cls: type[T] = RunConfig) -> T:  # type: ignore[assignment]
    return from_dict(cls, read_mapping(path), where=str(path))


def config_hash(obj: Any) -> str:
    data = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
