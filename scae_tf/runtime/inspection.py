"""``scae inspect`` without the argument parsing: inputs, decoding checks, records, overlays.

Inputs: image files and folders; folders are searched **recursively** (an MVTec ``test/``
folder with one sub-folder per defect type works as is), in sorted order, hidden files and
files without an image suffix skipped. Every input ends as exactly one record: a result or an
error, so a corrupt file in a folder never stops the others. A run ends with ``summary_line``;
``csv_report`` writes the records as CSV rows.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.errors import ScaeError
from scae_tf.imageio import decode_raw, is_image_file, read_raw, to_float, to_gray, write_png
from scae_tf.overlay import result_overlay
from scae_tf.quiet import c_stderr_captured

ASPECT_TOLERANCE = 0.02  # relative aspect-ratio difference tolerated silently (measured: 5 % moved a fixtured washer's score by up to 4x its threshold)
GRAY_TOLERANCE = 2  # max channel difference (8-bit levels) for an RGB file to count as gray


@dataclass(frozen=True)
class InputImage:
    path: Path
    overlay_name: Path  # relative path of its overlay under --out


@dataclass
class Record:
    """What inspecting one input produced: a result, or the error that prevented it."""

    path: Path
    result: Any = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None
    overlay: Path | None = None


def collect_inputs(paths: Iterable[str | Path]) -> tuple[list[InputImage], list[Record]]:
    """Expand files and folders (recursively) into images; unusable arguments become error records.

    Overlay names: an image found in a folder mirrors its place under that folder
    (``test/crack/000`` -> ``test/crack/000``); an image given as a file is named by its stem, with
    as many parent folder names as tell it apart from other files of the same name
    (``test/good/000.png`` and ``test/crack/000.png`` -> ``good_000``, ``crack_000``).
    """
    errors: list[Record] = []
    named: list[tuple[Path, Path | None]] = []  # (image, overlay name; None: a file named below)
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if is_image_file(p) and not _hidden(p.relative_to(path)))
            if not found:
                errors.append(Record(path, error=f"{path}: no images (.png/.jpg/.bmp/.tif) in this folder or below"))
            named += [(image, Path(path.resolve().name) / image.relative_to(path).with_suffix("")) for image in found]
        elif path.is_file():
            named.append((path, None))
        else:
            errors.append(Record(path, error=f"{path}: no such file or folder"))
    files = [path for path, name in named if name is None]
    file_names = iter(_distinct_file_names(files))
    images: list[InputImage] = []
    used: set[Path] = set()
    for path, name in named:
        name = name if name is not None else next(file_names)
        candidate, number = name, 1
        while candidate in used:  # the same file twice: keep both overlays
            number += 1
            candidate = name.with_name(f"{name.name}-{number}")
        used.add(candidate)
        images.append(InputImage(path, candidate))
    return images, errors


def _distinct_file_names(files: list[Path]) -> list[Path]:
    """Each file's stem, prefixed with the fewest parent folder names that set apart different files
    of the same stem (``good_000``, ``crack_000``)."""
    resolved = [path.resolve() for path in files]
    depth = [0] * len(files)

    def name(i: int) -> str:
        parents = resolved[i].parent.parts[1:]  # without the root
        return "_".join([*parents[len(parents) - depth[i]:], resolved[i].stem]) if depth[i] else resolved[i].stem

    while True:
        by_name: dict[str, set[Path]] = {}
        for i in range(len(files)):
            by_name.setdefault(name(i), set()).add(resolved[i])
        grow = [i for i in range(len(files)) if len(by_name[name(i)]) > 1 and depth[i] < len(resolved[i].parent.parts) - 1]
        if not grow:
            return [Path(name(i)) for i in range(len(files))]
        for i in grow:
            depth[i] += 1


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def decode(path: Path, channels: int) -> np.ndarray:
    """Read ``path`` as float32 [0, 1] (gray unless the bundle wants colour); refuse other channel counts.

    A colour file whose channels are equal (a gray image saved as RGB) counts as gray.
    """
    with c_stderr_captured():  # libpng's "libpng error: ..." on a truncated file; the ScaeError says it
        raw = read_raw(path)
    return conform_channels(raw, channels, path)


def decode_bytes(data: bytes, channels: int, source: str | Path) -> np.ndarray:
    """``decode`` for encoded bytes already in memory (an HTTP body); ``source`` names them in errors."""
    return conform_channels(decode_raw(data, source), channels, source)


def conform_channels(raw: np.ndarray, channels: int, path: str | Path) -> np.ndarray:
    """A decoded uint8/uint16 image -> float32 [0, 1] with the bundle's channel count (the rules of ``decode``)."""
    if raw.ndim == 2:
        if channels != 1:
            raise ScaeError(f"gray image, but the bundle was trained on {channels}-channel images; use colour images", path)
        return to_float(raw)
    if channels == 1:
        spread = raw.max(axis=2).astype(np.int64) - raw.min(axis=2)
        tolerance = GRAY_TOLERANCE * (257 if raw.dtype == np.uint16 else 1)
        if int(spread.max()) > tolerance:
            raise ScaeError(
                f"colour image ({raw.shape[2]} channels) but the bundle was trained on gray images; "
                "convert it to gray or use the camera the model was trained for",
                path,
            )
        return to_gray(to_float(raw))
    return to_float(raw)


