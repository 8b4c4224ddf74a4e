"""``scae synth``: write a synthetic part category (MVTec layout, subtle defects with exact masks)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scae_tf.errors import ScaeError
from scae_tf.synthetic import DEFAULT_COUNTS, PART_KINDS, generate_dataset

HELP = "write a synthetic part category: screw, round part, capsule, roller, metal surface or fabric (MVTec layout, subtle defects with masks)"

log = logging.getLogger("scae")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to create (MVTec category layout)")
    kinds = "; ".join(f"{name}: {kind.description} ({', '.join(kind.defect_types)})" for name, kind in PART_KINDS.items())
    parser.add_argument("--kind", choices=tuple(PART_KINDS), default="screw", help=f"part kind (default %(default)s). {kinds}")
    parser.add_argument(
        "--color",
        action="store_true",
        help="RGB images: a red plastic cap on a light tray (round), anodised blue metal (surface), dyed green cloth (fabric); the screw is gray only",
    )
    parser.add_argument(
        "--loose",
        action="store_true",
        help="parts lie anywhere at any angle (on a belt) instead of fixtured: "
        + ", ".join(k for k, v in PART_KINDS.items() if v.loose),
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed -> byte-identical images (default 0)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256; 512, 1024 work too)")
    parser.add_argument("--train", type=int, default=DEFAULT_COUNTS["n_train"], help="train/good images (default %(default)s)")
    parser.add_argument("--test-good", type=int, default=DEFAULT_COUNTS["n_test_good"], help="test/good images (default %(default)s)")
    parser.add_argument(
        "--per-defect",
        type=int,
        default=DEFAULT_COUNTS["n_per_defect"],
        help="test images per defect type of the kind (default %(default)s)",
    )
    parser.add_argument("--contact-sheet", type=Path, help="also write a PNG grid of good and defective samples with mask contours")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists and is not empty")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    parents = [args.out.absolute().parent]
    if args.contact_sheet is not None:
        parents.append(args.contact_sheet.absolute().parent)
    with missing_folders_created(parents):
        out = generate_dataset(
            args.out,
            seed=args.seed,
            size=args.size,
            n_train=args.train,
            n_test_good=args.test_good,
            n_per_defect=args.per_defect,
            force=args.force,
            contact_sheet=args.contact_sheet,
            part=args.kind,
            color=args.color,
            loose=args.loose,
        )
    total = args.train + args.test_good + args.per_defect * len(PART_KINDS[args.kind].defect_types)
    colour = ("RGB" if args.color else "gray") + (" loose" if args.loose else "")
    log.info("wrote %d %s %s images (%dx%d, seed %d) to %s in %.1f s", total, colour, args.kind, args.size, args.size, args.seed, out, time.perf_counter() - start)
    if args.contact_sheet is not None:
        log.info("contact sheet: %s", args.contact_sheet)
    return 0


@contextmanager
def missing_folders_created(folders: Sequence[Path]) -> Iterator[None]:
    """Create ``folders`` with their parents; if the block fails, remove the ones created here again,
    so a failed command leaves nothing behind."""
    created: list[Path] = []
    try:
        for folder in folders:
            missing = [f for f in (folder, *folder.parents) if not f.exists()]
            existing = folder.parents[len(missing) - 1] if missing else folder
            if not existing.is_dir():
                raise ScaeError("is a file, not a folder; choose another path", existing)
            for new in reversed(missing):
                new.mkdir()
                created.append(new)
    except (OSError, ScaeError) as err:
        _remove_empty(created)
        if isinstance(err, ScaeError):
            raise
        raise ScaeError(f"cannot create the folder ({err.strerror or err}); choose another path", err.filename or folder) from None
    try:
        yield
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else wrote there) or already gone: leave it
            pass
