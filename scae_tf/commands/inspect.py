"""``scae inspect``: inspect images or folders with a TFLite bundle (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from scae_tf.artifacts import open_bundle
from scae_tf.errors import ScaeError
from scae_tf.pipeline import load_pipeline
from scae_tf.progress import progress
from scae_tf.quiet import c_stderr_captured
from scae_tf.runtime.inspection import (
    Record,
    collect_inputs,
    csv_report,
    exit_code,
    inspect_inputs,
    record_json,
    record_line,
    summary_line,
)

HELP = "inspect images or folders with a TFLite bundle (no TensorFlow needed)"

EPILOG = """\
Folders are searched recursively (sorted; hidden files and non-image files skipped).
Each image gives one line on stdout: a readable summary, or with --json one JSON object
(path, verdict, score, threshold, flagged patches with boxes in image pixels, timings in ms).
Unreadable files, colour images for a gray bundle and other bad inputs are reported on stderr
(and as {"verdict": "error"} lines with --json); the remaining images are still inspected.
Images of another size are resized to the bundle's work size (a warning if the aspect ratio
differs from the training images'). The last line, on stderr, counts the images, the anomalous
ones and those that could not be inspected.

Overlays (--out): an image found in a folder keeps its place under that folder's name
(test/crack/000.png -> OUT/test/crack/000.overlay.png); an image given as a file is named by
its file name, prefixed with its folder when another file has the same name (good_000, crack_000).
--csv FILE writes one row per input (path, verdict, score, threshold, n_flagged, total_ms,
overlay, error, warnings); it appears when the run ends, so it is never half-written.

exit status:
  0  every image is good
  1  at least one image is anomalous (and no errors)
  2  at least one input could not be inspected, or the bundle is invalid
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--bundle", required=True, type=Path, help="bundle folder written by `scae export`")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and/or folders")
    parser.add_argument("--out", type=Path, help="write an overlay PNG per image here (<name>.overlay.png); "
                        "created with its parents")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write one CSV row per image to FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of a readable line")
    parser.add_argument("--threads", type=int, default=2, help="threads per TFLite interpreter (default 2)")
    parser.add_argument("--false-alarm-rate", type=float, default=None, metavar="R",
                        help="re-set the threshold so that this share of good parts is flagged (default: the "
                        "bundle's calibrated target, usually 0.01)")


def run(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise ScaeError(f"--threads must be at least 1, got {args.threads}")
    bundle = open_bundle(args.bundle)
    with c_stderr_captured():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
        pipeline = load_pipeline(args.bundle, threads=args.threads, false_alarm_rate=args.false_alarm_rate)
    images, records = collect_inputs(args.paths)
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ScaeError(f"cannot create the overlay folder ({err.strerror}); choose another --out", args.out) from None
    shape = bundle.manifest.get("input", {})
    with csv_report(args.csv) if args.csv is not None else nullcontext(lambda record: None) as add_row:
        for record in records:  # arguments that are neither an image nor a folder of images
            _emit(record, args.json)
            add_row(record)
        stream = inspect_inputs(
            pipeline,
            images,
            channels=int(shape.get("channels", 1)),
            work_size=int(shape.get("work_size", bundle.config().preprocess.work_size)),
            train_size=shape.get("train_image_size"),
            out_dir=args.out,
        )
        if any(Path(p).is_dir() for p in args.paths):
            stream = progress(stream, desc="inspect", total=len(images))
        for record in stream:
            _emit(record, args.json)
            add_row(record)
            records.append(record)
    print(f"scae inspect: {summary_line(records)}" + (f"; CSV: {args.csv}" if args.csv is not None else ""),
          file=sys.stderr)
    return exit_code(records)


def _emit(record: Record, as_json: bool) -> None:
    for warning in record.warnings:
        print(f"scae inspect: warning: {record.path}: {warning}", file=sys.stderr)
    if record.error is not None:
        print(f"scae inspect: error: {record.error}", file=sys.stderr)
    if as_json:
        print(json.dumps(record_json(record)), flush=True)
    elif record.error is None:
        print(record_line(record), flush=True)