def keeps_shape(pipeline: Any) -> bool:
    """Whether ``pipeline`` analyses images of any size and aspect undistorted (surfaces; ``Preprocessor.keeps_shape``)."""
    return bool(getattr(getattr(pipeline, "preprocessor", None), "keeps_shape", False))


def aspect_change(size: tuple[int, int], reference: tuple[int, int]) -> float:
    """Relative difference of the aspect ratio of ``size`` (H, W) from that of ``reference`` (H, W)."""
    return abs((size[1] / size[0]) / (reference[1] / reference[0]) - 1.0)


def aspect_warning(size: tuple[int, int], train_size: list[int] | None, work_size: int, pipeline: Any = None) -> str | None:
    """A warning when the image's aspect ratio differs from the training images' (a surface takes any shape); never
    an error: the image is judged and its result says so. A part's work image takes its scale from the short side
    (or, in older runs, is squared), so another aspect changes the part's scale or shape."""
    if keeps_shape(pipeline):
        return None
    reference = (train_size[0], train_size[1]) if train_size else (work_size, work_size)
    if aspect_change(size, reference) <= ASPECT_TOLERANCE:
        return None
    return (
        f"aspect ratio {size[1]}x{size[0]} differs from the training images' {reference[1]}x{reference[0]}; "
        "so the part's scale or shape differs from training and results may be off"
    )


def inspect_inputs(
    pipeline: Any,
    images: Iterable[InputImage],
    channels: int = 1,
    work_size: int = 512,
    train_size: list[int] | None = None,
    out_dir: Path | None = None,
) -> Iterator[Record]:
    """Inspect each image; yield one record each (errors included), writing overlays to ``out_dir``."""
    for item in images:
        record = Record(item.path)
        try:
            start = time.perf_counter()
            image = decode(item.path, channels)
            decode_seconds = time.perf_counter() - start
            record.image_size = (int(image.shape[0]), int(image.shape[1]))
            warning = aspect_warning(record.image_size, train_size, work_size, pipeline)
            if warning:
                record.warnings.append(warning)
            result = pipeline.inspect(image, {"decode": decode_seconds})  # total includes decoding
            record.result = result
            record.warnings.extend(getattr(result, "warnings", []))  # e.g. out of distribution
            record.timings = {stage: float(seconds) for stage, seconds in result.timings.items()}
            if out_dir is not None:
                target = out_dir / item.overlay_name.with_name(item.overlay_name.name + ".overlay.png")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_png(target, result_overlay(image, result))
                    record.overlay = target
                except OSError as err:  # the verdict stands; only the picture is missing
                    record.warnings.append(f"could not write the overlay {target} ({err.strerror or err})")
        except ScaeError as err:
            record.error = str(err) if err.path is not None else f"{item.path}: {err}"
        yield record


