"""Reading a training run dir for export: required files, config, split, good images."""

from __future__ import annotations

import json
from pathlib import Path

from scae_tf.config import RunConfig, load_config
from scae_tf.errors import ScaeError

RUN_FILES = ("config.json", "preprocessing.json", "calibration.json", "segmenter.keras", "cae.keras", "split.json")


def check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise ScaeError("run dir not found; pass the folder written by `scae train`", run_dir)
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ScaeError(
            f"not a finished training run: missing {', '.join(missing)}; run `scae train` to completion first", run_dir
        )


def run_config(run_dir: Path) -> RunConfig:
    return load_config(run_dir / "config.json")


def split_images(run_dir: Path, part: str) -> list[Path]:
    """Image paths of one part of ``split.json`` ("train", "validation", "calibration").

    Relative paths are resolved against the split's ``root`` entry when present, else taken as
    they are when they exist (relative to the current folder, as ``scae train`` was called), else
    against the run dir.
    A part that is absent or empty gives an empty list; callers decide whether that is fatal.
    """
    path = run_dir / "split.json"
    try:
        split = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScaeError(f"cannot read the split ({err.__class__.__name__}); re-run `scae train`", path) from None
    if not isinstance(split, dict):
        raise ScaeError("split.json must be a mapping of part -> image list; re-run `scae train`", path)
    entries = split.get(part) or []
    root = Path(split["root"]) if isinstance(split.get("root"), str) else None
    images = []
    for entry in entries:
        image = Path(entry.get("path") if isinstance(entry, dict) else entry)
        if not image.is_absolute():
            image = root / image if root is not None else image if image.exists() else run_dir / image
        images.append(image)
    return images
