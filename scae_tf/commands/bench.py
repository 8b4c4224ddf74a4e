"""``scae bench``: measure per-image latency of the inspection path against the 0.6 s target."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "measure per-image latency of the inspection path against the 0.6 s target"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae bench` is not available yet (issue #7)")
