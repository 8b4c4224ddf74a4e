"""Progress bars for long work: shown on a terminal, silent in logs and CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    forced = os.environ.get("SCAE_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "img") -> Iterable[T]:
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not progress_enabled(), leave=False)
