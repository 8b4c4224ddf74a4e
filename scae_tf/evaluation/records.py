"""What one evaluation measured, shared by the runner (which fills it) and the report and plots
(which draw it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scae_tf.evaluation.patch_figures import PatchCounter
from scae_tf.evaluation.shortcut import STATISTICS
from scae_tf.imageio import resize


@dataclass
class PassRecords:
    """Per-image results of one pass (raw or brightness-controlled) over the test set."""

    pixel_size: int
    scores: dict[str, list[float]] = field(default_factory=dict)
    predicted: dict[str, list[bool]] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    statistics: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in STATISTICS})
    ground_truth: list[np.ndarray] = field(default_factory=list)
    patches: PatchCounter = field(default_factory=PatchCounter)
    timings: dict[str, list[float]] = field(default_factory=dict)
    method_threshold: list[float] = field(default_factory=list)

    def add_method(self, name: str, score: float, predicted: bool, pixel_map: np.ndarray) -> None:
        self.scores.setdefault(name, []).append(float(score))
        self.predicted.setdefault(name, []).append(bool(predicted))
        self.maps.setdefault(name, []).append(self.small(pixel_map))

    def small(self, image_map: np.ndarray) -> np.ndarray:
        return resize(np.asarray(image_map, np.float32), self.pixel_size, "area")


@dataclass
class Thumbnail:
    """A test image, its method map and ground truth at overlay resolution."""

    name: str
    defect_type: str
    image: np.ndarray
    anomaly_map: np.ndarray
    ground_truth: np.ndarray
    object_mask: np.ndarray
    flagged_corners: list[np.ndarray]  # (4, 2) x, y in thumbnail pixels
    score: float
    threshold: float
    anomalous: bool


@dataclass
class Evaluation:
    """Everything ``evaluate`` measured: the metrics dict (metrics.json) and plot inputs."""

    metrics: dict[str, Any]
    labels: np.ndarray
    passes: dict[str, PassRecords]
    thumbnails: list[Thumbnail]
