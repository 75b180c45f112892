"""Exploding gradients and gradient clipping (chapter 06)::

    loss, g_w, g_b = pascanu_loss_and_grad(w, b)          # the one-unit recurrent model, on a grid
    path = pascanu_descent(5.5, -3.0, lr=0.5, steps=300, clip_norm=1.0)
    total = clip_by_norm_(model.parameters(), 1.0)        # = torch.nn.utils.clip_grad_norm_
    log10_norms = recurrent_jacobian_log10_norms(4.2, "sigmoid")

The one-unit model is Pascanu, Mikolov and Bengio (2013, section 3): x_t = w sigma(x_{t-1}) + b,
T = 50 steps from x_0 = 0.5, loss (sigma(x_T) - 0.7)^2. Its gradient is computed in float64 by
forward-mode differentiation, vectorised over any array of (w, b).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .core import to_model_device
from .data import Dataset


def _real(name: str, value: object, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonneg and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _count(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


_ACTIVATIONS = {
    # name: (phi, phi', gamma = max |phi'|)
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, 1.0),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)), 0.25),
}


def pascanu_loss_and_grad(
    w: float | np.ndarray, b: float | np.ndarray, *, steps: int = 50, x0: float = 0.5, target: float = 0.7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss and gradient of Pascanu et al.'s one-unit recurrent model, vectorised, in float64.

    The model runs x_t = w sigma(x_{t-1}) + b for t = 1..``steps`` from ``x0``; the loss is
    (sigma(x_T) - target)^2. The derivatives dx_t/dw and dx_t/db are carried along the recurrence
    (forward mode), so a whole grid of (w, b) costs one pass.

    Args:
        w: recurrent weight(s), a number or an array.
        b: bias(es), a number or an array broadcastable with ``w``.
        steps: T, the number of recurrent steps (>= 1).
        x0: the initial state.
        target: the target of sigma(x_T), in (0, 1).

    Returns:
        (loss, dL/dw, dL/db), arrays of the broadcast shape of ``w`` and ``b``.
    """
    steps = _count("steps", steps)
    x0 = _real("x0", x0)
    target = _real("target", target)
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1) (a value of the sigmoid), got {target}")
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise ValueError("w and b must be finite")
    shape = np.broadcast_shapes(w.shape, b.shape)
    x = np.full(shape, x0)
    dx_dw = np.zeros(shape)
    dx_db = np.zeros(shape)
    for _ in range(steps):
        s = _sigmoid(x)
        slope = s * (1.0 - s)
        dx_dw = s + w * slope * dx_dw
        dx_db = 1.0 + w * slope * dx_db
        x = w * s + b
    s = _sigmoid(x)
    err = s - target
    outer = 2.0 * err * s * (1.0 - s)
    return err**2, outer * dx_dw, outer * dx_db


@dataclass
class Descent:
    """A gradient-descent path on the one-unit model: ``path[k]`` = (w, b) before step k+1."""

    path: np.ndarray  # (steps + 1, 2)
    loss: np.ndarray  # (steps + 1,)
    grad_norm: np.ndarray  # (steps,) the pre-clip gradient norm at each step
    step_length: np.ndarray = field(init=False)  # (steps,) ||(w, b)_{k+1} - (w, b)_k||

    def __post_init__(self) -> None:
        self.step_length = np.linalg.norm(np.diff(self.path, axis=0), axis=1)


def pascanu_descent(
    w0: float,
    b0: float,
    *,
    lr: float = 0.5,
    steps: int = 300,
    clip_norm: float | None = None,
    warmup_steps: int = 0,
    **model_options: float,
) -> Descent:
    """Plain gradient descent on (w, b) of ``pascanu_loss_and_grad``, optionally norm-clipped.

    Args:
        w0: starting recurrent weight.
        b0: starting bias.
        lr: learning rate (> 0).
        steps: number of updates (>= 1).
        clip_norm: if set (> 0), a gradient longer than this is rescaled to this length.
        warmup_steps: if > 0, the learning rate rises linearly from lr/warmup_steps to lr over
            this many steps.
        model_options: ``steps`` is taken; pass ``x0`` or ``target`` of the model.

    Returns:
        a ``Descent`` with the path, the loss along it, the gradient norms and step lengths.
    """
    w, b = _real("w0", w0), _real("b0", b0)
    lr = _real("lr", lr, positive=True)
    steps = _count("steps", steps)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    if clip_norm is not None:
        clip_norm = _real("clip_norm", clip_norm, positive=True)
    path, norms = [(w, b)], []
    for k in range(steps):
        _, g_w, g_b = pascanu_loss_and_grad(w, b, **model_options)
        g = np.array([float(g_w), float(g_b)])
        norm = float(np.linalg.norm(g))
        norms.append(norm)
        if clip_norm is not None and norm > clip_norm:
            g = g * (clip_norm / norm)
        rate = lr * min(1.0, (k + 1) / warmup_steps) if warmup_steps else lr
        w, b = w - rate * g[0], b - rate * g[1]
        path.append((w, b))
    path_arr = np.array(path)
    loss = pascanu_loss_and_grad(path_arr[:, 0], path_arr[:, 1], **model_options)[0]
    return Descent(path_arr, loss, np.array(norms))


