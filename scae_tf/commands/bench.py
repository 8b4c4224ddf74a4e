"""``scae bench``: measure per-image latency of the inspection path against the 0.6 s target.

The measuring code is ``scae_tf.latency``; this module only wires it into the CLI.
"""

from __future__ import annotations

import argparse

HELP = "measure per-image latency of the inspection path against the 0.6 s target"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from scae_tf.latency import add_arguments as add_latency_arguments

    add_latency_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from scae_tf.latency import run_from_args

    return run_from_args(args)
