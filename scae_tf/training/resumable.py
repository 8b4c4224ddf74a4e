"""Resumable, NaN-guarded ``model.fit`` for one training stage (segmenter or CAE).

Every epoch the full model (weights and optimizer state) is saved to
``checkpoints/<stage>_last.keras`` and the epoch counter, history and early-stopping state to
``checkpoints/<stage>_state.json``, both atomically; the best epoch by validation loss is kept
as ``<stage>_best.keras``. Rerunning the same command loads the last checkpoint and continues
with ``initial_epoch`` so an interrupted run resumes rather than restarts. A non-finite loss
stops training before that epoch is saved: the last good checkpoint stays and a
``ScaeError`` says what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from scae_tf.config import save_json
from scae_tf.errors import ScaeError

log = logging.getLogger(__name__)


@dataclass
class StageState:
    epoch: int = 0  # epochs completed
    history: dict[str, list[float]] = field(default_factory=dict)
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    done: bool = False
    seconds: float = 0.0

    @classmethod
    def load(cls, path: Path) -> StageState:
        if not path.is_file():
            return cls()
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise ScaeError(f"corrupt training state ({err}); delete the run dir or use a new --out", path) from None

    def save(self, path: Path) -> None:
        save_json(self.__dict__, path, sort_keys=False)


def stage_state_path(folder: Path, stage: str) -> Path:
    """A stage's epoch count, history and early-stopping state, in the run's checkpoints folder."""
    return folder / f"{stage}_state.json"


def repeats(n_items: int, batch_size: int, min_steps: int) -> int:
    """Passes over the data per epoch so that an epoch has at least ``min_steps`` batches
    (small datasets would otherwise take many near-empty epochs to learn anything)."""
    steps = -(-n_items // batch_size)
    return max(1, -(-min_steps // steps))


def save_model_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


class StageCheckpoint(keras.callbacks.Callback):
    """Checkpoint, early stopping, NaN guard and one log line per epoch, in one place so
    their order is fixed: a NaN epoch is never saved and never counted."""

    def __init__(self, stage: str, folder: Path, state: StageState, patience: int, total_epochs: int):
        super().__init__()
        self.stage = stage
        self.folder = folder
        self.state = state
        self.patience = patience
        self.total_epochs = total_epochs
        self.nan_epoch: int | None = None
        self._epoch_start = 0.0

    @property
    def last_path(self) -> Path:
        return self.folder / f"{self.stage}_last.keras"

    @property
    def best_path(self) -> Path:
        return self.folder / f"{self.stage}_best.keras"

    @property
    def state_path(self) -> Path:
        return stage_state_path(self.folder, self.stage)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_epoch = self.state.epoch + 1
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        val = logs.get("val_loss", logs.get("loss", math.nan))
        if self.nan_epoch is not None or not all(math.isfinite(v) for v in logs.values()):
            self.nan_epoch = epoch + 1
            self.model.stop_training = True
            return
        state = self.state
        state.epoch = epoch + 1
        state.seconds += time.time() - self._epoch_start
        for key, value in logs.items():
            state.history.setdefault(key, []).append(value)
        improved = val < state.best
        if improved:
            state.best, state.best_epoch, state.wait = val, epoch + 1, 0
            save_model_atomic(self.model, self.best_path)
        else:
            state.wait += 1
        save_model_atomic(self.model, self.last_path)
        state.save(self.state_path)
        shown = "  ".join(f"{k} {v:.5f}" for k, v in logs.items())
        log.info(
            "%s epoch %d/%d  %s  (%.1fs)%s",
            self.stage,
            epoch + 1,
            self.total_epochs,
            shown,
            time.time() - self._epoch_start,
            "  *best" if improved else "",
        )
        if state.wait >= self.patience:
            log.info("%s: early stop, no val_loss improvement for %d epochs (best epoch %d)", self.stage, self.patience, state.best_epoch)
            self.model.stop_training = True


def fit_resumable(
    stage: str,
    folder: Path,
    strategy: tf.distribute.Strategy,
    build: Callable[[], keras.Model],
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    epochs: int,
    patience: int,
    learning_rate: float,
    verbose: int,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, StageState]:
    """Train (or resume, or skip when already done) one stage; returns the best model and its state.

    ``build`` must return a compiled model; it is called inside ``strategy.scope()``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state_path = stage_state_path(folder, stage)
    state = StageState.load(state_path)
    checkpoint = StageCheckpoint(stage, folder, state, patience, epochs)
    with strategy.scope():
        if state.epoch > 0 and checkpoint.last_path.is_file():
            model = keras.models.load_model(checkpoint.last_path, compile=True)
            model.optimizer.learning_rate.assign(learning_rate)
            if state.epoch < epochs and state.wait < patience:
                log.info("%s: resuming from %s after epoch %d", stage, checkpoint.last_path, state.epoch)
        else:
            state = StageState()
            checkpoint.state = state
            model = build()
    if state.epoch < epochs and state.wait < patience:  # also extends a finished stage given more epochs
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            initial_epoch=state.epoch,
            verbose=verbose,
            shuffle=False,  # the datasets shuffle themselves
            callbacks=[checkpoint, *(callbacks or [])],
        )
        if checkpoint.nan_epoch is not None:
            kept = (
                f"the last good checkpoint {checkpoint.last_path} (epoch {state.epoch}) is kept"
                if state.epoch > 0
                else "no epoch finished, so there is no checkpoint"
            )
            raise ScaeError(
                f"{stage} training loss became NaN/inf in epoch {checkpoint.nan_epoch}; {kept}. "
                "Lower training.learning_rate in a --config file and rerun the same command to resume, "
                "or check the training images",
                folder,
            )
    if checkpoint.best_path.is_file():
        best = keras.models.load_model(checkpoint.best_path, compile=False)
        model.set_weights(best.get_weights())
    state.done = True
    state.save(state_path)
    return model, state


