"""``scae train``: train the U-Net segmenter and the CAE-MSSIM on good images into a run dir."""

from __future__ import annotations

import argparse
import dataclasses

from scae_tf.errors import ScaeError

HELP = "train the U-Net segmenter and the CAE-MSSIM on good images into a run dir"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder: MVTec layout (train/good) or plain (good/)")
    parser.add_argument("--out", required=True, help="run dir to create, or to resume when it exists")
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="S",
        help="work size S = short side of the work image (default: 512, or the images' median short side when smaller); segmenter and crop sizes keep their ratio to it "
        "(S=256: seg 128, crop 64x192)",
    )
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="CAE epochs (default 60); also caps the segmenter epochs")
    parser.add_argument("--config", default=None, metavar="FILE", help="JSON/YAML file with any subset of the run config")
    parser.add_argument(
        "--kind",
        choices=("elongated", "compact", "surface"),
        default=None,
        help="part kind (default: chosen from the good images and logged): elongated = long parts with a head, anywhere at any "
        "angle (canonical pose, head left); compact = rigid parts (and long ones whose ends look alike) aligned by translation, turned to one "
        "orientation by their appearance when they lie at any angle (by the mask's axis when that is not well defined), not moved when "
        "fixtured; surface = the part fills the frame (no segmentation, tiles)",
    )
    parser.add_argument(
        "--fixtured",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compact parts: always in the same place and angle (not moved) or not (default: from the images)",
    )
    parser.add_argument(
        "--false-alarm-rate",
        type=float,
        default=None,
        metavar="R",
        help="share of good parts the calibrated threshold may flag (default 0.01); lower = fewer false alarms, fewer defects caught",
    )
    parser.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default=None,
        help="tf.distribute strategy (default: one device; mirrored: all local GPUs/devices)",
    )


def run(args: argparse.Namespace) -> int:
    from scae_tf.data.layout import list_dataset

    if args.false_alarm_rate is not None and not 0.0 < args.false_alarm_rate < 0.5:
        raise ScaeError(f"--false-alarm-rate must be in (0, 0.5), got {args.false_alarm_rate}")
    # A wrong --data fails here, in well under a second; importing TensorFlow below takes seconds.
    list_dataset(args.data, "train")
    from scae_tf.training import resolve_config, train_run

    config = resolve_config(args.config, args.image_size, args.epochs, args.strategy, args.kind, args.fixtured)
    if args.false_alarm_rate is not None:
        postprocess = dataclasses.replace(config.postprocess, target_false_alarm_rate=args.false_alarm_rate)
        config = dataclasses.replace(config, postprocess=postprocess)
    summary = train_run(args.data, args.out, config)
    seg, cae, kind = summary["segmenter"], summary["cae"], summary["part_kind"]
    print(
        f"trained {args.out} in {summary['seconds']:.0f} s: {kind['kind']} part (alignment {kind['alignment']}), "
        f"U-Net val IoU {seg['val_iou_vs_classical']:.3f} (vs classical masks), CAE best val loss "
        f"{cae['best_val_loss']:.4f} (epoch {cae['best_epoch']})"
    )
    if summary["skipped_count"]:
        print(f"skipped {summary['skipped_count']} image(s) (see train.log): " + ", ".join(f"{k} {len(v)}" for k, v in summary["skipped"].items()))
    return 0
