"""``scae export``: export a run dir to a self-checking TFLite bundle (fp32, fp16 or int8)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from scae_tf.artifacts.names import PRECISIONS, TFLITE_MODELS

HELP = "export a run dir to a self-checking TFLite bundle (fp32, fp16 or int8)"

EPILOG = """\
Both models are converted with a fixed batch of 1. int8 is full-integer quantisation (int8
weights, activations, input and output; activation ranges from the run's good training images).
After conversion the TFLite models are compared with Keras on the held-out (validation) images
and the figures are stored in the bundle's manifest. int8 bundles are
recalibrated on the int8 models (same good calibration images as training), because
quantisation noise changes the residual statistics the threshold is set on.
The bundle is written to a temporary folder and renamed at the end: a failed export leaves nothing.
"""

log = logging.getLogger("scae")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run dir written by `scae train`")
    parser.add_argument("--out", required=True, type=Path, metavar="BUNDLE", help="bundle folder to create")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="default fp32")
    parser.add_argument("--representative-images", type=int, default=64, metavar="N",
                        help="good training images that set the int8 activation ranges (default 64)")
    parser.add_argument("--parity-images", type=int, default=8, metavar="N",
                        help="validation images for the TFLite-vs-Keras parity check (default 8)")
    parser.add_argument("--recalibrate", action=argparse.BooleanOptionalAction, default=None,
                        help="calibrate the post-processor on the TFLite models instead of copying the run's "
                        "Keras calibration (default: on for int8, off for fp32/fp16)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle at --out")


def run(args: argparse.Namespace) -> int:
    from scae_tf.exporting import export_bundle
    from scae_tf.quiet import c_stderr_captured

    with c_stderr_captured():  # the converter's and LiteRT's own prints
        manifest = export_bundle(
            args.run_dir,
            args.out,
            args.precision,
            representative_images=args.representative_images,
            parity_images=args.parity_images,
            overwrite=args.force,
            recalibrate_on_tflite=args.recalibrate,
        )
    sizes = {name: entry["bytes"] for name, entry in manifest["files"].items() if name in TFLITE_MODELS.values()}
    print(json.dumps({"bundle": str(args.out), "precision": manifest["precision"], "bytes": sizes,
                      "calibration": manifest["calibration"], "parity": manifest["parity"]}, indent=2))
    return 0
