"""``scae demo``: the whole tour on synthetic data: synth, train, export, evaluate, inspect, bench."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "the whole tour on synthetic data: synth, train, export, evaluate, inspect, bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="folder for every result of the tour (default: %(default)s)"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="tiny data and 1-2 epochs: checks that every stage runs (about a minute), the figures mean nothing",
    )


def run(args: argparse.Namespace) -> int:
    from scae_tf.demo import format_summary, run_demo

    summary = run_demo(args.out, fast=args.fast)
    print(format_summary(summary))
    return 0
