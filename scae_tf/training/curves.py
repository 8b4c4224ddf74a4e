"""Training curves as PNG (loss and validation loss per epoch, plus any extra metric)."""

from __future__ import annotations

from pathlib import Path

from scae_tf.plotting import save_png, subplots


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    """One panel per metric family (``x`` and ``val_x`` together); written atomically."""
    families = sorted({key.removeprefix("val_") for key in history})
    fig, axes = subplots(1, len(families), figsize=(4.5 * len(families), 3.2), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        for key, style in ((family, "-"), (f"val_{family}", "--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(family)
        if family == "loss":
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=80)