def _number(value: float) -> float | None:
    """JSON has no inf/NaN: non-finite scores (no object found) become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def record_json(record: Record) -> dict[str, Any]:
    """The JSON line of one record (timings in milliseconds, boxes in input-image pixels)."""
    if record.error is not None:
        return {"path": str(record.path), "verdict": "error", "error": record.error, "warnings": record.warnings}
    result = record.result
    return {
        "path": str(record.path),
        "verdict": "anomalous" if result.anomalous else "good",
        "anomalous": bool(result.anomalous),
        "reason": getattr(result, "reason", None),  # e.g. "no part found": judged without a score
        "score": _number(result.score),
        "threshold": _number(result.threshold),
        "image_size": list(record.image_size) if record.image_size else None,
        "flagged": [
            {
                "box": [int(v) for v in patch.box],
                "corners": np.round(np.asarray(patch.corners, dtype=np.float64), 1).tolist(),
                "score": _number(patch.score),
                "zone": int(patch.zone),
            }
            for patch in result.flagged
        ],
        "timings_ms": {stage: round(seconds * 1000.0, 3) for stage, seconds in record.timings.items()},
        "overlay": None if record.overlay is None else str(record.overlay),
        "warnings": record.warnings,
    }


def record_line(record: Record) -> str:
    """One readable line per image."""
    if record.error is not None:
        return f"ERROR      {record.error}"
    result = record.result
    verdict = "ANOMALOUS" if result.anomalous else "good"
    total = record.timings.get("total", 0.0) * 1000.0
    if getattr(result, "reason", None):
        return f"{verdict:<10} {result.reason}  {total:7.1f} ms  {record.path}"
    return (
        f"{verdict:<10} score {result.score:8.3f}  threshold {result.threshold:.3f}  "
        f"{len(result.flagged):3d} flagged  {total:7.1f} ms  {record.path}"
    )


def exit_code(records: Iterable[Record]) -> int:
    """2 if any input failed, else 1 if any image is anomalous, else 0."""
    records = list(records)
    if any(r.error is not None for r in records):
        return 2
    return 1 if any(r.result is not None and r.result.anomalous for r in records) else 0


def summary_line(records: Iterable[Record]) -> str:
    """The closing line of a run: how many images, how many anomalous, how many could not be inspected."""
    records = list(records)
    errors = sum(r.error is not None for r in records)
    anomalous = sum(r.result is not None and bool(r.result.anomalous) for r in records)
    inspected = len(records) - errors
    return (
        f"{len(records)} image{'s' if len(records) != 1 else ''}: {anomalous} anomalous, "
        f"{inspected - anomalous} good, {errors} could not be inspected"
    )


CSV_COLUMNS = ("path", "verdict", "score", "threshold", "n_flagged", "total_ms", "overlay", "error", "warnings")


def csv_row(record: Record) -> list[str]:
    """One CSV row (``CSV_COLUMNS``) of a record; empty cells where a value does not apply."""
    line = record_json(record)

    def cell(value: Any) -> str:
        return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)

    total = line.get("timings_ms", {}).get("total")
    return [
        line["path"],
        line["verdict"],
        cell(line.get("score")),
        cell(line.get("threshold")),
        cell(len(line["flagged"]) if "flagged" in line else None),
        cell(total),
        cell(line.get("overlay")),
        line.get("error") or "",
        "; ".join(record.warnings),
    ]


@contextmanager
def csv_report(path: Path) -> Iterator[Callable[[Record], None]]:
    """Write one CSV row per record as they come, to a temporary file renamed to ``path`` at the end.

    Yields the function that adds a record. A run that fails or is interrupted leaves no file
    (an older ``path`` stays as it was).
    """
    path = Path(path)
    if path.is_dir():
        raise ScaeError("--csv is a folder; give a file name such as results.csv", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(
            "w", newline="", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
        )
    except OSError as err:
        raise ScaeError(f"cannot write the CSV file ({err.strerror or err}); choose another --csv", path) from None
    try:
        with handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            yield lambda record: writer.writerow(csv_row(record))
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
