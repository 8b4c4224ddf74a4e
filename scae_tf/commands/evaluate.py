"""``scae evaluate``: evaluate a run dir or bundle on test/ and write metrics.json, plots and report.html."""

from __future__ import annotations

import argparse

from scae_tf.errors import ScaeError

HELP = "evaluate a run dir or bundle on test/ and write metrics.json, plots and report.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise ScaeError("`scae evaluate` is not available yet (issue #6)")
