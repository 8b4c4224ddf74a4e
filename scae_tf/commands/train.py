"""``scae train``: train the U-Net segmenter and the CAE-MSSIM on good images into a run dir."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "train the U-Net segmenter and the CAE-MSSIM on good images into a run dir"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae train` is not available yet (issue #5)")
