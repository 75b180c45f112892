"""The course's figures, in one style: labelled axes, log scales where quantities multiply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

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
    "sigmoid": "#d62728",
    "tanh": "#ff7f0e",
    "relu": "#1f77b4",
    "leaky_relu": "#17becf",
    "prelu": "#9467bd",
    "elu": "#2ca02c",
    "gelu": "#8c564b",
    "silu": "#e377c2",
    "linear": "#7f7f7f",
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


def _finish(
    ax: plt.Axes, xlabel: str, ylabel: str, title: str | None, logy: bool, *, legend: bool
) -> plt.Axes:
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend()
    return ax


def layer_profile(
    series: Mapping[str, Sequence[float]],
    *,
    ax: plt.Axes | None = None,
    ylabel: str = "gradient norm",
    title: str | None = None,
    xlabel: str = "layer (1 = input side)",
    logy: bool = True,
) -> plt.Axes:
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    return _finish(ax, xlabel, ylabel, title, logy, legend=len(series) > 1)


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ax: plt.Axes | None = None,
    xlabel: str = "step",
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
) -> plt.Axes:
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


def grid(
    ncols: int, nrows: int = 1, *, width: float = 3.6, height: float = 3.2, sharey: bool = False
) -> tuple[plt.Figure, np.ndarray]:
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
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), sharey=sharey, squeeze=False
    )
    return fig, axes.ravel()


def activation_histograms(
    layers: Mapping[str, Sequence[object]],
    *,
    bins: int = 40,
    value_range: tuple[float, float] | None = None,
    axes: Sequence[plt.Axes] | None = None,
    xlabel: str = "activation value",
) -> np.ndarray:
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
    flat = {
        label: [np.asarray(v.cpu() if hasattr(v, "cpu") else v, dtype=float).ravel() for v in values]
        for label, values in layers.items()
    }
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
            ax.hist(
                arrays[i],
                bins=bins,
                range=value_range,
                density=True,
                histtype="stepfilled",
                alpha=0.45,
                color=palette[j % len(palette)],
                label=label,
            )
        ax.set_title(f"layer {i + 1}")
        ax.set_xlabel(xlabel)
        ax.set_yticks([])
    axes[0].set_ylabel("density")
    if len(flat) > 1:
        axes[0].legend()
    return np.asarray(axes)


def activation_curves(
    names: Sequence[str],
    *,
    z_range: tuple[float, float] = (-4.0, 4.0),
    points: int = 801,
    axes: Sequence[plt.Axes] | None = None,
) -> np.ndarray:
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


HEATMAP_KINDS = ("ratio", "magnitude")


def log_heatmap(
    log10_values: object,
    *,
    kind: str = "ratio",
    x: Sequence[object] | None = None,
    y: Sequence[object] | None = None,
    ax: plt.Axes | None = None,
    limit: float | None = None,
    label: str = "",
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    annotate: Sequence[Sequence[str]] | None = None,
    colorbar: bool = True,
    colorbar_axes: Sequence[plt.Axes] | None = None,
) -> object:
    """A heat map of log10 values in the course's one colour convention.

    ``kind="ratio"``: a log10 ratio whose healthy value is 0 (e.g. layer-1 / layer-L gradient).
    Diverging ``RdBu_r`` centred at 0: blue = smaller than 1 (vanishing), red = larger than 1
    (exploding), white = 1. The colour range is symmetric, ``[-limit, limit]``.
    ``kind="magnitude"``: a log10 magnitude with no healthy value: sequential ``viridis``.
    Values beyond the colour range are clipped, and the colourbar says so.

    Args:
        log10_values: 2-D array (rows = ``y``, columns = ``x``) of log10 values; NaN cells stay
            blank.
        kind: ``"ratio"`` or ``"magnitude"``.
        x: column coordinates: numbers (drawn at their values) or labels (one tick each); default
            ``0 .. ncols-1``.
        y: row coordinates, as ``x``.
        ax: axes to draw on; a new figure if None.
        limit: ratio: the colour range is ``[-limit, limit]`` (default: the largest absolute
            finite value). Magnitude: ignored, the range is the finite data's.
        label: what the values are, for the colourbar (``"log10 " + label``).
        xlabel: x-axis label.
        ylabel: y-axis label.
        title: axes title.
        annotate: optional text per cell (same shape as the values), written in the cell.
        colorbar: draw a labelled colourbar.
        colorbar_axes: axes the colourbar is shared by (default: ``ax`` alone).

    Returns:
        the matplotlib ``QuadMesh`` (to add a colourbar elsewhere).
    """
    if kind not in HEATMAP_KINDS:
        raise ValueError(f"kind must be one of {HEATMAP_KINDS}, got {kind!r}")
    values = np.asarray(log10_values, dtype=float)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"log10_values must be a non-empty 2-D array, got shape {values.shape}")
    if limit is not None and not (
        isinstance(limit, (int, float, np.integer, np.floating)) and float(limit) > 0
    ):
        raise ValueError(f"limit must be a number > 0 or None, got {limit!r}")
    nrows, ncols = values.shape

    def coords(c: Sequence[object] | None, n: int, name: str) -> tuple[np.ndarray, list[str] | None]:
        if c is None:
            return np.arange(n, dtype=float), None
        c = list(c)
        if len(c) != n:
            raise ValueError(
                f"{name} needs {n} entries (one per {'column' if name == 'x' else 'row'}), got {len(c)}"
            )
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in c):
            return np.asarray(c, dtype=float), None
        return np.arange(n, dtype=float), [str(v) for v in c]

    xs, xlabels = coords(x, ncols, "x")
    ys, ylabels = coords(y, nrows, "y")
    finite = values[np.isfinite(values)]
    ax = _axes(ax)
    if kind == "ratio":
        lim = float(limit) if limit is not None else (float(np.abs(finite).max()) if finite.size else 1.0)
        lim = lim if lim > 0 else 1.0
        vmin, vmax, cmap = -lim, lim, "RdBu_r"
    else:
        vmin = float(finite.min()) if finite.size else 0.0
        vmax = float(finite.max()) if finite.size else 1.0
        if vmin == vmax:
            vmin, vmax = vmin - 0.5, vmax + 0.5
        cmap = "viridis"
    clipped = bool(finite.size) and (finite.min() < vmin or finite.max() > vmax)
    mesh = ax.pcolormesh(
        xs, ys, np.clip(values, vmin, vmax), cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest"
    )
    if xlabels is not None:
        ax.set_xticks(xs, xlabels)
    if ylabels is not None:
        ax.set_yticks(ys, ylabels)
        ax.invert_yaxis()  # labelled rows read top to bottom, like a table
    if annotate is not None:
        if np.shape(np.asarray(annotate, dtype=object)) != values.shape:
            raise ValueError(f"annotate must have the values' shape {values.shape}")
        for i in range(nrows):
            for j in range(ncols):
                ax.text(xs[j], ys[i], str(annotate[i][j]), ha="center", va="center", fontsize=10)
    ax.grid(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        text = f"log10 {label}".strip()
        if kind == "ratio":
            text += " (blue < 1 < red)"
        if clipped:
            text += (
                f", clipped at ±{vmax:.3g}" if kind == "ratio" else f", clipped to [{vmin:.3g}, {vmax:.3g}]"
            )
        targets = list(colorbar_axes) if colorbar_axes is not None else ax
        ax.figure.colorbar(mesh, ax=targets, label=text)
    return mesh


def roundoff_floor(singular_values: object, *, eps: float | None = None) -> float:
    """The level below which computed singular values are round-off, not data: ``N * eps *
    sigma_max`` (an SVD, and the matrix product before it, are accurate only to about
    ``eps * ||A||`` per entry).

    Args:
        singular_values: 1-D tensor or array of one matrix's singular values (N of them).
        eps: machine epsilon; default that of the values' float type (float64: 2.2e-16).
    """
    values = getattr(singular_values, "detach", None)
    array = np.asarray(values().cpu() if values is not None else singular_values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"singular_values must be a non-empty 1-D array, got shape {array.shape}")
    if eps is None:
        eps = float(np.finfo(array.dtype).eps) if np.issubdtype(array.dtype, np.floating) else 2.22e-16
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return float(array.size * eps * np.abs(array).max())


def singular_value_spectra(
    spectra: Mapping[str, object],
    *,
    ax: plt.Axes | None = None,
    colors: Mapping[str, str] | None = None,
    title: str | None = None,
    eps: float | None = None,
) -> plt.Axes:
    """Sorted singular values (largest first) of several matrices on a log axis, with values below
    each matrix's round-off floor (``roundoff_floor``) cut and the floor drawn as a dotted line.

    Args:
        spectra: label -> 1-D singular values of one matrix.
        ax: axes to draw on; a new figure if None.
        colors: optional label -> colour.
        title: axes title.
        eps: machine epsilon for the floor; default that of each spectrum's float type.
    """
    if not spectra:
        raise ValueError("singular_value_spectra needs at least one label -> singular values")
    ax = _axes(ax)
    floor_drawn = False
    for label, sv in spectra.items():
        values = getattr(sv, "detach", None)
        array = np.sort(np.asarray(values().cpu() if values is not None else sv, dtype=float))[::-1]
        floor = roundoff_floor(np.asarray(values().cpu()) if values is not None else np.asarray(sv), eps=eps)
        index = np.arange(1, array.size + 1)
        keep = array > floor
        color = (colors or {}).get(label)
        (line,) = ax.plot(index[keep], array[keep], label=label, color=color)
        ax.axhline(
            floor,
            color=line.get_color(),
            ls=":",
            lw=1,
            label=None if floor_drawn else "round-off floor (N·eps·max sv): values below cut",
        )
        floor_drawn = True
    ax.set_yscale("log")
    ax.set_xlabel("singular value index (largest first)")
    ax.set_ylabel("singular value")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def _check_series(name: str, series: object) -> None:
    if not isinstance(series, Mapping) or not series:
        raise ValueError(f"{name} must be a non-empty mapping label -> values, got {series!r:.80}")
