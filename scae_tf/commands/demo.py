"""``scae demo``: the whole tour on synthetic data: synth, train, export, evaluate, inspect, bench."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "the whole tour on synthetic data: synth, train, export, evaluate, inspect, bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae demo` is not available yet (issue #7)")
