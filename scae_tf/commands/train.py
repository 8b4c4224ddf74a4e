"""``scae train``: train the U-Net segmenter and the CAE-MSSIM on good images into a run dir."""

from __future__ import annotations

import argparse

HELP = "train the U-Net segmenter and the CAE-MSSIM on good images into a run dir"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder: MVTec layout (train/good) or plain (good/)")
    parser.add_argument("--out", required=True, help="run dir to create, or to resume when it exists")
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="S",
        help="work size S (default 512); segmenter and crop sizes keep their ratio to it "
        "(S=256: seg 128, crop 64x192)",
    )
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="CAE epochs (default 60); also caps the segmenter epochs")
    parser.add_argument("--config", default=None, metavar="FILE", help="JSON/YAML file with any subset of the run config")
    parser.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default=None,
        help="tf.distribute strategy (default: one device; mirrored: all local GPUs/devices)",
    )


def run(args: argparse.Namespace) -> int:
    from scae_tf.training import resolve_config, train_run

    config = resolve_config(args.config, args.image_size, args.epochs, args.strategy)
    summary = train_run(args.data, args.out, config)
    seg, cae = summary["segmenter"], summary["cae"]
    print(
        f"trained {args.out} in {summary['seconds']:.0f} s: U-Net val IoU {seg['val_iou_vs_classical']:.3f} "
        f"(vs classical masks), CAE best val loss {cae['best_val_loss']:.4f} (epoch {cae['best_epoch']})"
    )
    return 0
