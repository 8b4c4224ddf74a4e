"""Run dirs and bundles: the only code that knows their file names and formats.

``RunDir`` (``scae train``'s output, Keras models) and ``Bundle`` (``scae export``'s output,
verified TFLite models) both give the config, the pre-processing state, the calibration and
their back-end (``.backend(threads=...)``); ``open_artifact`` decides which one a folder is.
File names live in ``names``, the train/held-out split format in ``split``.
"""

from __future__ import annotations

from pathlib import Path

from scae_tf.artifacts import names
from scae_tf.artifacts.base import Artifact
from scae_tf.artifacts.bundle import (
    FORMAT_VERSION,
    Bundle,
    check_bundle_target,
    is_bundle,
    manifest_source_run,
    open_bundle,
    peek_manifest,
    read_manifest,
    sha256_file,
    write_bundle,
)
from scae_tf.artifacts.names import PRECISIONS
from scae_tf.artifacts.run_dir import RunDir
from scae_tf.artifacts.split import Split
from scae_tf.errors import ScaeError


def open_artifact(path: str | Path) -> RunDir | Bundle:
    """A bundle (a folder with a manifest; every file's sha256 verified here) or a run dir."""
    folder = Path(path)
    if not folder.is_dir():
        raise ScaeError("not a folder; pass a run dir written by `scae train` or a bundle written by `scae export`", folder)
    return open_bundle(folder) if is_bundle(folder) else RunDir(folder)


__all__ = [
    "FORMAT_VERSION",
    "PRECISIONS",
    "Artifact",
    "Bundle",
    "RunDir",
    "Split",
    "check_bundle_target",
    "is_bundle",
    "manifest_source_run",
    "names",
    "open_artifact",
    "open_bundle",
    "peek_manifest",
    "read_manifest",
    "sha256_file",
    "write_bundle",
]