def clip_by_norm_(parameters: Iterable[torch.Tensor] | torch.Tensor, max_norm: float) -> torch.Tensor:
    """Norm clipping written out: if the gradient's total 2-norm ||g|| (all parameters as one
    vector) exceeds ``max_norm``, multiply every gradient by max_norm / ||g||. Same result as
    ``torch.nn.utils.clip_grad_norm_``.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is clipped in place; those without a
            gradient are skipped.
        max_norm: the threshold tau (> 0).

    Returns:
        the total norm *before* clipping (a 0-d tensor), as torch returns it.
    """
    max_norm = _real("max_norm", max_norm, positive=True)
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # torch's own epsilon
    with torch.no_grad():
        for g in grads:
            g.mul_(scale.to(g.device))
    return total


def clip_by_value_(parameters: Iterable[torch.Tensor] | torch.Tensor, clip_value: float) -> None:
    """Value clipping written out: clamp every gradient entry to [-clip_value, clip_value]. Same
    result as ``torch.nn.utils.clip_grad_value_``.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is clipped in place.
        clip_value: the bound (> 0).
    """
    clip_value = _real("clip_value", clip_value, positive=True)
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def flat_grad(model: nn.Module) -> torch.Tensor:
    """All of ``model``'s parameter gradients as one vector (zeros where a gradient is missing).

    Args:
        model: any module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in model.parameters()]
    )


def recurrent_jacobian_log10_norms(
    spectral_norm: float,
    activation: str = "tanh",
    *,
    steps: int = 50,
    units: int = 32,
    input_std: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """log10 of the spectral norm of dx_t/dx_0 for a random recurrent net x_t = W phi(x_{t-1}) + u_t
    (Pascanu et al. 2013's form), t = 1..``steps``, in float64.

    W is a Gaussian matrix rescaled so that its largest singular value is ``spectral_norm``
    (lambda_1); the inputs u_t are Gaussian. Each Jacobian factor is W diag(phi'(x_{t-1})), whose
    norm is at most lambda_1 gamma (gamma = 1 for tanh, 1/4 for sigmoid), so the product is at most
    (lambda_1 gamma)^t. The product is renormalised every step (its log is accumulated), so
    neither underflow nor overflow can occur.

    Args:
        spectral_norm: lambda_1, the largest singular value of W (> 0).
        activation: "tanh" or "sigmoid".
        steps: T (>= 1).
        units: width of the state (>= 1).
        input_std: std of the inputs u_t (>= 0).
        seed: seeds W, x_0 and the inputs.

    Returns:
        an array of ``steps`` values, log10 ||dx_t/dx_0||_2 for t = 1..T.
    """
    spectral_norm = _real("spectral_norm", spectral_norm, positive=True)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    steps = _count("steps", steps)
    units = _count("units", units)
    input_std = _real("input_std", input_std, nonneg=True)
    seed = _count("seed", seed, minimum=0)
    phi, dphi, _ = _ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((units, units))
    W *= spectral_norm / np.linalg.norm(W, 2)
    x = rng.standard_normal(units)
    J = np.eye(units)
    log_scale = 0.0
    out = np.empty(steps)
    for t in range(steps):
        J = (W * dphi(x)[None, :]) @ J  # dx_t/dx_{t-1} = W diag(phi'(x_{t-1}))
        x = W @ phi(x) + input_std * rng.standard_normal(units)
        norm = np.linalg.norm(J, 2)
        if norm == 0:
            out[t:] = -np.inf
            break
        log_scale += math.log10(norm)
        J /= norm
        out[t] = log_scale
    return out


@dataclass
class Run:
    """What ``sgd_run`` saw: the loss and the pre-clip total gradient norm at every step."""

    loss: list[float]
    grad_norm: list[float]
    diverged_at: int | None  # the step whose loss or gradient was not finite, or None


def sgd_run(
    model: nn.Module,
    data: Dataset,
    *,
    steps: int = 300,
    lr: float = 0.1,
    warmup_steps: int = 0,
    clip_norm: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> Run:
    """Plain minibatch SGD with cross-entropy and a linear learning-rate warm-up, the one thing
    ``gradflow.train.fit`` does not do. Stops at the first non-finite loss or gradient.

    Args:
        model: a classifier (outputs logits).
        data: a ``gradflow.data.Dataset`` with int64 labels.
        steps: optimizer steps (>= 1).
        lr: peak learning rate (> 0).
        warmup_steps: the rate rises linearly from lr/warmup_steps to lr over this many steps
            (0: no warm-up).
        clip_norm: if set, clip the total gradient norm to this value (between backward and step).
        batch_size: examples per step.
        seed: seeds the batch order.

    Returns:
        a ``Run``: the loss and pre-clip gradient norm of every finite step, and the step that
        went non-finite (None if none did).
    """
    steps = _count("steps", steps)
    lr = _real("lr", lr, positive=True)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    batch_size = _count("batch_size", batch_size)
    if clip_norm is not None:
        clip_norm = _real("clip_norm", clip_norm, positive=True)
    X, y = to_model_device(model, data.X_train, data.y_train)
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    run = Run([], [], None)
    order, cursor = torch.randperm(len(X), generator=gen), 0
    model.train()
    for t in range(1, steps + 1):
        if cursor + batch_size > len(X):
            order, cursor = torch.randperm(len(X), generator=gen), 0
        idx = order[cursor : cursor + batch_size].to(X.device)
        cursor += batch_size
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, t / warmup_steps) if warmup_steps else lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        if not torch.isfinite(loss):
            run.diverged_at = t
            break
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm else math.inf)
        if not torch.isfinite(norm):
            run.diverged_at = t
            break
        opt.step()
        run.loss.append(loss.item())
        run.grad_norm.append(norm.item())
    return run


def draw_cliff(
    lr: float = 0.5,
    threshold: float = 1.0,
    w0: float = 5.5,
    b0: float = -3.0,
    steps: int = 300,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """The one-unit model's loss surface (log10 of the loss over w in [1, 9], b in [-6, 3]) with two gradient-descent
    paths from (w0, b0): plain, and with the gradient norm clipped at ``threshold``.

    Args:
        lr: learning rate of both paths (> 0).
        threshold: the clipping threshold tau (> 0).
        w0: starting w, in [1, 9].
        b0: starting b, in [-6, 0].
        steps: gradient steps of each path.
        ax: axes to draw on; a new figure if None.
    """
    from .plots import _axes

    lr = _real("lr", lr, positive=True)
    threshold = _real("threshold", threshold, positive=True)
    if not 1 <= _real("w0", w0) <= 9 or not -6 <= _real("b0", b0) <= 0:
        raise ValueError(f"start (w0, b0) must lie in [1, 9] x [-6, 0], got ({w0}, {b0})")
    ax = _axes(ax, figsize=(7.0, 4.6))
    W, B = np.meshgrid(np.linspace(1, 9, 321), np.linspace(-6, 3, 361))
    loss = pascanu_loss_and_grad(W, B)[0]
    mesh = ax.pcolormesh(
        W, B, np.log10(np.maximum(loss, 1e-8)), cmap="viridis", shading="auto", vmin=-8, vmax=0
    )
    plt.colorbar(mesh, ax=ax, label="log10 loss (floor 1e-8)")
    plain = pascanu_descent(w0, b0, lr=lr, steps=steps)
    clipped = pascanu_descent(w0, b0, lr=lr, steps=steps, clip_norm=threshold)
    for d, color, label in ((plain, "#d62728", "plain GD"), (clipped, "white", f"clipped at {threshold:g}")):
        shown = d.path[(d.path[:, 0] > 0) & (d.path[:, 0] < 10) & (d.path[:, 1] > -7) & (d.path[:, 1] < 4)]
        ax.plot(
            shown[:, 0],
            shown[:, 1],
            "o-",
            ms=2.5,
            lw=1,
            color=color,
            label=f"{label}: final loss {d.loss[-1]:.1e}, longest step {d.step_length.max():.2g}",
        )
    ax.plot([w0], [b0], "k*", ms=12)
    ax.set(
        xlim=(1, 9),
        ylim=(-6, 3),
        xlabel="recurrent weight w",
        ylabel="bias b",
        title=f"x_t = w sigmoid(x_(t-1)) + b, T = 50, lr {lr:g}",
    )
    ax.legend(loc="lower left", frameon=True, fontsize=8)
    return ax


def cliff_explorer(lr: float = 0.5, threshold: float = 1.0) -> None:
    """Sliders for the learning rate, the clipping threshold and the start over ``draw_cliff``."""
    import ipywidgets as widgets

    from .widgets import explore

    return explore(
        draw_cliff,
        lr=widgets.FloatLogSlider(value=lr, base=10, min=-2, max=1, step=0.1, description="lr"),
        threshold=widgets.FloatLogSlider(
            value=threshold, base=10, min=-2, max=2, step=0.1, description="threshold"
        ),
        w0=widgets.FloatSlider(value=5.5, min=1, max=9, step=0.1, description="w0"),
        b0=widgets.FloatSlider(value=-3.0, min=-6, max=0, step=0.1, description="b0"),
        steps=widgets.fixed(300),
        ax=widgets.fixed(None),
    )
