"""The inspection path: image -> verdict, score, flagged patches and anomaly map (no TensorFlow).

``InspectionPipeline`` chains pre-processing (work image, segmentation, canonical crop), the CAE
reconstruction, the residual and the calibrated patch post-processor, for either back-end (Keras
on the training workstation, TFLite on the inspection PC). ``load_pipeline`` opens a run dir or an
exported bundle. Every stage is timed with ``time.perf_counter`` so the latency budget can be
checked per stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scae_tf.artifacts import open_artifact
from scae_tf.backends import Backend
from scae_tf.calibration import Calibration
from scae_tf.config import PostprocessConfig
from scae_tf.pose import Pose, crop_corners_in_image, identity_pose, warp_to_image
from scae_tf.postprocess import FlaggedPatch, PatchTable, PostProcessor
from scae_tf.preprocessing import Prepared, Preprocessor, PreprocessState
from scae_tf.references import needs_reconstruction, part_residual
from scae_tf.timing import STAGES

LEVEL_WARNING = 1.5  # PostprocessResult.level_excess above this: the part is unlike the good ones all over, not in one place


@dataclass
class InspectionResult:
    """One inspected image (contract in docs/architecture.md, plus the crop-space maps evaluation needs)."""

    anomalous: bool
    score: float  # continuous image score, higher = more anomalous (max d over candidates)
    threshold: float  # calibrated threshold on score; anomalous == score > threshold
    anomaly_map: np.ndarray  # float32 (work_size, work_size), image coordinates, 0 off the analysed region (the object grown by postprocess.analysis_dilation) and the missing-material band around it
    object_mask: np.ndarray  # bool (work_size, work_size)
    pose: Pose
    patches: PatchTable
    flagged: list[FlaggedPatch]
    timings: dict[str, float]  # seconds per stage: decode, segment, pose, reconstruct, postprocess, total
    crop: np.ndarray  # canonical crop fed to the CAE
    crop_mask: np.ndarray  # bool, object in the crop
    reconstruction: np.ndarray  # the CAE's; the crop itself where the CAE is not run (a surface judged by texture alone)
    residual: np.ndarray  # residual map in crop coordinates
    crop_anomaly_map: np.ndarray  # anomaly map in crop coordinates
    input_shape: tuple[int, int] = (0, 0)  # (height, width) of the input image
    reason: str | None = None  # why the image was judged without scoring (e.g. "no part found"); None when scored
    warnings: list[str] = field(default_factory=list)  # e.g. out of distribution: unlike the training parts

    @property
    def part_found(self) -> bool:
        return self.reason is None


class InspectionPipeline:
    """Back-end + learned pre-processing + calibration -> ``InspectionResult`` per image.

    Without a calibration the scores are raw neighbour deviations and nothing is flagged
    (threshold = inf): useful to look at maps, not to decide.
    """

    def __init__(
        self,
        backend: Backend,
        state: PreprocessState,
        calibration: Calibration | None,
        config: PostprocessConfig,
    ):
        self.backend = backend
        self.state = state
        self.preprocessor = Preprocessor(state)
        self.calibration = calibration
        self.config = config
        crop_shape = (state.config.crop_height, state.config.crop_width)
        if calibration is not None:
            calibration.check_compatible(config, crop_shape)
            self.postprocessor = calibration.postprocessor()
        else:
            self.postprocessor = PostProcessor(config, crop_shape)

    @property
    def threshold(self) -> float:
        return self.postprocessor.threshold

    def inspect(self, image: np.ndarray, timings: dict[str, float] | None = None) -> InspectionResult:
        """Inspect one float image in [0, 1] (gray or RGB, any size).

        No part found is a verdict, not an error: a missing or displaced part is a defect on a line,
        so the image is anomalous with score inf and ``reason`` says why. An image unlike the training
        parts (area, intensity, position outside the training ranges) is scored and says so in ``warnings``.
        """
        times = {stage: 0.0 for stage in STAGES}
        times.update(timings or {})
        start = time.perf_counter()
        image = np.asarray(image)
        input_shape = (int(image.shape[0]), int(image.shape[1])) if image.ndim >= 2 else (0, 0)
        pre = self.preprocessor

        work = pre.work_image(image)
        prob = self.backend.segment(pre.seg_input(work)) if pre.segments else None
        after_segment = time.perf_counter()
        times["segment"] = after_segment - start

        prepared = pre.prepare(work, prob)
        if not prepared.found:
            return self._no_part(prepared, times, start, input_shape)
        crop, crop_mask, pose, object_mask = prepared.crop, prepared.crop_mask, prepared.pose, prepared.object_mask
        warnings = pre.out_of_distribution(prepared)
        warnings += [w for w in (pre.size_warning(input_shape), pre.channel_warning(image)) if w]
        after_pose = time.perf_counter()
        times["pose"] = after_pose - after_segment

        references = self.calibration.references if self.calibration is not None else None
        colour = self.calibration.colour if self.calibration is not None else None
        config = self.postprocessor.config
        # a surface judged by its texture alone needs no CAE: its "reconstruction" is the crop itself
        reconstruction = pre.reconstruct(self.backend.reconstruct, crop, crop_mask) if needs_reconstruction(config, references) else crop
        after_reconstruct = time.perf_counter()
        times["reconstruct"] = after_reconstruct - after_pose

        # the calibration's settings: a file written before a residual setting existed keeps the value it was made with
        residual = part_residual(crop, reconstruction, config, references, pre.analysis_box(crop_mask), colour=colour)
        decision = self.postprocessor(residual, crop_mask)
        if decision.level_excess > LEVEL_WARNING:
            warnings.append(
                f"out of distribution: the residual over the whole part is {decision.level_excess:.1f}x the highest a good "
                "calibration part showed; the part differs from the training parts all over"
            )
        # the analysed region, not only the object: missing material (a cut tip) shows just outside the mask
        anomaly_map = warp_to_image(decision.pixel_map, pose, work.shape[:2])
        flagged = [
            self._flagged_patch(decision.patches, i, pose, work.shape[:2], input_shape)
            for i in np.flatnonzero(decision.patches.flagged)
        ]
        end = time.perf_counter()
        times["postprocess"] = end - after_reconstruct
        times["total"] = end - start + times["decode"]
        return InspectionResult(
            anomalous=decision.anomalous,
            score=decision.score,
            threshold=decision.threshold,
            anomaly_map=anomaly_map.astype(np.float32),
            object_mask=object_mask,
            pose=pose,
            patches=decision.patches,
            flagged=flagged,
            timings=times,
            crop=crop,
            crop_mask=crop_mask,
            reconstruction=reconstruction,
            residual=residual,
            crop_anomaly_map=decision.pixel_map,
            input_shape=input_shape,
            warnings=warnings,
        )

    def _no_part(self, prepared: Prepared, times: dict[str, float], start: float, input_shape: tuple[int, int]) -> InspectionResult:
        """The verdict for an image without a usable part: anomalous, score inf, empty maps."""
        work_shape = prepared.work.shape[:2]
        crop_shape = self.preprocessor.crop_size
        pose = identity_pose(work_shape, crop_shape)
        empty = np.zeros(crop_shape, np.float32)
        channels = prepared.work.shape[2:] if prepared.work.ndim == 3 else ()
        crop = np.zeros((*crop_shape, *channels), np.float32)
        end = time.perf_counter()
        times["total"] = end - start + times["decode"]
        return InspectionResult(
            anomalous=True,
            score=float("inf"),
            threshold=self.threshold,
            anomaly_map=np.zeros(work_shape, np.float32),
            object_mask=prepared.object_mask,
            pose=pose,
            patches=self.postprocessor(empty, np.zeros(crop_shape, bool)).patches,
            flagged=[],
            timings=times,
            crop=crop,
            crop_mask=np.zeros(crop_shape, bool),
            reconstruction=crop.copy(),
            residual=empty,
            crop_anomaly_map=empty.copy(),
            input_shape=input_shape,
            reason=prepared.reason,
        )

    def inspect_path(self, path: str | Path) -> InspectionResult:
        """Decode ``path`` (timed as ``decode``) and inspect it."""
        start = time.perf_counter()
        image = self.preprocessor.read(path)
        decode = time.perf_counter() - start
        return self.inspect(image, {"decode": decode})

    @staticmethod
    def _flagged_patch(
        patches: PatchTable, index: int, pose: Pose, work_shape: tuple[int, ...], input_shape: tuple[int, int]
    ) -> FlaggedPatch:
        """Map a crop box through the pose (crop -> work px) and the work resize (work -> input px)."""
        box_crop = tuple(int(v) for v in patches.boxes[index])
        corners = crop_corners_in_image(box_crop, pose).astype(np.float64)
        # Pixel centres at integers on both sides: x_in + 0.5 = (x_work + 0.5) * W_in / W_work.
        scale = np.array([input_shape[1] / work_shape[1], input_shape[0] / work_shape[0]])
        corners = (corners + 0.5) * scale - 0.5
        x0 = max(0, math.floor(corners[:, 0].min()))
        y0 = max(0, math.floor(corners[:, 1].min()))
        x1 = min(input_shape[1], math.ceil(corners[:, 0].max()) + 1)
        y1 = min(input_shape[0], math.ceil(corners[:, 1].max()) + 1)
        return FlaggedPatch(
            box_crop=box_crop,  # type: ignore[arg-type]
            score=float(patches.normalised[index]),
            zone=int(patches.zones[index]),
            corners=corners.astype(np.float32),
            box=(x0, y0, x1, y1),
        )


def load_pipeline(path: str | Path, threads: int = 2, false_alarm_rate: float | None = None) -> InspectionPipeline:
    """Open a run dir (Keras back-end, needs TensorFlow) or a bundle (TFLite, hashes verified first).

    ``false_alarm_rate``: re-set the threshold for this target instead of the one calibrated at training.
    """
    artifact = open_artifact(path)
    artifact.check_inspectable()
    config, state = artifact.config(), artifact.preprocess_state()
    calibration = artifact.calibration(config, state)
    if false_alarm_rate is not None and calibration is not None:
        calibration = calibration.with_false_alarm_rate(false_alarm_rate)
    return InspectionPipeline(artifact.backend(threads), state, calibration, config.postprocess)
