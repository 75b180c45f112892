"""The course's figures, in one style: labelled axes, log scales where quantities multiply."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from . import _args

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


def _color(label: str) -> str | None:
    """The course colour of a label whose first word names an activation ("relu + He" -> ReLU's)."""
    words = label.split()
    return COLORS.get(words[0]) if words else None


def _finish(ax: plt.Axes, xlabel: str, ylabel: str, title: str | None, logy: bool, *,
            legend: bool) -> plt.Axes:
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend()
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
    _check_series("series", series)
    ax = _axes(ax)
    for label, values in series.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label, color=_color(label))
    return _finish(ax, xlabel, ylabel, title, logy, legend=len(series) > 1)


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
           ax: plt.Axes | None = None, xlabel: str = "step", ylabel: str = "loss",
           title: str | None = None, logy: bool = False) -> plt.Axes:
    """Curves over training: label -> (x, y).

    Args:
        series: label -> (x values, y values) of equal length.
        ax: axes to draw on; a new figure if None.
        xlabel, ylabel, title: text.
        logy: log-scale the y-axis.
    """
    _check_series("series", series)
    for label, pair in series.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or len(pair[0]) != len(pair[1]):
            raise ValueError(f"series[{label!r}] must be a pair (x, y) of equal lengths")
    ax = _axes(ax)
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, color=_color(label))
    return _finish(ax, xlabel, ylabel, title, logy, legend=len(series) > 1)


def grid(ncols: int, nrows: int = 1, *, width: float = 3.6, height: float = 3.2,
         sharey: bool = False) -> tuple[plt.Figure, np.ndarray]:
    """A figure with ncols x nrows axes in the course style; returns (fig, flat array of axes).

    Args:
        ncols, nrows: panels across and down (>= 1).
        width, height: size of one panel in inches (> 0).
        sharey: share the y-axis between panels.
    """
    ncols = _args.integer("ncols", ncols, minimum=1, maximum=50)
    nrows = _args.integer("nrows", nrows, minimum=1, maximum=50)
    width = _args.real("width", width, positive=True)
    height = _args.real("height", height, positive=True)
    use_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), sharey=sharey,
                             squeeze=False)
    return fig, axes.ravel()


def activation_histograms(layers: Mapping[str, Sequence[object]], *, bins: int = 40,
                          value_range: tuple[float, float] | None = None,
                          axes: Sequence[plt.Axes] | None = None,
                          xlabel: str = "activation value") -> np.ndarray:
    """One panel per layer (input side first), each overlaying the histograms of several states
    of the network (e.g. "at init" and "after training"), as densities on shared bins.

    Args:
        layers: label -> per-layer values (tensors or arrays, any shape; flattened). Every label
            must give the same number of layers. The first label is drawn in grey, the others in
            colour.
        bins: number of bins per panel.
        value_range: (low, high) of the bins; default the range of all values.
        axes: one axes per layer to draw on; a new row of panels if None.
        xlabel: label of every panel's x-axis.

    Returns:
        the axes, one per layer.
    """
    if not layers:
        raise ValueError("activation_histograms needs at least one label -> per-layer values")
    counts = {label: len(values) for label, values in layers.items()}
    n = next(iter(counts.values()))
    if n == 0 or any(c != n for c in counts.values()):
        raise ValueError(f"every label needs the same, non-zero number of layers, got {counts}")
    bins = _args.integer("bins", bins, minimum=1)
    flat = {label: [np.asarray(getattr(v, "cpu", lambda: v)(), dtype=float).ravel() for v in values]
            for label, values in layers.items()}
    if value_range is None:
        everything = np.concatenate([a for arrays in flat.values() for a in arrays])
        value_range = (float(everything.min()), float(everything.max()))
        if value_range[0] == value_range[1]:
            value_range = (value_range[0] - 0.5, value_range[1] + 0.5)
    if axes is None:
        _, axes = grid(n, width=2.4, height=2.4, sharey=False)
    if len(axes) != n:
        raise ValueError(f"need {n} axes (one per layer), got {len(axes)}")
    use_style()
    palette = ["#7f7f7f", "#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    for i, ax in enumerate(axes):
        for j, (label, arrays) in enumerate(flat.items()):
            ax.hist(arrays[i], bins=bins, range=value_range, density=True, histtype="stepfilled",
                    alpha=0.45, color=palette[j % len(palette)], label=label)
        ax.set_title(f"layer {i + 1}")
        ax.set_xlabel(xlabel)
        ax.set_yticks([])
    axes[0].set_ylabel("density")
    if len(flat) > 1:
        axes[0].legend()
    return np.asarray(axes)


def activation_curves(names: Sequence[str], *, z_range: tuple[float, float] = (-4.0, 4.0),
                      points: int = 801, axes: Sequence[plt.Axes] | None = None) -> np.ndarray:
    """Two panels side by side: each activation phi(z) (left) and its analytic derivative
    phi'(z) (right), from ``gradflow.activations``, in the course colours.

    Args:
        names: activation names (see ``gradflow.activations.NAMES``).
        z_range: (low, high) of the pre-activation axis.
        points: grid points.
        axes: two axes to draw on; a new figure if None.

    Returns:
        the two axes.
    """
    import torch

    from . import activations

    if isinstance(names, str) or not names:
        raise ValueError("names must list at least one activation name, e.g. ['sigmoid', 'relu']")
    for name in names:
        activations.get(name)
    points = _args.integer("points", points, minimum=2)
    if not z_range[0] < z_range[1]:
        raise ValueError(f"z_range must be (low, high) with low < high, got {z_range}")
    if axes is None:
        _, axes = grid(2, width=4.2, height=3.4)
    if len(axes) != 2:
        raise ValueError(f"need 2 axes (curves, derivatives), got {len(axes)}")
    use_style()
    z = torch.linspace(z_range[0], z_range[1], points)
    for name in names:
        with torch.no_grad():
            y = activations.get(name)(z)
        slope = activations.derivative(name, z)
        color = COLORS.get(name)
        axes[0].plot(z.numpy(), y.numpy(), label=name, color=color)
        axes[1].plot(z.numpy(), slope.numpy(), label=name, color=color)
    axes[0].set_xlabel("pre-activation z")
    axes[0].set_ylabel("phi(z)")
    axes[0].set_title("activation")
    axes[1].set_xlabel("pre-activation z")
    axes[1].set_ylabel("phi'(z)")
    axes[1].set_title("derivative (the factor in the backward pass)")
    axes[0].legend()
    return np.asarray(axes)


def _check_series(name: str, series: object) -> None:
    if not isinstance(series, Mapping) or not series:
        raise ValueError(f"{name} must be a non-empty mapping label -> values, got {series!r:.80}")
