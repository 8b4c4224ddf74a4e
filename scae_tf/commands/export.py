"""``scae export``: export a run dir to a self-checking TFLite bundle (fp32, fp16 or int8)."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "export a run dir to a self-checking TFLite bundle (fp32, fp16 or int8)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae export` is not available yet (issue #3)")
