"""The run dir on disk (written by ``scae train``): Keras models, split, state, calibration.

Training writes through ``RunDir`` (paths and the split); export, evaluation, benchmarks and
the pipeline read through it. Loading the models needs TensorFlow; everything else does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scae_tf.artifacts import names
from scae_tf.artifacts.base import Artifact
from scae_tf.artifacts.split import Split, resolve_image
from scae_tf.errors import ScaeError

if TYPE_CHECKING:
    from scae_tf.backends.keras_backend import KerasBackend

SPLIT_PARTS = ("train", "validation")


class RunDir(Artifact):
    kind = "run dir"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def split_file(self) -> Path:
        return self.file(names.SPLIT)

    @property
    def checkpoints(self) -> Path:
        return self.file(names.CHECKPOINTS)

    @property
    def train_log(self) -> Path:
        return self.file(names.TRAIN_LOG)

    @property
    def summary_file(self) -> Path:
        return self.file(names.TRAINING_SUMMARY)

    def curves_file(self, stage: str) -> Path:
        return self.file(names.curves_png(stage))

    def model_file(self, model: str) -> Path:
        """``model``: "segmenter" or "cae"."""
        return self.file(names.KERAS_MODELS[model])

    @property
    def finished(self) -> bool:
        """``scae train`` ran to the end (it writes the summary last)."""
        return self.summary_file.is_file()

    def _missing(self) -> list[str]:
        return [name for name in names.RUN_FILES if not self.file(name).is_file()]

    @property
    def complete(self) -> bool:
        """Every file export and evaluation need is there."""
        return not self._missing()

    def check_complete(self) -> None:
        """Every file export needs is there (one error listing what is missing)."""
        if not self.path.is_dir():
            raise ScaeError("run dir not found; pass the folder written by `scae train`", self.path)
        missing = self._missing()
        if missing:
            raise ScaeError(
                f"not a finished training run: missing {', '.join(missing)}; run `scae train` to completion first", self.path
            )

    def split(self) -> Split:
        return Split.load(self.split_file)

    def write_split(self, split: Split) -> None:
        split.save(self.split_file)

    def split_images(self, part: str, data_root: str | Path | None = None, *, must_exist: bool = False) -> list[Path]:
        """Image paths of one part of the split ("train" or "validation": the held-out good images).

        Each listed path is looked up as written, then under the run dir and ``data_root`` (the
        dataset, possibly moved since training). A path found nowhere is returned as written
        (the reader reports it), or is an error with ``must_exist``.
        """
        if part not in SPLIT_PARTS:
            raise ValueError(f"split part must be one of {SPLIT_PARTS}, got {part!r}")
        bases = [Path(data_root)] if data_root is not None else []
        bases.append(self.path)
        images = []
        for name in getattr(self.split(), part):
            found = resolve_image(name, bases)
            if found is None and must_exist:
                raise ScaeError(
                    f"image {name!r} listed there was not found (looked in {', '.join(str(b) for b in bases)}); "
                    "pass --data with the dataset the model was trained on",
                    self.split_file,
                )
            images.append(found or Path(name))
        return images

    def keras_models(self) -> dict[str, Any]:
        """The trained Keras models by name ("segmenter", "cae"); needs TensorFlow."""
        from scae_tf.backends.keras_backend import load_keras_model

        if not self.path.is_dir():
            raise ScaeError("run dir not found; train one with `scae train`", self.path)
        return {model: load_keras_model(self.model_file(model)) for model in names.KERAS_MODELS}

    def backend(self, threads: int = 2) -> KerasBackend:
        """The Keras back-end (needs TensorFlow). ``threads`` is set process-wide by the caller
        (``tf.config.threading``), not per model."""
        from scae_tf.backends.keras_backend import KerasBackend

        models = self.keras_models()
        return KerasBackend(models["segmenter"], models["cae"])
