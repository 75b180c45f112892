"""A small, seeded, device-agnostic training loop that keeps what the course needs to look at::

    history = fit(model, gradflow.data.digits(), steps=1000, lr=0.1)
    history.loss[-1], history.test_acc[-1], history.grad_norms  # (steps, layers)

Per step it records the loss and every layer's weight-gradient norm *before* clipping, and the
total gradient norm before clipping. A non-finite loss or gradient stops the run with a message
naming the step and the layer where it started (or, with ``on_nonfinite="record"``, stops and
keeps the message in ``history.nonfinite``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .core import default_device, progress_enabled
from .data import Dataset
from .probes import layers_of


class NonFiniteError(RuntimeError):
    """Training produced NaN or inf; the message says at which step and which layer."""


@dataclass
class History:
    """What ``fit`` saw. Lists run over steps; ``grad_norms[t][l]`` is layer l at step t."""
    layer_names: list[str]
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)
    total_grad_norm: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    nonfinite: str | None = None

    @property
    def diverged(self) -> bool:
        return self.nonfinite is not None


_LOSSES: dict[str, Callable[[], nn.Module]] = {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss}


def _first_nonfinite_output(model: nn.Module, x: torch.Tensor) -> str:
    """Re-run the forward pass with hooks and name the first layer whose output is not finite."""
    names = {id(m): n for n, m in model.named_modules()}
    found: list[str] = []

    def hook(module: nn.Module, inputs: object, out: object) -> None:
        if not found and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
            kind = "nan" if torch.isnan(out).any() else "inf"
            found.append(f"{names[id(module)] or type(module).__name__} (output has {kind})")

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else "the loss itself (every layer output was finite)"


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
             *, batch_size: int = 2048) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on (X, y) in eval mode; accuracy is NaN for regression."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        out = model(X[start:start + batch_size])
        target = y[start:start + batch_size]
        total += loss_fn(out, target).item() * len(target)
        if target.dtype == torch.int64:
            correct += (out.argmax(dim=1) == target).sum().item()
    model.train(was_training)
    acc = correct / len(X) if y.dtype == torch.int64 else math.nan
    return total / len(X), acc


def fit(model: nn.Module, data: Dataset, *, steps: int = 1000, lr: float = 0.1,
        optimizer: str = "sgd", momentum: float = 0.0, weight_decay: float = 0.0,
        batch_size: int = 64, loss: str | nn.Module = "cross_entropy",
        clip_norm: float | None = None, clip_value: float | None = None, seed: int = 0,
        eval_every: int = 100, on_nonfinite: str = "raise",
        device: torch.device | str | None = None, progress: bool | None = None) -> History:
    """Train ``model`` on ``data`` with minibatch SGD or Adam and return its ``History``.

    Args:
        model: any module; moved to ``device``.
        data: a ``gradflow.data.Dataset``.
        steps: optimizer steps (>= 1).
        lr: learning rate (> 0).
        optimizer: "sgd" or "adam".
        momentum: SGD momentum.
        weight_decay: L2 penalty passed to the optimizer.
        batch_size: examples per step (>= 1); batches come from a seeded shuffle per epoch.
        loss: "cross_entropy", "mse", or a loss module.
        clip_norm: if set, rescale the whole gradient to at most this norm (``clip_grad_norm_``).
        clip_value: if set, clamp every gradient entry to [-clip_value, clip_value].
        seed: seeds the batch order (model init is the caller's, see ``gradflow.set_seed``).
        eval_every: evaluate train/test loss and accuracy every this many steps and at the end.
        on_nonfinite: "raise" a ``NonFiniteError``, or "record" the message and stop.
        device: default the GPU if there is one.
        progress: show a progress bar; default: on for runs of 500+ steps unless
            ``GRADFLOW_PROGRESS=0``.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: sgd, adam")
    if on_nonfinite not in ("raise", "record"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'record', got {on_nonfinite!r}")
    for name, value in (("clip_norm", clip_norm), ("clip_value", clip_value)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0 or None, got {value}")
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(_LOSSES)} or an nn.Module")
        loss_fn = _LOSSES[loss]()
    else:
        loss_fn = loss

    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    data = data.to(device)
    n = len(data.X_train)
    layers = layers_of(model)
    weights = [m.weight for _, m in layers]
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    history = History(layer_names=[name for name, _ in layers])
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    show = progress if progress is not None else (steps >= 500 and progress_enabled())
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, leave=False, desc="training")

    def stop(message: str) -> History:
        if bar is not None:
            bar.close()
        if on_nonfinite == "raise":
            raise NonFiniteError(message)
        history.nonfinite = message
        return history

    model.train()
    for t in range(1, steps + 1):
        if cursor + batch_size > n:  # new epoch, new seeded shuffle
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor:cursor + batch_size].to(device)
        cursor += batch_size
        xb, yb = data.X_train[idx], data.y_train[idx]

        opt.zero_grad(set_to_none=True)
        loss_t = loss_fn(model(xb), yb)
        if not torch.isfinite(loss_t):
            where = _first_nonfinite_output(model, xb)
            return stop(f"step {t}: the loss is {loss_t.item()}; the forward pass first went "
                        f"non-finite at {where}")
        loss_t.backward()

        per_layer = torch.stack([w.grad.norm() if w.grad is not None else torch.zeros((), device=device)
                                 for w in weights])
        grads = [p.grad for p in params if p.grad is not None]
        if clip_norm is not None:
            total = torch.nn.utils.clip_grad_norm_(params, clip_norm)  # returns the pre-clip norm
        else:
            total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        if not torch.isfinite(total):
            bad = [history.layer_names[i] for i, v in enumerate(per_layer.tolist()) if not math.isfinite(v)]
            where = (f"layers {bad[-1]} (output side) ... {bad[0]}: {len(bad)} of {len(weights)}"
                     if bad else "a parameter outside the weight layers (bias or norm)")
            return stop(f"step {t}: the gradient norm is {total.item()}; non-finite weight "
                        f"gradients in {where}")
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        opt.step()

        history.step.append(t)
        history.loss.append(loss_t.item())
        history.grad_norms.append(per_layer.tolist())
        history.total_grad_norm.append(total.item())
        if t % eval_every == 0 or t == steps:
            tr_loss, tr_acc = evaluate(model, data.X_train, data.y_train, loss_fn)
            te_loss, te_acc = evaluate(model, data.X_test, data.y_test, loss_fn)
            history.eval_step.append(t)
            history.train_loss.append(tr_loss)
            history.train_acc.append(tr_acc)
            history.test_loss.append(te_loss)
            history.test_acc.append(te_acc)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return history
