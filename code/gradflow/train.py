"""A small, seeded, device-agnostic training loop that keeps what the course needs to look at::

    history = fit(model, gradflow.data.digits(), steps=1000, lr=0.1)
    history.loss[-1], history.test_acc[-1], history.grad_norms  # (steps, layers)

Per step it records the loss and every layer's weight-gradient norm *before* clipping, and the
total gradient norm before clipping. A non-finite loss or gradient stops the run with a message
naming the step and the layer where it started (or, with ``on_nonfinite="record"``, stops, keeps
the message in ``history.nonfinite`` and evaluates the last state whose loss was finite). A
gradient whose entries are all finite but whose norm overflows float32 is reported as exploding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .core import default_device, progress_enabled, to_model_device
from .data import Dataset
from .probes import _bool_arg, _data_arg, _float_arg, _int_arg, _module_arg, weights_of


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
        """Whether the run stopped on a non-finite loss or gradient."""
        return self.nonfinite is not None


_LOSSES: dict[str, Callable[[], nn.Module]] = {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss}


def _first_nonfinite_output(model: nn.Module, x: torch.Tensor) -> str:
    """Re-run the forward pass with hooks and name the first layer whose output is not finite.

    The re-run is invisible to the training run: buffers (BatchNorm's running statistics) and the
    random number generators are restored afterwards."""
    names = {id(m): n for n, m in model.named_modules()}
    found: list[str] = []

    def hook(module: nn.Module, inputs: object, out: object) -> None:
        if not found and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
            kind = "nan" if torch.isnan(out).any() else "inf"
            found.append(f"{names[id(module)] or type(module).__name__} (output has {kind})")

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return found[0] if found else "the loss itself (every layer output was finite)"


@torch.no_grad()
def _layer_span(names: list[str], total: int) -> str:
    """'layer X', or 'layers <output side> ... <input side>: k of n' for several layers."""
    if len(names) == 1:
        return f"layer {names[0]}"
    return f"layers {names[-1]} (output side) ... {names[0]}: {len(names)} of {total}"


def evaluate(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, *, batch_size: int = 2048
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on (X, y) in eval mode; accuracy is NaN for regression.

    ``X`` and ``y`` are moved to the model's device; the model's mode is restored.

    Args:
        model: any module.
        X: inputs, shape (n, ...), n >= 1.
        y: targets, n of them (int64 class labels: accuracy is measured).
        loss_fn: a callable ``loss_fn(output, target)`` returning the mean loss.
        batch_size: rows per forward pass (>= 1).
    """
    _module_arg("model", model)
    _data_arg("X", X)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if len(y) != len(X):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (an nn.Module loss), got {type(loss_fn).__name__}")
    batch_size = _int_arg("batch_size", batch_size, 1)
    X, y = to_model_device(model, X, y)
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    try:
        for start in range(0, len(X), batch_size):
            out = model(X[start : start + batch_size])
            target = y[start : start + batch_size]
            total += loss_fn(out, target).item() * len(target)
            if target.dtype == torch.int64:
                correct += (out.argmax(dim=1) == target).sum().item()
    finally:
        model.train(was_training)
    acc = correct / len(X) if y.dtype == torch.int64 else math.nan
    return total / len(X), acc


def _optional_positive(name: str, value: object) -> float | None:
    return None if value is None else _float_arg(name, value, low=0.0, low_open=True)


def fit(
    model: nn.Module,
    data: Dataset,
    *,
    steps: int = 1000,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    loss: str | nn.Module = "cross_entropy",
    clip_norm: float | None = None,
    clip_value: float | None = None,
    seed: int = 0,
    eval_every: int = 100,
    on_nonfinite: str = "raise",
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> History:
    """Train ``model`` on ``data`` with minibatch SGD or Adam and return its ``History``.

    Where the model ends up: ``fit`` moves ``model`` (in place, ``model.to(device)``) to
    ``device`` (by default the GPU when there is one, e.g. on Colab) and leaves it there, in train
    mode. Functions of ``gradflow`` that run it afterwards move their data to it; your own code
    should too (``gradflow.to_model_device(model, x)``). Pass ``device="cpu"`` for runs that must
    reproduce digit for digit.

    Args:
        model: any module; moved to ``device``.
        data: a ``gradflow.data.Dataset`` with non-empty train and test sets.
        steps: optimizer steps (an int >= 1).
        lr: learning rate (a finite number > 0).
        optimizer: "sgd" or "adam".
        momentum: SGD momentum (finite, >= 0); must stay 0 with "adam" (it has its own).
        weight_decay: L2 penalty passed to the optimizer (finite, >= 0).
        batch_size: examples per step (1 to the number of training examples); batches come from
            a seeded shuffle per epoch.
        loss: "cross_entropy", "mse", or a loss module (any callable ``loss(output, target)``).
        clip_norm: if set (a finite number > 0), rescale the whole gradient to at most this norm
            (``clip_grad_norm_``).
        clip_value: if set (a finite number > 0), clamp every gradient entry to
            [-clip_value, clip_value].
        seed: seeds the batch order (an int >= 0; model init is the caller's, see
            ``gradflow.set_seed``).
        eval_every: evaluate train/test loss and accuracy every this many steps (an int >= 1) and
            at the end.
        on_nonfinite: "raise" a ``NonFiniteError``, or "record" the message and stop. On
            "record", the model is left in (and evaluated at) the last state whose loss was
            finite: the state before the failing step if its gradient was the problem, the state
            before the previous update if the loss was, so ``history.test_acc[-1]`` exists
            whenever a step completed.
        device: where to train; default the GPU if there is one.
        progress: show a progress bar; default: on for runs of 500+ steps unless
            ``GRADFLOW_PROGRESS=0``.

    Raises:
        TypeError: an argument of the wrong type (each message names it).
        ValueError: an argument out of range (each message names it and what is allowed).
        NonFiniteError: with ``on_nonfinite="raise"``, a NaN/inf loss or gradient.
    """
    _module_arg("model", model)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a gradflow.data.Dataset, got {type(data).__name__}")
    for name in ("X_train", "y_train", "X_test", "y_test"):
        value = getattr(data, name)
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or len(value) == 0:
            raise ValueError(
                f"data.{name} must be a non-empty tensor, got {tuple(getattr(value, 'shape', ()))}"
            )
    if len(data.X_train) != len(data.y_train) or len(data.X_test) != len(data.y_test):
        raise ValueError("data: X_train/y_train and X_test/y_test must have matching lengths")
    steps = _int_arg("steps", steps, 1)
    lr = _float_arg("lr", lr, low=0.0, low_open=True)
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: sgd, adam")
    momentum = _float_arg("momentum", momentum, low=0.0)
    if optimizer == "adam" and momentum != 0:
        raise ValueError(
            f"momentum applies to optimizer='sgd' only (Adam keeps its own moving "
            f"averages), got momentum={momentum} with 'adam'"
        )
    weight_decay = _float_arg("weight_decay", weight_decay, low=0.0)
    n = len(data.X_train)
    batch_size = _int_arg("batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"batch_size must be between 1 and the {n} training examples, got {batch_size}")
    if on_nonfinite not in ("raise", "record"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'record', got {on_nonfinite!r}")
    clip_norm = _optional_positive("clip_norm", clip_norm)
    clip_value = _optional_positive("clip_value", clip_value)
    seed = _int_arg("seed", seed, 0)
    eval_every = _int_arg("eval_every", eval_every, 1)
    if progress is not None:
        progress = _bool_arg("progress", progress)
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(_LOSSES)} or an nn.Module")
        loss_fn = _LOSSES[loss]()
    elif callable(loss):
        loss_fn = loss
    else:
        raise TypeError(
            f"loss must be a name ({', '.join(_LOSSES)}) or a loss module, got {type(loss).__name__}"
        )
    if device is not None and not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str, a torch.device or None, got {type(device).__name__}")
    try:
        device = torch.device(device) if device is not None else default_device()
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a device torch knows: {err}") from None

    model.to(device)
    data = data.to(device)
    layers = weights_of(model)
    row_params = [w.parameters() for w in layers]
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter that requires a gradient: nothing to train")
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    record = on_nonfinite == "record"
    state = [t for t in (*model.parameters(), *model.buffers())]
    prev_state = [t.detach().clone() for t in state] if record else []

    def row_norm(ps: list[torch.Tensor]) -> torch.Tensor:
        grads = [p.grad for p in ps if p.grad is not None]
        if not grads:
            return torch.zeros((), device=device)
        if len(grads) == 1:
            return grads[0].norm()
        return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))

    history = History(layer_names=[w.name for w in layers])
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    show = progress if progress is not None else (steps >= 500 and progress_enabled())
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, leave=False, desc="training")

    def run_eval(t: int) -> None:
        tr_loss, tr_acc = evaluate(model, data.X_train, data.y_train, loss_fn)
        te_loss, te_acc = evaluate(model, data.X_test, data.y_test, loss_fn)
        history.eval_step.append(t)
        history.train_loss.append(tr_loss)
        history.train_acc.append(tr_acc)
        history.test_loss.append(te_loss)
        history.test_acc.append(te_acc)

    def stop(message: str, t: int, state_step: int) -> History:
        if bar is not None:
            bar.close()
        if not record:
            raise NonFiniteError(message)
        history.nonfinite = message
        if state_step < t - 1:  # the loss failed: go back to the state before the last update
            with torch.no_grad():
                for live, saved in zip(state, prev_state):
                    live.copy_(saved)
        if state_step >= 0 and (not history.eval_step or history.eval_step[-1] != state_step):
            run_eval(state_step)
        return history

    model.train()
    for t in range(1, steps + 1):
        if cursor + batch_size > n:  # new epoch, new seeded shuffle
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor : cursor + batch_size].to(device)
        cursor += batch_size
        xb, yb = data.X_train[idx], data.y_train[idx]

        opt.zero_grad(set_to_none=True)
        loss_t = loss_fn(model(xb), yb)
        if not torch.isfinite(loss_t):
            where = _first_nonfinite_output(model, xb)
            return stop(
                f"step {t}: the loss is {loss_t.item()}; the forward pass first went non-finite at {where}",
                t,
                t - 2 if t > 1 else -1,
            )
        loss_t.backward()

        per_layer = (
            torch.stack([row_norm(ps) for ps in row_params]) if row_params else torch.zeros(0, device=device)
        )
        grads = [p.grad for p in params if p.grad is not None]
        if clip_norm is not None:
            total = torch.nn.utils.clip_grad_norm_(params, clip_norm)  # returns the pre-clip norm
        else:
            total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        if not torch.isfinite(total):
            entries_finite = all(bool(torch.isfinite(g).all()) for g in grads)
            if entries_finite:
                biggest = max(g.abs().max().item() for g in grads)
                # name the layers: those whose own gradient norm overflows, else the largest entry's
                over = [
                    history.layer_names[i]
                    for i in range(len(row_params))
                    if not bool(torch.isfinite(per_layer[i]))
                ]
                top = max(
                    range(len(row_params)),
                    default=None,
                    key=lambda i: max(
                        (p.grad.abs().max().item() for p in row_params[i] if p.grad is not None), default=0.0
                    ),
                )
                where = (
                    _layer_span(over, len(layers))
                    if over
                    else f"layer {history.layer_names[top]}"
                    if top is not None
                    else "the model"
                )
                return stop(
                    f"step {t}: exploding gradient in {where}: every entry is finite (the "
                    f"largest |g| is {biggest:.2e}) but the gradient norm overflows "
                    f"{str(total.dtype).replace('torch.', '')} ({total.item()})",
                    t,
                    t - 1,
                )
            bad = [
                history.layer_names[i]
                for i, ps in enumerate(row_params)
                if any(p.grad is not None and not bool(torch.isfinite(p.grad).all()) for p in ps)
            ]
            where = (
                _layer_span(bad, len(layers))
                if bad
                else "a parameter outside the weight layers (bias or norm)"
            )
            return stop(
                f"step {t}: the gradient norm is {total.item()}; non-finite weight gradients in {where}",
                t,
                t - 1,
            )
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        if record:
            with torch.no_grad():
                torch._foreach_copy_(prev_state, [s.detach() for s in state])
        opt.step()

        history.step.append(t)
        history.loss.append(loss_t.item())
        history.grad_norms.append(per_layer.tolist())
        history.total_grad_norm.append(total.item())
        if t % eval_every == 0 or t == steps:
            run_eval(t)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return history
