"""Measurements on residual networks (chapter 07): per-block forward variance and gradient, the
lesion test of Veit et al. 2016, and the shattered-gradients autocorrelation of Balduzzi et al. 2017.

Every function takes a ``gradflow.models.ResidualMLP`` (built by ``models.residual_mlp``; with
``residual=False`` it is the plain network with the same layers) and runs it on the model's device.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from .core import model_device, to_model_device
from .models import ResidualMLP, residual_mlp
from .plots import grid as _grid
from .plots import use_style


def _check_model(model: object) -> ResidualMLP:
    if not isinstance(model, ResidualMLP):
        raise TypeError(
            f"model must be a gradflow.models.ResidualMLP (see models.residual_mlp), "
            f"got {type(model).__name__}"
        )
    return model


def _int(name: str, value: object, minimum: int) -> int:
    try:
        value = operator.index(value)  # accepts NumPy integers, rejects floats and bools' cousins
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@torch.no_grad()
def block_variances(model: ResidualMLP, x: torch.Tensor) -> list[float]:
    """Variance (over batch and features) of every block's input and of the last block's output.

    Args:
        model: a ``ResidualMLP``.
        x: a batch, shape (batch, in_features).

    Returns:
        L + 1 floats: Var(x_0), ..., Var(x_L) for L blocks.
    """
    _check_model(model)
    (x,) = to_model_device(model, x)
    return [s.double().var().item() for s in model.states(x)]


def block_gradients(model: ResidualMLP, x: torch.Tensor, *, seed: int = 0) -> list[float]:
    """RMS of the gradient reaching every block's input, ``dL/dx_l``, for ``L = <v, y>`` with a
    fixed random direction ``v`` (N(0, 1) entries): the product of block Jacobians applied to ``v``.

    Args:
        model: a ``ResidualMLP`` (its mode, train or eval, is used as it is).
        x: a batch, shape (batch, in_features).
        seed: seeds the direction ``v``.

    Returns:
        L + 1 floats, input side first: RMS of dL/dx_0, ..., dL/dx_L.
    """
    _check_model(model)
    _int("seed", seed, 0)
    (x,) = to_model_device(model, x)
    states = model.states(x.detach().clone().requires_grad_(True))
    y = model.head(states[-1])
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(y.device, y.dtype)
    grads = torch.autograd.grad((y * v).sum(), states)
    return [g.double().pow(2).mean().sqrt().item() for g in grads]


@torch.no_grad()
def lesion_errors(model: ResidualMLP, X: torch.Tensor, y: torch.Tensor) -> tuple[float, list[float]]:
    """Classification error of the intact model and with each single block deleted (replaced by the
    identity), in eval mode: the lesion test of Veit et al. 2016.

    Args:
        model: a trained ``ResidualMLP`` classifier.
        X: inputs, shape (n, in_features).
        y: integer class labels, shape (n,).

    Returns:
        (error of the intact model, [error without block 1, ..., without block L]).
    """
    _check_model(model)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same length, got {X.shape[0]} and {y.shape[0]}")
    X, y = to_model_device(model, X, y)
    was_training = model.training
    model.eval()
    try:

        def error(skip: tuple[int, ...]) -> float:
            return (model(X, skip=skip).argmax(dim=1) != y).double().mean().item()

        return error(()), [error((i,)) for i in range(len(model.blocks))]
    finally:
        model.train(was_training)


def autocorrelation(g: np.ndarray | torch.Tensor, lag: int = 1) -> float:
    """Sample autocorrelation of a 1-D series at ``lag``:
    sum_i (g_i - m)(g_(i+lag) - m) / sum_i (g_i - m)^2, with m the mean of g.

    Args:
        g: a 1-D series (NumPy or torch), at least ``lag + 2`` values, not constant.
        lag: the shift, >= 1.
    """
    lag = _int("lag", lag, 1)
    g = np.asarray(g.detach().cpu() if isinstance(g, torch.Tensor) else g, dtype=np.float64)
    if g.ndim != 1 or len(g) < lag + 2:
        raise ValueError(f"g must be 1-D with at least lag + 2 = {lag + 2} values, got shape {g.shape}")
    d = g - g.mean()
    denom = float(d @ d)
    if denom == 0.0:
        raise ValueError("g is constant: its autocorrelation is undefined")
    return float(d[:-lag] @ d[lag:]) / denom


def input_gradients_1d(
    model: ResidualMLP, *, n: int = 256, low: float = -2.0, high: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """dy/dx of a one-input, one-output network on a grid of ``n`` inputs in [low, high].

    BatchNorm layers first take the grid's own batch statistics (one forward pass in train mode),
    then the gradient is taken in eval mode, so that each output depends on its own input only.
    The model's modes and running statistics are restored afterwards.

    Args:
        model: a ``ResidualMLP`` with ``in_features == out_features == 1``.
        n: grid points (>= 3).
        low: left end of the grid.
        high: right end (> low).

    Returns:
        (grid, gradients), two NumPy arrays of length n.
    """
    _check_model(model)
    n = _int("n", n, 3)
    if not float(high) > float(low):
        raise ValueError(f"high must be > low, got low={low}, high={high}")
    if model.in_features != 1 or model.head.out_features != 1:
        raise ValueError("input_gradients_1d needs a model with in_features = out_features = 1")
    dtype = next(model.parameters()).dtype
    x = torch.linspace(float(low), float(high), n, dtype=dtype, device=model_device(model))[:, None]
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, {k: b.clone() for k, b in m.named_buffers()}) for m in bns]
    was_training = model.training
    try:
        if bns:
            for m in bns:
                m.momentum = 1.0  # running statistics := this batch's statistics
            model.train()
            with torch.no_grad():
                model(x)
        model.eval()
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xg).sum(), xg)
    finally:
        for m, (momentum, buffers) in zip(bns, saved):
            m.momentum = momentum
            with torch.no_grad():
                for k, b in m.named_buffers():
                    b.copy_(buffers[k])
        model.train(was_training)
    return x[:, 0].detach().cpu().numpy(), g[:, 0].detach().cpu().numpy()


def shattering(
    depths: list[int],
    seeds: list[int] | range,
    *,
    width: int = 128,
    lag: int = 1,
    n: int = 256,
    random_bias: bool = True,
    **model_options: object,
) -> np.ndarray:
    """Lag autocorrelation of dy/dx over a 1-D grid for fresh networks, per seed and depth.

    Each network is ``models.residual_mlp(depth, width, in_features=1, out_features=1,
    **model_options)`` built after ``torch.manual_seed(seed)``, in float64 (a residual net without
    normalization multiplies its variance per block and would overflow float32).

    Args:
        depths: numbers of blocks.
        seeds: one network per seed and depth.
        width: units per block.
        lag: autocorrelation lag in grid steps.
        n: grid points in [-2, 2].
        random_bias: draw every bias from PyTorch's default U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
            (with zero biases a ReLU net of one input is positively homogeneous: its dy/dx takes
            one value for x < 0 and one for x > 0, and nothing can shatter).
        model_options: passed to ``models.residual_mlp`` (``residual``, ``norm``, ``init``, ...).

    Returns:
        an array of shape (len(seeds), len(depths)).
    """
    depths = [_int("depths[i]", d, 1) for d in depths]
    seeds = [_int("seeds[i]", s, 0) for s in seeds]
    if not isinstance(random_bias, bool):
        raise TypeError(f"random_bias must be True or False, got {random_bias!r}")
    out = np.zeros((len(seeds), len(depths)))
    for i, seed in enumerate(seeds):
        for j, depth in enumerate(depths):
            torch.manual_seed(seed)
            net = residual_mlp(depth, width, in_features=1, out_features=1, **model_options).double()
            if random_bias:
                for layer in net.modules():
                    if isinstance(layer, nn.Linear) and layer.bias is not None:
                        bound = layer.in_features**-0.5
                        nn.init.uniform_(layer.bias, -bound, bound)
            out[i, j] = autocorrelation(input_gradients_1d(net, n=n)[1], lag)
    return out


def draw_gradient_highway(
    depth: int = 50,
    residual: bool = True,
    norm: str | None = None,
    init: str = "default",
    width: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Per-block forward variance (left) and gradient RMS (right) of a fresh residual MLP, and of the
    plain net with the same layers in grey for comparison, on one batch of 256 Gaussian inputs.
    Float64, so that a plain net's gradient below float32's range is still drawn.

    Args:
        depth: number of blocks.
        residual: draw the residual net (True) or only the plain one (False).
        norm: None, "batch", "layer" or "rms" (placed in the branch).
        init: an init scheme name ("default" is PyTorch's own Linear init, "kaiming_normal" He).
        width: units per block.
        seed: seeds the weights, the batch and the backward direction.

    Returns:
        the two axes.
    """
    depth = _int("depth", depth, 1)
    seed = _int("seed", seed, 0)
    if not isinstance(residual, (bool, np.bool_)):
        raise TypeError(f"residual must be True or False, got {residual!r}")
    use_style()
    fig, axes = _grid(2, width=4.6, height=3.4)
    variants = [False, True] if residual else [False]
    for res in variants:
        torch.manual_seed(seed)
        net = residual_mlp(depth, width, norm=norm, init=init, residual=bool(res)).double()
        x = torch.randn(256, 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        var, grad = block_variances(net, x), block_gradients(net, x, seed=seed)
        label = "residual" if res else "plain"
        color = "#1f77b4" if res else "#7f7f7f"
        blocks = np.arange(len(var))
        axes[0].plot(
            blocks,
            np.maximum(var, 1e-300),
            color=color,
            label=f"{label}: Var(x_L) / Var(x_0) = {var[-1] / var[0]:.1e}",
        )
        axes[1].plot(
            blocks,
            np.maximum(grad, 1e-300),
            color=color,
            label=f"{label}: g_0 / g_L = {grad[0] / grad[-1]:.1e}",
        )
    for ax, ylabel in zip(axes, ("Var(x_l)", "RMS of dL/dx_l")):
        ax.set_yscale("log")
        ax.set_xlabel("block l (0 = input side)")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(f"{depth} blocks, width {width}, norm {norm}, init {init}")
    fig.tight_layout()
    return axes


def highway_explorer(
    depth: int = 50, residual: bool = True, norm: str | None = None, init: str = "default"
) -> None:
    """Sliders and drop-downs over ``draw_gradient_highway``: depth, residual on/off, the norm in
    the branch and the init scheme."""
    import ipywidgets as widgets

    from .widgets import explore

    def draw(norm: str = "none", **kwargs: object) -> object:
        # a drop-down cannot select the value None reliably: the "none" entry stands for it
        return draw_gradient_highway(norm=None if norm == "none" else norm, **kwargs)

    return explore(
        draw,
        depth=widgets.IntSlider(value=depth, min=1, max=100, description="blocks"),
        residual=widgets.Checkbox(value=residual, description="residual"),
        norm=widgets.Dropdown(
            options=["none", "batch", "layer", "rms"],
            value="none" if norm is None else norm,
            description="norm",
        ),
        init=widgets.Dropdown(
            options=["default", "kaiming_normal", "xavier_normal", "lecun"], value=init, description="init"
        ),
        width=widgets.fixed(64),
        seed=widgets.fixed(0),
    )
