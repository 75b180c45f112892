"""Gradients through time: how far back a recurrent model's output can "see" its inputs.

Built for ``gradflow.models.SequenceModel`` (one ``nn.RNN``/``nn.GRU``/``nn.LSTM`` layer, batch
first, and a linear ``readout``)::

    model = gradflow.models.lstm(forget_bias=1.0, hidden_size=32)
    x, _ = gradflow.data.adding_problem(16, length=60)
    ratio = gradient_vs_distance(model, x)       # (16, 60): |dy_T/dx_t| / |dy_T/dx_T|
    grid = gradient_map(model, x[:4])            # (60, 60): |dy_t/dx_s|, zero above the diagonal
    jac = state_jacobians(model, x[0])           # (60, S, S): ds_t/ds_(t-1), the factors
    norms = jacobian_product_norms(jac)          # spectral norm of ds_T/ds_t against T - t

Everything runs the model on its own device (``to_model_device``) and, by default, in a float64
copy so that ratios far below float32's resolution are still products, not round-off.
"""

from __future__ import annotations

import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .core import to_model_device

CELL_LABELS = {
    "rnn_tanh": "vanilla RNN (tanh)",
    "rnn_relu": "vanilla RNN (ReLU)",
    "gru": "GRU",
    "lstm": "LSTM",
    "irnn": "IRNN (ReLU, identity init)",
}


def _sequence_model(model: object) -> nn.Module:
    if (
        not isinstance(model, nn.Module)
        or not isinstance(getattr(model, "rnn", None), (nn.RNN, nn.GRU, nn.LSTM))
        or not isinstance(getattr(model, "readout", None), nn.Module)
    ):
        raise TypeError(
            "model must be a sequence model with an `rnn` (nn.RNN, nn.GRU or nn.LSTM) "
            f"and a `readout`, e.g. gradflow.models.lstm(); got {type(model).__name__}"
        )
    if model.rnn.num_layers != 1 or model.rnn.bidirectional or not model.rnn.batch_first:
        raise ValueError("only one-layer, one-directional, batch_first recurrent layers are supported")
    return model


