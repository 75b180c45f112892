"""Interactive explorers. Each has a ``draw_*`` function that makes one static figure (the book
shows it) and an ``*_explorer`` that wraps the same function in ipywidgets sliders (Colab, Jupyter).
"""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import torch

from . import activations
from .data import random_classification
from .init import SCHEMES
from .models import mlp
from .plots import layer_profile
from .probes import measure


def gradient_profile(depth: int, activation: str, init: str, gain: float = 1.0, *,
                     width: int = 64, seed: int = 0) -> list[float]:
    """RMS of dL/dz at each hidden layer (input side first) of a fresh ``mlp`` at initialisation,
    on one batch of 128 random inputs with random labels (10 classes): the numbers behind
    ``draw_gradient_flow``.

    Args:
        depth: hidden layers.
        activation: an activation name.
        init: an init scheme name.
        gain: multiplies the init's std.
        width: units per hidden layer (also the input width).
        seed: seeds the weights and the batch.
    """
    torch.manual_seed(seed)
    model = mlp(depth, width, in_features=width, out_features=10, activation=activation,
                init=init, gain=gain).to("cpu")
    x, y = random_classification(128, width, 10, seed=seed)
    return [s.preact_grad_rms for s in measure(model, x, y)][:-1]  # hidden layers only


def draw_gradient_flow(depth: int = 10, activation: str = "sigmoid", init: str = "xavier_normal",
                       gain: float = 1.0, width: int = 64, seed: int = 0,
                       ax: plt.Axes | None = None) -> plt.Axes:
    """Per-layer RMS of the pre-activation gradient dL/dz of a fresh MLP on one random batch.

    Args:
        depth: hidden layers.
        activation: an activation name.
        init: an init scheme name.
        gain: multiplies the init's std.
        width: units per hidden layer.
        seed: seeds the weights and the batch.
        ax: draw into these axes (several calls overlay their lines); a new figure if None.
    """
    rms = gradient_profile(depth, activation, init, gain, width=width, seed=seed)
    title = (f"{activation}, {init}, gain {gain:g}: layer 1 gets {rms[0] / rms[-1]:.1e} "
             f"of layer {depth}'s gradient")
    return layer_profile({f"gain {gain:g}, {activation}, {init}": rms}, ax=ax,
                         ylabel="RMS of dL/dz", title=title)


def explore(draw: Callable[..., object], **controls: object):
    """Wrap ``draw`` in ipywidgets controls (``interact`` abbreviations: tuples for sliders,
    lists for drop-downs) and display it. Returns the widget."""
    import ipywidgets as widgets
    from IPython.display import display

    def redraw(**kwargs: object) -> None:
        draw(**kwargs)
        plt.show()

    ui = widgets.interactive(redraw, **controls)
    display(ui)
    return ui


def gradient_flow_explorer(depth: int = 10, activation: str = "sigmoid",
                           init: str = "xavier_normal", gain: float = 1.0):
    """Sliders for depth, gain and drop-downs for activation and init over ``draw_gradient_flow``."""
    import ipywidgets as widgets

    return explore(
        draw_gradient_flow,
        depth=widgets.IntSlider(value=depth, min=2, max=50, description="depth"),
        activation=widgets.Dropdown(options=list(activations.NAMES), value=activation,
                                    description="activation"),
        init=widgets.Dropdown(options=[s for s in SCHEMES if s not in ("zeros", "constant", "normal")],
                              value=init, description="init"),
        gain=widgets.FloatLogSlider(value=gain, base=10, min=-1, max=1, step=0.05, description="gain"),
        width=widgets.fixed(64), seed=widgets.fixed(0))
