"""The split of a run's good training images (``split.json``): one writer, one reader.

``train`` fit the models; ``validation`` were held out, never trained on. The held-out images
stop training early, calibrate the threshold (at training, at int8 export, for the evaluation
baselines) and measure export parity, so the same list serves every "good images the models
never saw" need. The split is saved so a resumed run, the export and the evaluation use
exactly the same files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scae_tf.config import save_json
from scae_tf.errors import ScaeError

SPLIT_VERSION = 2  # 1 stored the held-out list twice, as "validation" and "calibration"
MIN_VALIDATION = 4  # calibration needs a few good images the models never saw


@dataclass(frozen=True)
class Split:
    train: list[str]
    validation: list[str]

    @classmethod
    def make(cls, paths: Sequence[str | Path], validation_fraction: float, seed: int) -> Split:
        """Shuffle ``paths`` with ``seed`` and hold ``validation_fraction`` of them (at least
        ``MIN_VALIDATION``, at most half) out of training."""
        if not 0.0 < validation_fraction < 1.0:
            raise ScaeError(f"training.validation_fraction must be in (0, 1), got {validation_fraction}")
        names = sorted(str(p) for p in paths)
        order = np.random.default_rng(seed).permutation(len(names))
        n_val = min(len(names) // 2, max(MIN_VALIDATION, int(round(validation_fraction * len(names)))))
        return cls(train=sorted(names[i] for i in order[n_val:]), validation=sorted(names[i] for i in order[:n_val]))

    def to_dict(self) -> dict[str, Any]:
        return {"version": SPLIT_VERSION, "train": list(self.train), "validation": list(self.validation)}

    def save(self, path: str | Path) -> None:
        save_json(self.to_dict(), path, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> Split:
        """Version 2, or version 1 / unversioned files (held-out list under "validation" or "calibration")."""
        if not isinstance(data, dict):
            raise ScaeError("corrupt split file (not a JSON object); restore it or re-run `scae train` with a new --out", where)
        version = data.get("version", 1)
        if version not in (1, SPLIT_VERSION):
            raise ScaeError(
                f"split format version {version!r} is newer than this scae-tf reads ({SPLIT_VERSION}); upgrade scae-tf", where
            )
        held_out = data.get("validation") or data.get("calibration") or []
        parts = {"train": data.get("train") or [], "validation": held_out}
        for part, names in parts.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ScaeError(
                    f"corrupt split file: {part!r} must be a list of image paths; restore it or re-run `scae train` "
                    "with a new --out",
                    where,
                )
        return cls(train=list(parts["train"]), validation=list(parts["validation"]))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ScaeError("no split file; pass a run dir written by `scae train`", path) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ScaeError(
                f"corrupt split file ({err.__class__.__name__}); restore it or re-run `scae train` with a new --out", path
            ) from None
        return cls.from_dict(data, path)


def resolve_image(name: str, bases: Sequence[Path]) -> Path | None:
    """Where a listed image is now: as written (absolute, or relative to the folder ``scae train``
    ran in), else under one of ``bases`` (the run dir, the dataset root, its train/good or good folder).
    Under a base, the longest tail of the listed path is tried first, so a moved MVTec 3D-AD category's
    train/good/rgb/000.png and validation/good/rgb/000.png stay apart."""
    path = Path(name)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.anchor else path.parts
    tails = [Path(*parts[-count:]) for count in range(min(4, len(parts)), 1, -1)]
    for base in bases:
        for candidate in (base / path, *(base / tail for tail in tails), base / "train" / "good" / path.name, base / "good" / path.name):
            if candidate.is_file():
                return candidate
    return None
