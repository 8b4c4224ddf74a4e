"""The bundle on disk: manifest format and verification (no TensorFlow).

A bundle is a folder written by ``scae export``::

    manifest.json        format version, precision, model input shapes, sha256 of every file,
                         training config hash, tool versions, parity figures
    segmenter.tflite     U-Net, batch 1
    cae.tflite           CAE, batch 1
    config.json          the training run's full config
    preprocessing.json   learned pre-processing (crop scale, illumination reference)
    calibration.json     calibrated post-processing statistics and threshold

The manifest is the only unhashed file; everything it lists is checked before use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scae_tf.config import RunConfig, from_dict, read_mapping
from scae_tf.errors import ScaeError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_FILES = {"segmenter": "segmenter.tflite", "cae": "cae.tflite"}
BUNDLE_FILES = ("segmenter.tflite", "cae.tflite", "config.json", "preprocessing.json", "calibration.json")
PRECISIONS = ("fp32", "fp16", "int8")
REEXPORT = "re-export the bundle with `scae export RUN_DIR --out BUNDLE`"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    def file(self, name: str) -> Path:
        return self.path / name

    def model_file(self, model: str) -> Path:
        return self.path / MODEL_FILES[model]

    def config(self) -> RunConfig:
        return from_dict(RunConfig, read_mapping(self.file("config.json")), where=str(self.file("config.json")))

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_NAME
    if not path.is_dir():
        raise ScaeError("bundle folder not found; pass the folder written by `scae export`", path)
    if not manifest_path.is_file():
        raise ScaeError(f"not a bundle (no {MANIFEST_NAME}); {REEXPORT}", path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScaeError(f"corrupt manifest ({err.__class__.__name__}); {REEXPORT}", manifest_path) from None
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise ScaeError(f"manifest has no format_version; {REEXPORT}", manifest_path)
    return manifest


def open_bundle(path: str | Path) -> Bundle:
    """Open ``path`` after checking the manifest, its format version and every file's sha256."""
    from scae_tf import __version__

    path = Path(path)
    manifest = read_manifest(path)
    manifest_path = path / MANIFEST_NAME
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        raise ScaeError(
            f"bundle format version {version!r} is not supported by scae-tf {__version__} (it reads version "
            f"{FORMAT_VERSION}); {REEXPORT} using this scae-tf version, or install the version that wrote it",
            manifest_path,
        )
    precision = manifest.get("precision")
    if precision not in PRECISIONS:
        raise ScaeError(f"unknown precision {precision!r} (expected one of {PRECISIONS}); {REEXPORT}", manifest_path)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ScaeError(f"manifest lists no files; {REEXPORT}", manifest_path)
    missing_entries = [name for name in BUNDLE_FILES if name not in files]
    if missing_entries:
        raise ScaeError(f"manifest does not list {', '.join(missing_entries)}; {REEXPORT}", manifest_path)
    for name, entry in sorted(files.items()):
        if Path(name).name != name or name in ("", ".", ".."):
            raise ScaeError(f"manifest lists {name!r}, which is not a file inside the bundle; {REEXPORT}", manifest_path)
        _verify_file(path / name, entry)
    return Bundle(path, manifest)


def _verify_file(file: Path, entry: dict[str, Any]) -> None:
    if not file.is_file():
        raise ScaeError(f"file missing from the bundle; {REEXPORT}", file)
    size = file.stat().st_size
    expected_size = entry.get("bytes")
    if expected_size is not None and size != expected_size:
        what = "truncated" if size < expected_size else "larger than exported"
        raise ScaeError(f"file is {what} ({size} bytes, manifest says {expected_size}); {REEXPORT}", file)
    if sha256_file(file) != entry.get("sha256"):
        raise ScaeError(f"sha256 does not match the manifest (file modified or corrupt); {REEXPORT}", file)
