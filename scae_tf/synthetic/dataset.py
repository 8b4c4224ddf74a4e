"""Writing a synthetic category (MVTec layout, atomically) and its contact sheet, for every part kind."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scae_tf.errors import ScaeError
from scae_tf.imageio import write_png
from scae_tf.progress import progress
from scae_tf.synthetic import capsule, fabric, roller, round_part, screw, surface, tuber
from scae_tf.synthetic.common import (
    GENERATOR_VERSION,
    GOOD,
    MASK_THRESHOLD,
    SCREW_GENERATOR_VERSION,
    SyntheticSample,
    sample_rng,
    to_u8,
)

DEFAULT_COUNTS = {"n_train": 120, "n_test_good": 16, "n_per_defect": 8}
MIN_SIZE = 64


@dataclass(frozen=True)
class PartKind:
    """One synthetic part kind: how to render it and which defects it shows."""

    render: Callable[..., SyntheticSample]  # (rng, size, defect_type, color[, loose]) -> SyntheticSample
    defect_types: tuple[str, ...]
    color: bool  # whether a colour variant exists
    description: str
    loose: bool = False  # whether a loose variant exists (anywhere at any angle instead of fixtured)


PART_KINDS: dict[str, PartKind] = {
    "screw": PartKind(screw.render_screw, screw.DEFECT_TYPES, False, "elongated dark screw on a light background"),
    "round": PartKind(round_part.render_round, round_part.DEFECT_TYPES, True, "compact round part (washer / cap) seen from above, fixtured", True),
    "capsule": PartKind(capsule.render_capsule, capsule.DEFECT_TYPES, True, "elongated capsule with alike ends and a print, fixtured", True),
    "roller": PartKind(roller.render_roller, roller.DEFECT_TYPES, True, "knurled roller turned about its axis between shots (its tread at another height each time)"),
    "tuber": PartKind(tuber.render_tuber, tuber.DEFECT_TYPES, True, "natural product (a potato, a bun): its outline, size and skin vary from one to the next, at any angle"),
    "surface": PartKind(surface.render_surface, surface.DEFECT_TYPES, True, "brushed-metal surface filling the frame"),
    "fabric": PartKind(fabric.render_fabric, fabric.DEFECT_TYPES, True, "woven fabric filling the frame (a regular texture)"),
}


def part_kind(part: str) -> PartKind:
    if part not in PART_KINDS:
        raise ValueError(f"unknown part kind {part!r}; known: {', '.join(PART_KINDS)}")
    return PART_KINDS[part]


def render_sample(
    rng: np.random.Generator, size: int = 256, defect_type: str = GOOD, part: str = "screw", color: bool = False, loose: bool = False
) -> SyntheticSample:
    """Render one part of kind ``part`` (``defect_type`` "good" or one of its defect types) from ``rng``;
    ``loose``: anywhere at any angle instead of fixtured (the kinds with :attr:`PartKind.loose`)."""
    kind = part_kind(part)
    if loose and not kind.loose:
        raise ValueError(f"the {part} has no loose variant; known: {', '.join(k for k, v in PART_KINDS.items() if v.loose)}")
    return kind.render(rng, size, defect_type, color, loose=True) if loose else kind.render(rng, size, defect_type, color)


def _plan(n_train: int, n_test_good: int, n_per_defect: int, defect_types: tuple[str, ...]) -> list[tuple[str, str, int]]:
    plan = [("train", GOOD, i) for i in range(n_train)]
    plan += [("test", GOOD, i) for i in range(n_test_good)]
    plan += [("test", kind, i) for kind in defect_types for i in range(n_per_defect)]
    return plan


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ScaeError("--out exists and is a file; choose a folder path", out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ScaeError("output folder exists and is not empty; choose another --out or pass --force to replace it", out)


def _check_kind(part: str, color: bool, defect_types: tuple[str, ...] | None, where: Path, loose: bool = False) -> tuple[str, ...]:
    if part not in PART_KINDS:
        raise ScaeError(f"unknown part kind {part!r}; known: {', '.join(PART_KINDS)}", where)
    kind = PART_KINDS[part]
    if color and not kind.color:
        raise ScaeError(f"the {part} is gray only; --color works with {', '.join(k for k, v in PART_KINDS.items() if v.color)}", where)
    if loose and not kind.loose:
        raise ScaeError(f"the {part} has no loose variant; --loose works with {', '.join(k for k, v in PART_KINDS.items() if v.loose)}", where)
    types = kind.defect_types if defect_types is None else tuple(defect_types)
    unknown = [t for t in types if t not in kind.defect_types]
    if unknown:
        raise ScaeError(f"unknown defect type(s) {', '.join(unknown)} for the {part}; known: {', '.join(kind.defect_types)}", where)
    return types


def generate_dataset(
    out: str | Path,
    seed: int = 0,
    size: int = 256,
    n_train: int = DEFAULT_COUNTS["n_train"],
    n_test_good: int = DEFAULT_COUNTS["n_test_good"],
    n_per_defect: int = DEFAULT_COUNTS["n_per_defect"],
    defect_types: tuple[str, ...] | None = None,
    force: bool = False,
    contact_sheet: str | Path | None = None,
    part: str = "screw",
    color: bool = False,
    loose: bool = False,
) -> Path:
    """Write a synthetic MVTec-layout category of ``part`` (:data:`PART_KINDS`) to ``out``
    atomically and return its path. ``defect_types`` defaults to all of the part's; ``loose``: parts
    anywhere at any angle instead of fixtured.

    Layout: train/good, test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png, plus
    object_masks/<split>/<type>/<name>.png (the true silhouette, to score the segmenter; the
    loader ignores it; all white for a surface) and dataset.json. Colour images are RGB PNGs.
    """
    out = Path(out)
    if size < MIN_SIZE:
        raise ScaeError(f"--size {size} is too small to draw a part; use {MIN_SIZE} or more", out)
    if n_train < 1 or n_test_good < 0 or n_per_defect < 0:
        raise ScaeError("counts must be >= 0 (and --train >= 1)", out)
    types = _check_kind(part, color, defect_types, out, loose)
    _check_out(out, force)
    if contact_sheet is not None and not Path(contact_sheet).resolve().parent.is_dir():
        raise ScaeError("folder for the contact sheet does not exist; create it first", Path(contact_sheet).resolve().parent)
    parent = out.resolve().parent
    if not parent.is_dir():
        raise ScaeError("parent folder does not exist; create it first", parent)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        plan = _plan(n_train, n_test_good, n_per_defect, types)
        for split, kind, index in progress(plan, desc="synth", total=len(plan)):
            sample = render_sample(sample_rng(seed, split, kind, index, part), size, kind, part, color, loose)
            name = f"{index:03d}"
            folder = tmp / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            write_png(folder / f"{name}.png", to_u8(sample.image))
            obj_dir = tmp / "object_masks" / split / kind
            obj_dir.mkdir(parents=True, exist_ok=True)
            write_png(obj_dir / f"{name}.png", sample.object_mask.astype(np.uint8) * 255)
            if kind != GOOD:
                gt_dir = tmp / "ground_truth" / kind
                gt_dir.mkdir(parents=True, exist_ok=True)
                write_png(gt_dir / f"{name}_mask.png", sample.defect_mask.astype(np.uint8) * 255)
        meta = {
            "generator": "scae_tf.synthetic",
            "generator_version": generator_version(part),
            "part": part,
            "color": bool(color),
            "loose": bool(loose),
            "seed": int(seed),
            "size": int(size),
            "counts": {"train_good": n_train, "test_good": n_test_good, "per_defect": n_per_defect},
            "defect_types": list(types),
            "mask_threshold": MASK_THRESHOLD,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        _check_out(out, force)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if contact_sheet is not None:
        write_contact_sheet(contact_sheet, seed=seed, size=size, defect_types=types, part=part, color=color, loose=loose)
    return out


def generator_version(part: str) -> int:
    """The generator version whose images this part kind's dataset holds (the screw's defects changed in version 3, its good images did not)."""
    return SCREW_GENERATOR_VERSION if part == "screw" else GENERATOR_VERSION


def contact_sheet(
    seed: int = 0,
    size: int = 256,
    tile: int = 160,
    defect_types: tuple[str, ...] | None = None,
    part: str = "screw",
    color: bool = False,
    loose: bool = False,
) -> np.ndarray:
    """RGB uint8 grid, one column per type (good first): the whole image with the defect mask
    contour in red, and below it a 4x zoom on the defect without the contour (to judge subtlety)."""
    types = part_kind(part).defect_types if defect_types is None else tuple(defect_types)
    columns = (GOOD, *types)
    sheet = np.full((2 * tile + 18, len(columns) * tile, 3), 255, np.uint8)
    for col, kind in enumerate(columns):
        cv2.putText(sheet, kind, (col * tile + 6, 2 * tile + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        sample = render_sample(sample_rng(seed, "test", kind, 0, part), size, kind, part, color, loose)
        pixels = to_u8(sample.image)
        rgb = pixels if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
        focus = sample.defect_mask if sample.defect_mask.any() else sample.object_mask
        ys, xs = np.nonzero(focus)
        cy, cx = int(ys.mean()), int(xs.mean())
        if not focus[cy, cx]:  # e.g. the hole of a ring: zoom on the nearest part pixel instead
            nearest = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
            cy, cx = int(ys[nearest]), int(xs[nearest])
        half = size // 8
        cy, cx = int(np.clip(cy, half, size - half)), int(np.clip(cx, half, size - half))
        zoom = cv2.resize(rgb[cy - half : cy + half, cx - half : cx + half], (tile, tile), interpolation=cv2.INTER_CUBIC)
        outlined = rgb.copy()
        if kind != GOOD:
            contours, _ = cv2.findContours(sample.defect_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(outlined, contours, -1, (255, 0, 0), max(1, size // 256))
        sheet[:tile, col * tile : (col + 1) * tile] = cv2.resize(outlined, (tile, tile), interpolation=cv2.INTER_AREA)
        sheet[tile : 2 * tile, col * tile : (col + 1) * tile] = zoom
    return sheet


def write_contact_sheet(
    path: str | Path,
    seed: int = 0,
    size: int = 256,
    defect_types: tuple[str, ...] | None = None,
    part: str = "screw",
    color: bool = False,
    tile: int = 160,
    loose: bool = False,
) -> Path:
    """Write :func:`contact_sheet` as PNG (same images as ``test/`` of a dataset with this seed)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ScaeError("folder for the contact sheet does not exist; create it first", path.parent)
    sheet = cv2.cvtColor(contact_sheet(seed=seed, size=size, tile=tile, defect_types=defect_types, part=part, color=color, loose=loose), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # it is committed to the repo
    if not ok:
        raise ScaeError("could not encode the contact sheet as PNG", path)
    tmp = path.with_name(path.name + ".tmp")
    encoded.tofile(tmp)
    tmp.replace(path)
    return path
