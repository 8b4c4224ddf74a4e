"""Figures written to files, built without pyplot.

Library code that saves PNGs must not switch the process's matplotlib backend: a notebook that
imports the training or evaluation modules would silently lose its inline plots. A bare
``matplotlib.figure.Figure`` renders with Agg on ``savefig`` and leaves pyplot alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any):
    """Like ``pyplot.subplots`` but detached from pyplot: returns ``(figure, axes)``."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def save_png(figure: Figure, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Write ``figure`` as PNG atomically (temp name, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    figure.savefig(tmp, format="png", **savefig_kwargs)
    tmp.replace(path)
    return path
