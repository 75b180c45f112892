"""Interactive explorers. Each has a ``draw_*`` function that makes one static figure (the book
shows it) and an ``*_explorer`` that wraps the same function in ipywidgets sliders (Colab, Jupyter).
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch

from . import _args, activations
from .init import SCHEMES
from .plots import layer_profile
from .propagation import gradient_profile


def draw_gradient_flow(
    depth: int = 10,
    activation: str = "sigmoid",
    init: str = "xavier_normal",
    gain: float | None = None,
    width: int = 64,
    seed: int = 0,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Per-layer RMS of the pre-activation gradient dL/dz of a fresh MLP on one random batch.

    Args:
        depth: hidden layers.
        activation: an activation name.
        init: an init scheme name.
        gain: multiplies the init's std; None = the scheme's own (sqrt 2 for kaiming, else 1).
        width: units per hidden layer.
        seed: seeds the weights and the batch.
        ax: draw into these axes (several calls overlay their lines); a new figure if None.
    """
    rms = gradient_profile(depth, activation, init, gain, width=width, seed=seed)
    shown = "default" if gain is None else f"{gain:g}"
    title = (
        f"{activation}, {init}, gain {shown}: layer 1 gets {rms[0] / rms[-1]:.1e} of layer {depth}'s gradient"
    )
    return layer_profile(
        {f"gain {shown}, {activation}, {init}": rms}, ax=ax, ylabel="RMS of dL/dz", title=title
    )


def explore(draw: Callable[..., object], **controls: object) -> None:
    """Wrap ``draw`` in ipywidgets controls (``interact`` abbreviations: tuples for sliders,
    lists for drop-downs) and display it.

    Returns nothing, so that a call at the end of a cell shows the explorer once (a returned
    widget would be displayed a second time)."""
    if not callable(draw):
        raise _args.ArgumentTypeError(
            f"draw must be a function that draws a figure, got {type(draw).__name__}"
        )
    import ipywidgets as widgets
    from IPython.display import display

    def redraw(**kwargs: object) -> None:
        draw(**kwargs)
        plt.show()

    global last_explorer
    last_explorer = widgets.interactive(redraw, **controls)
    display(last_explorer)


#: The ``ipywidgets.interactive`` that the last ``explore`` call built and displayed (tests drive
#: its controls: tests/test_explorers.py).
last_explorer: object | None = None


def gradient_flow_explorer(
    depth: int = 10, activation: str = "sigmoid", init: str = "xavier_normal", gain: float = 1.0
) -> None:
    """Sliders for depth, gain and drop-downs for activation and init over ``draw_gradient_flow``.

    The gain slider multiplies the scheme's std as it is: He init is ``kaiming_normal`` with gain
    sqrt(2) = 1.41 (at gain 1 the kaiming schemes give LeCun's variance 1/fan_in).
    """
    import ipywidgets as widgets

    return explore(
        draw_gradient_flow,
        depth=widgets.IntSlider(value=depth, min=2, max=50, description="depth"),
        activation=widgets.Dropdown(
            options=list(activations.NAMES), value=activation, description="activation"
        ),
        init=widgets.Dropdown(
            options=[s for s in SCHEMES if s not in ("zeros", "constant", "normal")],
            value=init,
            description="init",
        ),
        gain=widgets.FloatLogSlider(value=gain, base=10, min=-1, max=1, step=0.05, description="gain"),
        width=widgets.fixed(64),
        seed=widgets.fixed(0),
    )


def draw_unit_slopes(
    activation: str = "relu",
    mean: float = 0.0,
    std: float = 1.0,
    batch_size: int = 64,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """One unit whose pre-activation z is N(mean, std^2) over the data: the histogram of z under
    the activation's derivative phi'(z). The title gives the mean squared slope E[phi'(z)^2] (the
    unit's contribution to the backward gain), the chance P(phi'(z) = 0) of passing nothing on one
    example, and the chance P(zero slope)^batch_size that the unit looks dead on a whole batch.

    Args:
        activation: an activation name.
        mean: mean of z (a negative bias shifts it down).
        std: standard deviation of z (> 0).
        batch_size: examples in the batch for the "looks dead on a batch" chance.
        ax: axes to draw on; a new figure if None.
    """
    from .plots import COLORS, _axes

    activations.get(activation)
    mean = _args.real("mean", mean)
    std = _args.real("std", std, positive=True)
    batch_size = _args.integer("batch_size", batch_size, minimum=1)
    ax = _axes(ax, figsize=(7.0, 3.6))
    gen = torch.Generator().manual_seed(0)
    z = mean + std * torch.randn(200_000, generator=gen)
    slope = activations.derivative(activation, z)
    p_zero = (slope == 0).float().mean().item()
    gain = (slope**2).mean().item()
    low, high = min(-4.0, mean - 4 * std), max(4.0, mean + 4 * std)
    ax.hist(z.numpy(), bins=80, range=(low, high), density=True, color="#bbbbbb", label="z over the data")
    grid_z = torch.linspace(low, high, 600)
    ax.plot(
        grid_z.numpy(),
        activations.derivative(activation, grid_z).numpy(),
        color=COLORS.get(activation),
        label=f"{activation}'(z)",
    )
    ax.set_xlabel("pre-activation z")
    ax.set_ylabel("density  /  slope")
    ax.set_title(
        f"E[phi'^2] = {gain:.3f},  P(slope 0) = {p_zero:.2f},  "
        f"P(zero on a batch of {batch_size}) = {p_zero**batch_size:.1e}"
    )
    ax.legend(loc="upper left")
    return ax


def unit_slopes_explorer(
    activation: str = "relu", mean: float = 0.0, std: float = 1.0, batch_size: int = 64
) -> None:
    """Drop-down for the activation and sliders for the mean and std of z and the batch size
    over ``draw_unit_slopes``."""
    import ipywidgets as widgets

    return explore(
        draw_unit_slopes,
        activation=widgets.Dropdown(
            options=[n for n in activations.NAMES if n != "linear"],
            value=activation,
            description="activation",
        ),
        mean=widgets.FloatSlider(value=mean, min=-4.0, max=2.0, step=0.1, description="mean of z"),
        std=widgets.FloatSlider(value=std, min=0.1, max=3.0, step=0.1, description="std of z"),
        batch_size=widgets.IntSlider(value=batch_size, min=1, max=1347, description="batch"),
    )
