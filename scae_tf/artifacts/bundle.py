"""The bundle on disk: manifest format, verification, atomic writing (no TensorFlow).

A bundle is a folder written by ``scae export``::

    manifest.json        format version, precision, model input shapes, sha256 of every file,
                         training config hash, tool versions, parity figures
    segmenter.tflite     U-Net, batch 1
    cae.tflite           CAE, batch 1
    config.json          the training run's full config
    preprocessing.json   learned pre-processing (crop scale, illumination reference)
    calibration.json     calibrated post-processing statistics and threshold

The manifest is the only unhashed file; everything it lists is checked before use. A bundle is
written to a hidden temp folder and renamed into place when complete, so an interrupted export
never leaves a half bundle that an inspection PC could load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scae_tf.artifacts.base import Artifact
from scae_tf.artifacts.names import BUNDLE_FILES, MANIFEST, PRECISIONS, TFLITE_MODELS
from scae_tf.artifacts.run_dir import RunDir
from scae_tf.config import save_json
from scae_tf.errors import ScaeError

if TYPE_CHECKING:
    from scae_tf.backends.litert import LiteBackend

FORMAT_VERSION = 1
REEXPORT = "re-export the bundle with `scae export RUN_DIR --out BUNDLE`"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle(Artifact):
    """A verified bundle folder and its manifest (open it with ``open_bundle``)."""

    path: Path
    manifest: dict[str, Any]
    kind = "bundle"

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})

    def model_file(self, model: str) -> Path:
        """``model``: "segmenter" or "cae"."""
        return self.file(TFLITE_MODELS[model])

    def backend(self, threads: int = 2) -> LiteBackend:
        from scae_tf.backends.litert import LiteBackend

        return LiteBackend.from_models(self.model_file("segmenter"), self.model_file("cae"), threads, self.precision)


def is_bundle(path: str | Path) -> bool:
    """A folder with a manifest; whether it is intact is checked by ``open_bundle``."""
    return (Path(path) / MANIFEST).is_file()


def peek_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest as written, without verifying the bundle (None if absent or unreadable).

    For labels and paths only (precision, source run), never for a model or a threshold."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_source_run(path: str | Path) -> RunDir | None:
    """The run dir a bundle was exported from (manifest ``source_run``), if it still exists."""
    source = (peek_manifest(path) or {}).get("source_run")
    return RunDir(source) if isinstance(source, str) and Path(source).is_dir() else None


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ScaeError("bundle folder not found; pass the folder written by `scae export`", path)
    if not manifest_path.is_file():
        raise ScaeError(f"not a bundle (no {MANIFEST}); {REEXPORT}", path)
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
    manifest_path = path / MANIFEST
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


def check_bundle_target(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier bundle (or an empty folder), and only when asked."""
    if not out.exists():
        return
    if not overwrite:
        raise ScaeError("already exists; choose another --out or pass --force to replace it", out)
    if not out.is_dir() or (any(out.iterdir()) and not is_bundle(out)):
        raise ScaeError(f"exists and is not a bundle (no {MANIFEST}); --force only replaces bundles, choose another --out", out)


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished temp folder to ``out`` (replacing an old bundle only when asked)."""
    if not out.exists():
        tmp.rename(out)
        return
    check_bundle_target(out, overwrite)
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    backup.rmdir()
    out.rename(backup)
    tmp.rename(out)
    shutil.rmtree(backup, ignore_errors=True)


def write_bundle(
    out: Path, models: dict[str, bytes], copies: dict[str, Path], manifest: dict[str, Any], overwrite: bool = False
) -> dict[str, Any]:
    """Write a bundle atomically: models and copied files into a temp folder, hashes into the manifest, rename.

    ``models`` maps "segmenter"/"cae" to flatbuffers, ``copies`` maps bundle file names
    (``names.COPIED_FROM_RUN``) to source files; ``manifest`` gets its ``files`` entry (sha256
    and size of every file) here.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        for name, flatbuffer in models.items():
            (tmp / TFLITE_MODELS[name]).write_bytes(flatbuffer)
        for name, source in copies.items():
            shutil.copyfile(source, tmp / name)
        manifest = {
            **manifest,
            "files": {
                name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size} for name in BUNDLE_FILES
            },
        }
        save_json(manifest, tmp / MANIFEST)
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
