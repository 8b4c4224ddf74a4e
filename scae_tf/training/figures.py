"""Figures of a trained run dir on a dataset's test split: what the two networks do.

``python -m scae_tf.training.figures RUN_DIR DATA OUT_DIR`` writes
``training_curves.png``, ``reconstructions.png`` (canonical crop / CAE reconstruction / |residual| for a few good and
one image per defect type, defect contour in red) and ``segmentation.png`` (U-Net mask
contour in green, defect contour in red), and prints how much of each defect lies inside
the U-Net object mask (a defect cut out of the mask would be invisible to the CAE).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from scae_tf.artifacts import RunDir
from scae_tf.data.layout import Sample, list_dataset
from scae_tf.errors import ScaeError
from scae_tf.imageio import read_mask, resize
from scae_tf.plotting import subplots
from scae_tf.pose import warp_to_crop
from scae_tf.preprocessing import Preprocessor
from scae_tf.segmentation_targets import classical_object_mask
from scae_tf.training.resumable import StageState, stage_state_path
from scae_tf.training.segmenter import iou


def pick_samples(samples: list[Sample], n_good: int = 3, per_defect: int = 1) -> list[Sample]:
    """The first ``n_good`` good images and the first ``per_defect`` of each defect type (no cherry-picking)."""
    good = [s for s in samples if s.label == 0][:n_good]
    chosen, seen = [], {}
    for s in samples:
        if s.label == 1 and seen.get(s.defect_type, 0) < per_defect:
            chosen.append(s)
            seen[s.defect_type] = seen.get(s.defect_type, 0) + 1
    return good + chosen


class RunView:
    """A run dir applied to single images: work image, mask, crop, reconstruction."""

    def __init__(self, run_dir: Path):
        run = RunDir(run_dir)
        self.backend = run.backend()
        self.pre = Preprocessor(run.preprocess_state())

    def apply(self, sample: Sample) -> dict[str, np.ndarray]:
        prepared = self.pre.prepare_image(self.backend.segment, self.pre.read(sample.path))
        if not prepared.found:
            raise ScaeError(f"{prepared.reason}; no figure for this image", sample.path)
        work, mask, crop, crop_mask, pose = prepared.work, prepared.object_mask, prepared.crop, prepared.crop_mask, prepared.pose
        recon = self.backend.reconstruct(crop)
        defect = np.zeros(work.shape[:2], bool)
        if sample.mask_path is not None:
            defect = resize(read_mask(sample.mask_path), work.shape[:2], "nearest")
        return {
            "work": work,
            "mask": mask,
            "crop": crop,
            "crop_mask": crop_mask,
            "recon": recon,
            "defect": defect,
            "crop_defect": warp_to_crop(defect, pose) if defect.any() else np.zeros(crop.shape[:2], bool),
        }


def save_compact(fig, path: Path, dpi: int = 80, colors: int = 96) -> None:
    """PNG with an adaptive palette: photos and heat maps stay readable at a third of the size."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(colors=colors).save(path, optimize=True)


def _contour(ax, mask: np.ndarray, color: str) -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=0.8)


def reconstruction_figure(views: list[tuple[Sample, dict]], path: Path) -> None:
    fig, axes = subplots(len(views), 3, figsize=(9.6, 1.25 * len(views) + 0.4), squeeze=False)
    for row, (sample, v) in zip(axes, views, strict=True):
        residual = np.abs(v["crop"] - v["recon"])
        row[0].imshow(v["crop"], cmap="gray", vmin=0, vmax=1)
        row[1].imshow(v["recon"], cmap="gray", vmin=0, vmax=1)
        row[2].imshow(residual, cmap="inferno", vmin=0, vmax=0.3)
        _contour(row[2], v["crop_defect"], "cyan")
        row[0].set_ylabel(sample.name.replace("/", "\n"), fontsize=6)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], ("canonical crop", "CAE reconstruction", "|residual| (defect outlined)"), strict=True):
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    save_compact(fig, path)


def segmentation_figure(views: list[tuple[Sample, dict]], path: Path, columns: int = 4) -> None:
    rows = -(-len(views) // columns)
    fig, axes = subplots(rows, columns, figsize=(2.3 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (sample, v) in zip(axes.ravel(), views, strict=False):
        ax.imshow(cv2.resize(v["work"], (256, 256), interpolation=cv2.INTER_AREA), cmap="gray", vmin=0, vmax=1)
        _contour(ax, resize(v["mask"], 256, "nearest"), "lime")
        _contour(ax, resize(v["defect"], 256, "nearest"), "red")
        ax.set_title(sample.name, fontsize=6)
    fig.suptitle("U-Net object mask (green), defect (red outline)", fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.96))
    save_compact(fig, path)


def _true_object_mask(data: Path, sample: Sample, size: int) -> np.ndarray | None:
    path = data / "object_masks" / "test" / sample.defect_type / sample.path.name
    return resize(read_mask(path), size, "nearest") if path.is_file() else None


def segmentation_report(view: RunView, samples: list[Sample], data: Path) -> dict[str, float]:
    """Defect coverage by the U-Net mask and U-Net IoU (vs classical masks, and vs the true
    object masks when the dataset ships them, as synthetic data does) over the test split."""
    coverage, ious, true_ious, classical_true = [], [], [], []
    for sample in samples:
        v = view.apply(sample)
        classical = classical_object_mask(v["work"])
        ious.append(iou(v["mask"], classical))
        truth = _true_object_mask(data, sample, v["work"].shape[0])
        if truth is not None:
            true_ious.append(iou(v["mask"], truth))
            classical_true.append(iou(classical, truth))
        if v["defect"].any():
            coverage.append(float((v["defect"] & v["mask"]).sum() / v["defect"].sum()))
    report = {}
    if true_ious:
        report["test_iou_unet_vs_true"] = float(np.mean(true_ious))
        report["test_iou_classical_vs_true"] = float(np.mean(classical_true))
    return report | {
        "test_iou_unet_vs_classical": float(np.mean(ious)),
        "defect_pixels_inside_mask_mean": float(np.mean(coverage)) if coverage else float("nan"),
        "defect_pixels_inside_mask_min": float(np.min(coverage)) if coverage else float("nan"),
        "defects_fully_inside": int(sum(c >= 0.999 for c in coverage)),
        "defects": len(coverage),
    }


def curves_figure(run_dir: Path, path: Path) -> None:
    """Both stages' loss curves side by side, from the checkpoint states of the run."""
    fig, axes = subplots(1, 2, figsize=(9, 3))
    for ax, stage, title in zip(axes, ("segmenter", "cae"), ("U-Net (BCE + Dice)", "CAE (a(1-MS-SSIM) + (1-a)MSE)"), strict=True):
        history = StageState.load(stage_state_path(RunDir(run_dir).checkpoints, stage)).history
        for key, style in (("loss", "-"), ("val_loss", "--")):
            ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_compact(fig, path, colors=64)


def main(argv: list[str]) -> int:
    run_dir, data, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    view = RunView(run_dir)
    samples = list_dataset(data, "test")
    chosen = pick_samples(samples, n_good=3, per_defect=1)
    views = [(s, view.apply(s)) for s in chosen]
    reconstruction_figure(views, out / "reconstructions.png")
    segmentation_figure(views[:8], out / "segmentation.png")
    curves_figure(run_dir, out / "training_curves.png")
    print(json.dumps(segmentation_report(view, samples, data), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
