"""``scae inspect``: inspect images or folders with a TFLite bundle (no TensorFlow needed)."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "inspect images or folders with a TFLite bundle (no TensorFlow needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae inspect` is not available yet (issue #3)")
