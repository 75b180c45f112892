"""The course's figures, in one style: labelled axes, log scales where quantities multiply."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 4,
}

# One colour per activation, kept the same in every chapter.
COLORS = {
    "sigmoid": "#d62728", "tanh": "#ff7f0e", "relu": "#1f77b4", "leaky_relu": "#17becf",
    "prelu": "#9467bd", "elu": "#2ca02c", "gelu": "#8c564b", "silu": "#e377c2", "linear": "#7f7f7f",
}


def use_style() -> None:
    """Apply the course style to matplotlib (every helper here calls it)."""
    plt.rcParams.update(STYLE)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def layer_profile(series: Mapping[str, Sequence[float]], *, ax: plt.Axes | None = None,
                  ylabel: str = "gradient norm", title: str | None = None,
                  xlabel: str = "layer (1 = input side)", logy: bool = True) -> plt.Axes:
    """One line per series of per-layer values (input side first), on a log y-axis.

    Args:
        series: label -> values, one per layer. A label that names an activation gets its colour.
        ax: axes to draw on; a new figure if None.
        ylabel, title, xlabel: text.
        logy: log-scale the y-axis (the natural scale for products).
    """
    ax = _axes(ax)
    for label, values in series.items():
        values = np.asarray(values, dtype=float)
        color = next((c for k, c in COLORS.items() if label.split()[0] == k), None)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label, color=color)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
           ax: plt.Axes | None = None, xlabel: str = "step", ylabel: str = "loss",
           title: str | None = None, logy: bool = False) -> plt.Axes:
    """Curves over training: label -> (x, y)."""
    ax = _axes(ax)
    for label, (x, y) in series.items():
        color = next((c for k, c in COLORS.items() if label.split()[0] == k), None)
        ax.plot(x, y, label=label, color=color)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax


def grid(ncols: int, nrows: int = 1, *, width: float = 3.6, height: float = 3.2,
         sharey: bool = False) -> tuple[plt.Figure, np.ndarray]:
    """A figure with ncols x nrows axes in the course style; returns (fig, flat array of axes)."""
    use_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), sharey=sharey,
                             squeeze=False)
    return fig, axes.ravel()
