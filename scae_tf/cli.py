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
import sys

from scae_tf import __version__
from scae_tf import quiet as quiet_libraries
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
    _add_verbosity(parser, default=False)
    # The same flags after the command (`scae train --verbose ...`); absent there, the top-level value stands.
    verbosity = argparse.ArgumentParser(add_help=False)
    _add_verbosity(verbosity, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"scae_tf.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[verbosity])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="debug logging, and the TensorFlow / TFLite / OpenCV messages hidden by default")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Our log format and level; library chatter off unless ``verbose`` (before TensorFlow is imported)."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    quiet_libraries.configure(verbose)


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
