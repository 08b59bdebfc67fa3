"""Headless matplotlib figures (the Agg canvas; `pyplot` is never imported)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def figure(size) -> Figure:
    """A figure of `size` inches with a constrained layout and its own canvas."""
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path) -> Path:
    """Write `fig` as PNG to `path` (parent folders created), free it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    fig.clear()
    return path
