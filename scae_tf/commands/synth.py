"""``scae synth``: write the embedded synthetic screw dataset (MVTec layout, subtle defects with masks)."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "write the embedded synthetic screw dataset (MVTec layout, subtle defects with masks)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae synth` is not available yet (issue #2)")