def _as_dtype(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    if dtype is None:
        return model
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    return copy.deepcopy(model).to(dtype)


def _sequences(model: nn.Module, x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[-1] != model.rnn.input_size or x.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (batch, length, {model.rnn.input_size}) or "
            f"(length, {model.rnn.input_size}), got {tuple(x.shape)}"
        )
    dtype = next(model.parameters()).dtype
    (x,) = to_model_device(model, x.to(dtype))
    return x


def gradient_vs_distance(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor:
    """``|dy_T/dx_t| / |dy_T/dx_T|`` for every step t of every sequence: how much the last output
    depends on an input t steps back, relative to the newest input.

    y_T is the model's output at the last step (summed over output features); the norm is taken
    over the input features of step t. Computed with one backward pass by autograd.

    Args:
        model: a ``gradflow.models.SequenceModel`` (or any module with ``rnn`` and ``readout``).
        x: inputs, ``(batch, length, input_size)`` or one sequence ``(length, input_size)``.
        dtype: run a copy of the model in this dtype (float64 by default); None: as it is.

    Returns:
        a float64 CPU tensor ``(batch, length)``; column -1 is 1, column 0 is the oldest input.
    """
    model = _as_dtype(_sequence_model(model), dtype)
    x = _sequences(model, x).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)  # samples are independent: one pass
    norms = grad.norm(dim=-1).double().cpu()  # (batch, length)
    return norms / norms[:, -1:]


def gradient_map(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor:
    """``|dy_t/dx_s|`` for every output step t and input step s (Madsen 2019's connectivity map).

    y_t is the readout of the hidden state at step t (summed over output features); the norm is
    over input features, then averaged over the batch. Entries with s > t are exactly 0 (the
    future cannot reach the past). One backward pass per output step.

    Args:
        model: a ``gradflow.models.SequenceModel``.
        x: inputs, ``(batch, length, input_size)`` or ``(length, input_size)``.
        dtype: run a copy of the model in this dtype (float64 by default); None: as it is.

    Returns:
        a float64 CPU tensor ``(length, length)``, row t = output step, column s = input step.
    """
    model = _as_dtype(_sequence_model(model), dtype)
    x = _sequences(model, x).detach().requires_grad_(True)
    hidden, _ = model.rnn(x)
    outputs = model.readout(hidden).sum(dim=-1)  # (batch, length)
    length = x.shape[1]
    grid = torch.zeros(length, length, dtype=torch.float64)
    for t in range(length):
        (grad,) = torch.autograd.grad(outputs[:, t].sum(), x, retain_graph=t < length - 1)
        grid[t] = grad.norm(dim=-1).mean(dim=0).double().cpu()
    return grid


def _step(model: nn.Module, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """One time step on a flat state (h for RNN/GRU, [h; c] for LSTM), one sequence."""
    H = model.rnn.hidden_size
    if isinstance(model.rnn, nn.LSTM):
        h, c = state[:H].view(1, 1, H), state[H:].view(1, 1, H)
        _, (h, c) = model.rnn(x_t.view(1, 1, -1), (h, c))
        return torch.cat([h.view(H), c.view(H)])
    _, h = model.rnn(x_t.view(1, 1, -1), state.view(1, 1, H))
    return h.view(H)


def state_jacobians(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor:
    """The per-step Jacobians J_t = ds_t/ds_(t-1) along one sequence, from a zero state.

    The state s is h for an RNN or GRU and [h; c] for an LSTM. For a vanilla RNN
    J_t = diag(phi'(a_t)) W_hh; the gradient from step T back to step t is the product
    J_T J_(T-1) ... J_(t+1), a deep net's Jacobian product with the *same* W_hh in every factor.

    Args:
        model: a ``gradflow.models.SequenceModel``.
        x: one sequence ``(length, input_size)`` (or ``(1, length, input_size)``).
        dtype: run a copy of the model in this dtype (float64 by default); None: as it is.

    Returns:
        a float64 CPU tensor ``(length, S, S)``; entry t-1 is J_t.
    """
    model = _as_dtype(_sequence_model(model), dtype)
    x = _sequences(model, x)
    if x.shape[0] != 1:
        raise ValueError(f"state_jacobians takes one sequence, got a batch of {x.shape[0]}")
    x = x[0].detach()
    size = model.rnn.hidden_size * (2 if isinstance(model.rnn, nn.LSTM) else 1)
    state = torch.zeros(size, dtype=x.dtype, device=x.device)
    out = []
    for t in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(
            lambda s, x_t=x[t]: _step(model, x_t, s), state, vectorize=True
        )
        out.append(jac.double().cpu())
        with torch.no_grad():
            state = _step(model, x[t], state)
    return torch.stack(out)


def jacobian_product_norms(jacobians: torch.Tensor) -> torch.Tensor:
    """Spectral norms (largest singular values) of the products J_T ... J_(T-k+1), k = 0..T.

    Args:
        jacobians: ``(length, S, S)`` per-step Jacobians, oldest first (``state_jacobians``).

    Returns:
        a float64 tensor ``(length + 1,)``: entry k is ``||ds_T/ds_(T-k)||_2`` (entry 0 is 1).
    """
    if not isinstance(jacobians, torch.Tensor):
        raise TypeError(f"jacobians must be a torch.Tensor, got {type(jacobians).__name__}")
    if jacobians.dim() != 3 or jacobians.shape[1] != jacobians.shape[2]:
        raise ValueError("jacobians must be a tensor of shape (length, S, S)")
    J = jacobians.double()
    product = torch.eye(J.shape[1], dtype=torch.float64)
    norms = [1.0]
    for k in range(1, J.shape[0] + 1):
        product = product @ J[-k]  # ds_T/ds_(T-k) = J_T ... J_(T-k+1)
        norms.append(torch.linalg.matrix_norm(product, ord=2).item())
    return torch.tensor(norms, dtype=torch.float64)


def hidden_gradient_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module | None = None
) -> torch.Tensor:
    """``|dL/dh_t|`` for every step t: the gradient reaching each hidden state through the
    recurrence (the total derivative, not just the readout's direct path).

    The model is stepped one time step at a time so that every h_t is its own tensor; the loss is
    on the last step's readout, as in ``model(x)``. The norm is over the batch and hidden units.

    Args:
        model: a ``gradflow.models.SequenceModel``.
        x: inputs ``(batch, length, input_size)``.
        y: targets for ``model(x)``, ``(batch, out_features)``.
        loss_fn: default ``nn.MSELoss()``.

    Returns:
        a float64 CPU tensor ``(length,)``, oldest step first.
    """
    model = _sequence_model(model)
    x = _sequences(model, x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one row per sequence ({x.shape[0]}), got shape {tuple(y.shape)}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be a loss module (callable) or None, got {type(loss_fn).__name__}")
    (y,) = to_model_device(model, y.to(next(model.parameters()).dtype))
    loss_fn = nn.MSELoss() if loss_fn is None else loss_fn
    batch, length, _ = x.shape
    H = model.rnn.hidden_size
    state: object = None
    hiddens = []
    for t in range(length):
        _, state = model.rnn(x[:, t : t + 1], state)
        h = state[0] if isinstance(model.rnn, nn.LSTM) else state
        hiddens.append(h)
    loss = loss_fn(model.readout(hiddens[-1].view(batch, H)), y)
    grads = torch.autograd.grad(loss, hiddens)
    return torch.stack([g.norm() for g in grads]).double().cpu()


def _label(cell: str, forget_bias: float | None) -> str:
    label = CELL_LABELS.get(cell, cell)
    if cell == "lstm":
        label += f", forget bias {'default' if forget_bias is None else f'{forget_bias:g}'}"
    return label


def build(
    cell: str, *, forget_bias: float | None = None, hidden_size: int = 32, input_size: int = 2
) -> nn.Module:
    """The chapter's models by name: "rnn_tanh", "rnn_relu", "irnn", "gru", "lstm".

    Args:
        cell: one of ``CELL_LABELS``.
        forget_bias: the LSTM's forget-gate bias (ignored for the other cells).
        hidden_size: hidden units.
        input_size: features per step.
    """
    from . import models

    if cell not in CELL_LABELS:
        raise ValueError(f"unknown cell {cell!r}; valid: {', '.join(CELL_LABELS)}")
    if cell == "irnn":
        return models.rnn(nonlinearity="relu", irnn=True, hidden_size=hidden_size, input_size=input_size)
    if cell == "lstm":
        return models.lstm(forget_bias=forget_bias, hidden_size=hidden_size, input_size=input_size)
    return models.sequence_model(cell, hidden_size=hidden_size, input_size=input_size)


def draw_map(
    grid: torch.Tensor,
    *,
    ax: plt.Axes | None = None,
    floor: float = 1e-16,
    top: float | None = None,
    title: str | None = None,
    colorbar: bool = True,
) -> plt.Axes:
    """A heat map of ``log10 |dy_t/dx_s|`` (``gradient_map``), viridis, the future (s > t) blank and
    values below ``floor`` x ``top`` shown in grey ("below the floor").

    Args:
        grid: ``(length, length)`` map, row = output step t, column = input step s.
        ax: axes to draw on; a new figure if None.
        floor: relative cut (default float64's round-off scale, 1e-16).
        top: the value at the top of the colour scale (default the map's largest entry); pass
            the same value to several maps to give them one colour scale.
        title: panel title.
        colorbar: add a colour bar labelled with the quantity.
    """
    from .plots import _axes

    if not isinstance(grid, torch.Tensor) or grid.dim() != 2 or grid.shape[0] != grid.shape[1]:
        raise ValueError("grid must be a square (length, length) tensor")
    if not 0 < floor < 1:
        raise ValueError(f"floor must be in (0, 1), got {floor}")
    ax = _axes(ax, figsize=(4.2, 3.6))
    g = grid.double().numpy()
    top = float(g.max()) if top is None else float(top)
    if not top > 0:
        raise ValueError(f"top must be > 0 (and the map must have a positive entry), got {top}")
    low = math.log10(top * floor)
    with np.errstate(divide="ignore"):
        logs = np.log10(g)
    length = g.shape[0]
    future = np.triu(np.ones_like(g, dtype=bool), k=1)
    shown = np.ma.masked_where(future, np.maximum(logs, low - 1))
    cmap = plt.get_cmap("viridis").with_extremes(under="#bbbbbb", bad="white")
    image = ax.imshow(
        shown,
        origin="lower",
        cmap=cmap,
        vmin=low,
        vmax=math.log10(top),
        extent=(0.5, length + 0.5, 0.5, length + 0.5),
        aspect="auto",
    )
    ax.set_xlabel("input step s")
    ax.set_ylabel("output step t")
    ax.grid(False)
    if title:
        ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, extend="min")
        bar.set_label("log10 |dy_t / dx_s|  (grey: < floor)")
    return ax


def draw_gradient_distance(
    length: int = 60, cell: str = "lstm", forget_bias: float = 1.0, hidden_size: int = 32, seed: int = 0
) -> np.ndarray:
    """Two panels for one freshly initialised model on adding-problem inputs: left, the
    gradient ratio ``|dy_T/dx_t| / |dy_T/dx_T|`` against the distance T - t (median and range over
    16 sequences, log scale); right, the (t, s) map of ``|dy_t/dx_s|`` (``draw_map``).

    Args:
        length: sequence length T (2 to 400).
        cell: "rnn_tanh", "rnn_relu", "irnn", "gru" or "lstm".
        forget_bias: the LSTM's forget-gate bias (ignored by the other cells).
        hidden_size: hidden units.
        seed: seeds the weights and the inputs.

    Returns:
        the two axes.
    """
    from . import data
    from .core import set_seed
    from .plots import grid as panel_grid

    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 2 <= length <= 400:
        raise ValueError(f"length must be an integer in [2, 400], got {length!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(hidden_size, np.integer):
        hidden_size = int(hidden_size)
    set_seed(int(seed))
    model = build(cell, forget_bias=forget_bias if cell == "lstm" else None, hidden_size=hidden_size)
    x, _ = data.adding_problem(16, int(length), seed=int(seed))
    ratio = gradient_vs_distance(model, x)
    fig, axes = panel_grid(2, width=4.6, height=3.6)
    distance = np.arange(int(length))[::-1]  # column t has distance T - t
    median = ratio.median(dim=0).values.numpy()
    axes[0].fill_between(
        distance,
        ratio.min(dim=0).values.numpy(),
        ratio.max(dim=0).values.numpy(),
        alpha=0.25,
        color="#1f77b4",
        label="range over 16 sequences",
    )
    axes[0].plot(distance, median, color="#1f77b4", label="median")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("distance T - t (steps back)")
    axes[0].set_ylabel("|dy_T/dx_t| / |dy_T/dx_T|")
    axes[0].set_title(
        f"{_label(cell, forget_bias)}: {median[0]:.1e} at T - t = {int(length) - 1}", fontsize=9
    )
    axes[0].legend(loc="lower left")
    draw_map(gradient_map(model, x[:4]), ax=axes[1], title="|dy_t/dx_s| over (t, s)")
    fig.tight_layout()
    return axes


def gradient_distance_explorer(length: int = 60, cell: str = "lstm", forget_bias: float = 1.0) -> None:
    """A slider for the sequence length, a drop-down for the cell and a slider for the LSTM's
    forget-gate bias over ``draw_gradient_distance``.

    Args:
        length: starting sequence length.
        cell: starting cell name.
        forget_bias: starting forget-gate bias.
    """
    import ipywidgets as widgets

    from .widgets import explore

    if cell not in CELL_LABELS:
        raise ValueError(f"unknown cell {cell!r}; valid: {', '.join(CELL_LABELS)}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 5 <= length <= 150:
        raise ValueError(f"length must be an integer in [5, 150], got {length!r}")
    if (
        isinstance(forget_bias, bool)
        or not isinstance(forget_bias, (int, float, np.floating))
        or not -2.0 <= forget_bias <= 6.0
    ):
        raise ValueError(f"forget_bias must be a number in [-2, 6], got {forget_bias!r}")
    # the forget bias comes before the cell: it only acts on the LSTM
    return explore(
        draw_gradient_distance,
        length=widgets.IntSlider(value=length, min=5, max=150, step=5, description="length T"),
        forget_bias=widgets.FloatSlider(
            value=forget_bias, min=-2.0, max=6.0, step=0.5, description="forget bias"
        ),
        cell=widgets.Dropdown(options=list(CELL_LABELS), value=cell, description="cell"),
        hidden_size=widgets.fixed(32),
        seed=widgets.fixed(0),
    )
