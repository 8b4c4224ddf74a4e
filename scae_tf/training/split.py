"""Seeded split of train/good into training and validation images (``split.json``).

The validation slice drives early stopping and is the calibration set: the threshold is set
on good images the models never trained on. The split is saved so a resumed run, the
evaluation and the calibration use exactly the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scae_tf.config import save_json
from scae_tf.errors import ScaeError

SPLIT_VERSION = 1
MIN_VALIDATION = 4  # calibration needs a few good images the models never saw


def make_split(paths: list[Path], validation_fraction: float, seed: int) -> dict[str, list[str]]:
    """Shuffle ``paths`` with ``seed`` and keep ``validation_fraction`` of them (at least
    ``MIN_VALIDATION``) aside."""
    if not 0.0 < validation_fraction < 1.0:
        raise ScaeError(f"training.validation_fraction must be in (0, 1), got {validation_fraction}")
    names = sorted(str(p) for p in paths)
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = min(len(names) // 2, max(MIN_VALIDATION, int(round(validation_fraction * len(names)))))
    validation = sorted(names[i] for i in order[:n_val])
    train = sorted(names[i] for i in order[n_val:])
    return {"train": train, "validation": validation, "calibration": list(validation)}


def save_split(split: dict[str, list[str]], path: Path) -> None:
    data = {"version": SPLIT_VERSION, **split}
    save_json(data, path, sort_keys=False)


def load_split(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(Path(path).read_text())
        return {key: list(data[key]) for key in ("train", "validation", "calibration")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ScaeError(f"corrupt split file ({err}); delete the run dir or use a new --out", path) from None
