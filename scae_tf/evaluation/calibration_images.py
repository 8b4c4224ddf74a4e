"""Which good images calibrate the baselines' thresholds: the run's own calibration split.

``scae train`` keeps a slice of train/good aside (never trained on) and lists it in the run dir's
``split.json``; ``calibration.json`` may list the files it was computed from. The baselines are
calibrated on exactly those images, like the method, so no test label ever sets a threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

from scae_tf.errors import ScaeError
from scae_tf.imageio import is_image_file

LIST_KEYS = ("calibration", "calibration_files", "calibration_images", "files", "images")
SOURCES = ("split.json", "calibration.json")


def _file_list(data: object) -> list[str] | None:
    if isinstance(data, list) and data and all(isinstance(item, str) for item in data):
        return data
    if isinstance(data, dict):
        for key in LIST_KEYS:
            if key in data:
                found = _file_list(data[key])
                if found:
                    return found
    return None


def _resolve(name: str, bases: list[Path], listed_in: Path) -> Path:
    path = Path(name)
    if path.is_absolute() and path.is_file():
        return path
    for base in bases:
        for candidate in (base / path, base / "train" / "good" / path.name, base / "good" / path.name):
            if candidate.is_file():
                return candidate
    raise ScaeError(
        f"calibration image {name!r} listed there was not found (looked in {', '.join(str(b) for b in bases)}); "
        "pass --data with the dataset the model was trained on",
        listed_in,
    )


def _listed(folder: Path, data_root: Path) -> list[Path] | None:
    for source in SOURCES:
        listed_in = folder / source
        if not listed_in.is_file():
            continue
        try:
            data = json.loads(listed_in.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ScaeError(f"cannot parse ({err}); restore the file from the run", listed_in) from None
        names = _file_list(data)
        if not names:
            continue
        bases = [data_root, folder]
        if isinstance(data, dict) and isinstance(data.get("data"), str):
            bases.insert(0, Path(data["data"]))
        return [_resolve(name, bases, listed_in) for name in names]
    return None


def _source_run(bundle: Path) -> Path | None:
    """The run dir a bundle was exported from (``manifest.json`` ``source_run``), if it still exists."""
    manifest = bundle / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        source = json.loads(manifest.read_text()).get("source_run")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return Path(source) if isinstance(source, str) and Path(source).is_dir() else None


def calibration_images(bundle: str | Path, data_root: str | Path, override: str | Path | None = None) -> list[Path]:
    """Good calibration images for the baselines' thresholds.

    ``override`` (``--calibration``): a run dir with split.json, or a folder of good images never
    trained on. Otherwise the bundle's own split.json / calibration.json, then the run dir a bundle
    was exported from (manifest ``source_run``).
    """
    bundle = Path(bundle)
    data_root = Path(data_root)
    if override is not None:
        override = Path(override)
        if not override.is_dir():
            raise ScaeError("calibration folder not found; pass a run dir or a folder of good images", override)
        listed = _listed(override, data_root)
        if listed:
            return listed
        images = sorted(p for p in override.iterdir() if is_image_file(p))
        if not images:
            raise ScaeError("neither a run dir (split.json) nor a folder with good images", override)
        return images
    for folder in (bundle, _source_run(bundle)):
        if folder is None:
            continue
        listed = _listed(folder, data_root)
        if listed:
            return listed
    raise ScaeError(
        "no calibration image list (split.json with a 'calibration' list, here or in the bundle's source run); "
        "pass --calibration RUN_DIR (the run the bundle was exported from) or a folder of good images never trained on",
        bundle,
    )
