"""The ``scae`` command line.

Each sub-command lives in ``scae_tf/commands/<name>.py`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import TensorFlow
lazily inside ``run`` so that ``scae --help`` and ``scae inspect`` work on an edge
install without TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from scae_tf import __version__
from scae_tf.errors import ScaeError

COMMANDS = ("synth", "train", "export", "evaluate", "inspect", "serve", "bench", "demo")

log = logging.getLogger("scae")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scae",
        description="Segmentation-guided CAE-MSSIM anomaly detection: synthesise data, train, "
        "export to TFLite, evaluate, inspect and benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"scae-tf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"scae_tf.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    # TensorFlow's C++ start-up chatter hides the messages that matter.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except ScaeError as err:
        print(f"scae {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"scae {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
