"""What run dirs and bundles share: config, pre-processing state, calibration, a back-end.

The state classes are imported when first loaded, so the file names and the split stay cheap to
import (the command line imports them to build its help).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from scae_tf.artifacts import names
from scae_tf.config import RunConfig, load_config
from scae_tf.errors import ScaeError

if TYPE_CHECKING:
    from scae_tf.backends import Backend
    from scae_tf.calibration import Calibration
    from scae_tf.preprocessing import PreprocessState

FIXES = {
    names.CONFIG: "re-run `scae train` or restore the file",
    names.PREPROCESSING: "re-run `scae train` or restore the file",
    names.CALIBRATION: "re-run `scae train` (it calibrates after training) or restore the file",
}


class Artifact(ABC):
    """A folder the inspection path can be loaded from; subclasses know their models."""

    kind = "folder"
    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config_file(self) -> Path:
        return self.file(names.CONFIG)

    @property
    def preprocessing_file(self) -> Path:
        return self.file(names.PREPROCESSING)

    @property
    def calibration_file(self) -> Path:
        return self.file(names.CALIBRATION)

    def require(self, name: str) -> Path:
        """``self.file(name)``, or one clear error naming the missing file and the fix."""
        path = self.file(name)
        if not path.is_file():
            fix = FIXES.get(name, "re-run the command that wrote this folder")
            raise ScaeError(f"this {self.kind} has no {name}; {fix}", self.path)
        return path

    def check_inspectable(self) -> None:
        """Config, pre-processing state and calibration are all there (one error naming every missing file)."""
        missing = [name for name in (names.PREPROCESSING, names.CALIBRATION, names.CONFIG) if not self.file(name).is_file()]
        if missing:
            raise ScaeError(f"this {self.kind} has no {', '.join(missing)}; {FIXES[missing[0]]}", self.path)

    def config(self) -> RunConfig:
        return load_config(self.require(names.CONFIG))

    def preprocess_state(self) -> PreprocessState:
        from scae_tf.preprocessing import PreprocessState

        return PreprocessState.load(self.require(names.PREPROCESSING))

    def calibration(self, config: RunConfig | None = None, state: PreprocessState | None = None) -> Calibration:
        """The calibration, checked against the config and crop size it will be used with."""
        from scae_tf.calibration import Calibration

        path = self.require(names.CALIBRATION)
        calibration = Calibration.load(path)
        config = config or self.config()
        state = state or self.preprocess_state()
        calibration.check_compatible(config.postprocess, (state.config.crop_height, state.config.crop_width), path)
        return calibration

    @abstractmethod
    def backend(self, threads: int = 2) -> Backend:
        """The models of this folder behind the back-end contract, ``threads`` per model where it applies."""
