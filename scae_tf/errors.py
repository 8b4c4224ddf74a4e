"""User-facing errors.

Anything a user can cause (bad image, wrong folder, tampered bundle, NaN loss) raises
:class:`ScaeError` with one sentence naming the file and what to do. The CLI prints it
without a traceback and exits non-zero; programming errors still raise normally.
"""

from __future__ import annotations

from pathlib import Path


class ScaeError(Exception):
    """An expected failure caused by the user's input, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if path is not None else message)
