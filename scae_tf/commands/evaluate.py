"""``scae evaluate``: evaluate a run dir or bundle on test/ and write metrics.json, plots and report.html."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scae_tf.data.layout import GOOD
from scae_tf.errors import ScaeError

log = logging.getLogger("scae")

HELP = "evaluate a run dir or bundle on test/ and write metrics.json, plots and report.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="run dir (scae train) or exported bundle (scae export)")
    parser.add_argument("--data", required=True, help="dataset folder with test/ (MVTec layout) or test_good/ + defective/")
    parser.add_argument("--out", required=True, help="report folder: metrics.json, report.html, *.png")
    parser.add_argument(
        "--no-brightness-control", dest="brightness_control", action="store_false",
        help="skip the second pass with every test image scaled to the training background level",
    )
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="evaluate N test images spread evenly over the defect types (quick look)")
    parser.add_argument(
        "--calibration", default=None, metavar="DIR",
        help="good images for the baselines' thresholds: a run dir (its held-out images) or a folder "
        "of good images never trained on; default: the run's held-out images (for a bundle: its source run's)",
    )
    parser.add_argument("--pixel-size", type=int, default=256, metavar="PX",
                        help="side at which pixel AUROC / AUPRO are computed (maps and masks resized)")
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads (bundles)")


def run(args: argparse.Namespace) -> int:
    from scae_tf.evaluation import calibration_images, evaluate
    from scae_tf.evaluation.verdict import verdict_counts, verdict_sentences
    from scae_tf.pipeline import load_pipeline
    from scae_tf.quiet import c_stderr_captured

    if args.limit is not None and args.limit < 2:
        raise ScaeError(f"--limit must be at least 2 (one good and one defective image), got {args.limit}")
    if args.pixel_size < 16:
        raise ScaeError(f"--pixel-size must be at least 16, got {args.pixel_size}")
    if args.calibration is None:
        check_same_dataset(Path(args.bundle), Path(args.data))
    calibration = calibration_images(args.bundle, args.data, args.calibration)
    with c_stderr_captured():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
        pipeline = load_pipeline(args.bundle, threads=args.threads)
    evaluation = evaluate(
        pipeline,
        args.data,
        args.out,
        calibration,
        brightness_control=args.brightness_control,
        limit=args.limit,
        pixel_size=args.pixel_size,
        source=str(args.bundle),
    )
    m = evaluation.metrics
    print(verdict_sentences(verdict_counts(m))[0])
    skipped = f", {len(m['skipped'])} unreadable skipped" if m.get("skipped") else ""
    print(f"{m['n_images']} images ({m['n_good']} good, {m['n_defective']} defective{skipped}): "
          f"image AUROC {_fmt(m['image_auroc'])}, pixel AUROC {_fmt(m['pixel_auroc'])}, AUPRO {_fmt(m['aupro'])}, "
          f"accuracy {_fmt(m['accuracy'])} at threshold {_fmt(m['threshold'])}")
    for name, method in m["methods"].items():
        controlled = m.get("brightness_controlled", {}).get("methods", {}).get(name, {})
        print(f"  {name:22s} image AUROC {_fmt(method['image_auroc'])}  (brightness-controlled "
              f"{_fmt(controlled.get('image_auroc'))})  f1 {_fmt(method['f1'])}")
    for stat, s in m["shortcut"]["statistics"].items():
        controlled = m.get("brightness_controlled", {}).get("shortcut", {}).get("statistics", {}).get(stat, {})
        print(f"  shortcut {stat:15s} AUROC {_fmt(s['auroc_either_direction'])} ({s['direction']}; "
              f"brightness-controlled {_fmt(controlled.get('auroc_either_direction'))})")
    print(f"wrote {args.out}/metrics.json and {args.out}/report.html")
    return 0


def trained_dataset(model: Path) -> tuple[Path | None, list[str]]:
    """(dataset folder the run was trained on, its held-out image list) for a run dir or a bundle's
    source run; the folder is None when the split's paths do not name one (or there is no run)."""
    from scae_tf.artifacts import RunDir, is_bundle, manifest_source_run

    run = manifest_source_run(model) if is_bundle(model) else RunDir(model)
    if run is None or not run.split_file.is_file():
        return None, []
    split = run.split()
    roots = {_dataset_root(Path(name)) for name in [*split.train, *split.validation]}
    root = roots.pop() if len(roots) == 1 else None
    return root, list(split.validation)


def _dataset_root(image: Path) -> Path | None:
    """DATA of DATA/train/good/x.png (MVTec layout) or DATA/good/x.png (plain layout)."""
    if image.parent.name != GOOD:
        return None
    return image.parents[2] if image.parent.parent.name == "train" else image.parents[1]


def check_same_dataset(model: Path, data: Path) -> None:
    """Refuse --data other than the run's dataset, in those words: the baselines' thresholds come from
    the run's held-out good images, which belong to the dataset it was trained on."""
    from scae_tf.artifacts.split import resolve_image

    trained_on, held_out = trained_dataset(model)
    if trained_on is None:
        return
    anyway = ("or pass --calibration with good images of that data never trained on (or the run dir) to "
              "evaluate the model on it anyway")
    if trained_on.is_dir():
        if trained_on.resolve() != data.resolve():
            raise ScaeError(
                f"this run was trained on {trained_on}; --data points at {data}, a different dataset. Pass "
                f"--data {trained_on} to evaluate on the test images of the training data, {anyway}"
            )
        return
    if held_out and all(resolve_image(name, [data]) is None for name in held_out):
        raise ScaeError(
            f"this run was trained on {trained_on}, which is not there any more, and its held-out good images "
            f"are not in --data {data} either. Pass --data with the dataset the model was trained on, {anyway}"
        )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
