"""Per-layer statistics of any ``nn.Module``, gathered with hooks, in depth order. Usage::

    with Probe(model) as probe:
        loss = loss_fn(model(x), y)
        loss.backward()
    probe.column("preact_grad_rms")   # one number per layer, input side first

A *layer* is a module with a weight of two or more dimensions (Linear, Conv): the places where
gradients are multiplied by a weight matrix. For each one the probe records::

    weight_grad_norm      ||dL/dW||_F  (raw, before any clipping: taken by a parameter hook)
    weight_grad_mean_abs  mean |dL/dW| (the diagnostic most tutorials print)
    preact_grad_rms       RMS of dL/dz over batch and units, z = the layer's output
    preact_grad_norm      ||dL/dz||_F over the batch
    act_mean, act_std     of the activation that follows the layer (or of z, if none does);
                          population std over batch and units
    saturation            fraction of units whose local slope is < 5% of the activation's maximum
                          (NaN when no known activation follows, e.g. the output layer)

Depth order is the order in which layers run in the first forward pass, not the order in which
they were registered. All hooks are removed on exit, even after an exception.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from . import activations

STAT_NAMES = ("weight_grad_norm", "weight_grad_mean_abs", "preact_grad_rms", "preact_grad_norm",
              "act_mean", "act_std", "saturation")


@dataclass
class LayerStats:
    """What one pass (forward + backward) showed at one layer. NaN where nothing was measured."""
    name: str
    weight_grad_norm: float = math.nan
    weight_grad_mean_abs: float = math.nan
    preact_grad_rms: float = math.nan
    preact_grad_norm: float = math.nan
    act_mean: float = math.nan
    act_std: float = math.nan
    saturation: float = math.nan


# Local slopes computed from an activation's output y (bit for bit what activations.derivative
# gives from its input, without evaluating the activation again): the probe's per-step saturation.
_SLOPE_FROM_OUTPUT = {
    "sigmoid": lambda y: y * (1.0 - y),
    "tanh": lambda y: 1.0 - y ** 2,
    "relu": lambda y: (y > 0).to(y.dtype),
}


def _saturation(name: str, y: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
    """Fraction of units whose local slope is < 5% of the activation's maximum (from y if z is None)."""
    slope = _SLOPE_FROM_OUTPUT[name](y) if z is None else activations.derivative(name, z)
    return torch.mean(slope < 0.05 * activations.MAX_DERIVATIVE[name], dtype=torch.float32)


def layers_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every module owning a weight with >= 2 dims, in registration order."""
    out = []
    for name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 2 and w is module._parameters.get("weight"):
            out.append((name or type(module).__name__, module))
    return out


class Probe:
    """Context manager that records ``LayerStats`` for every layer of ``model``.

    Args:
        model: any module with at least one Linear/Conv-like layer.
        activations: also record activation statistics and saturation (a little slower).

    During a pass the hooks only keep copies of what they need (activations, gradients); the
    statistics are computed when first read (``stats``, ``column``, ``table``), so a probe attached
    to every step of a training loop adds little to it.
    """

    def __init__(self, model: nn.Module, *, activations: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Probe needs an nn.Module, got {type(model).__name__}")
        self.model = model
        self.track_activations = activations
        self._layers = layers_of(model)
        if not self._layers:
            raise ValueError("Probe found no layer with a >= 2-D weight (Linear, Conv) to watch")
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._order: list[int] | None = None  # execution order of layer indices
        self._seen: list[int] = []
        self._current: int | None = None  # the layer whose activation comes next
        self._followed: set[int] = set()  # layers an activation followed in the first pass
        self._raw: dict[int, dict[str, torch.Tensor]] = {}
        # built once, not per step: a training step then only pays for the hooks' bodies
        self._preact_hooks = [self._preact_hook(i) for i in range(len(self._layers))]
        self._act_names: dict[int, str] = {}

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "Probe":
        index_of = {id(m): i for i, (_, m) in enumerate(self._layers)}
        for i, (_, module) in enumerate(self._layers):
            self._handles.append(module.register_forward_hook(self._layer_hook(i)))
            self._handles.append(module.weight.register_hook(self._weight_hook(i)))
        if self.track_activations:
            for module in self.model.modules():
                name = activations.name_of(module)
                if id(module) not in index_of and name is not None:
                    self._act_names[id(module)] = name
                    self._handles.append(module.register_forward_hook(self._act_hook))
        self._handles.append(self.model.register_forward_pre_hook(self._start_pass))
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this probe installed (``__exit__`` calls it)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks ----------------------------------------------------------------------------
    def _start_pass(self, module: nn.Module, inputs: object) -> None:
        if self._order is None and self._seen:
            self._order = list(dict.fromkeys(self._seen))
        self._current = None

    def _slot(self, i: int) -> dict[str, torch.Tensor]:
        return self._raw.setdefault(i, {})

    def _layer_hook(self, i: int):
        def hook(module: nn.Module, inputs: object, out: object) -> None:
            if self._order is None:
                self._seen.append(i)
            self._current = i
            if not isinstance(out, torch.Tensor):
                return  # e.g. an LSTM returns a tuple: weight gradients only
            slot = self._slot(i)
            # z's statistics are kept only for a layer no activation follows (once the first pass
            # has shown which ones do): the activation's hook would overwrite them.
            if self.track_activations and not (self._order is not None and i in self._followed):
                z = out.detach().clone()  # reduced when read (see stats)
                slot["act_mean"], slot["act_std"] = z.mean, functools.partial(z.std, correction=0)
                slot.pop("saturation", None)
            if out.requires_grad:
                out.register_hook(self._preact_hooks[i])
        return hook

    def _act_hook(self, module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        i = self._current
        if i is None or not isinstance(out, torch.Tensor):
            return
        self._current = None  # only the first activation after a layer belongs to it
        if self._order is None:
            self._followed.add(i)
        slot = self._slot(i)
        name = self._act_names[id(module)]
        # Reduced when read (see stats). Sigmoid, tanh and ReLU keep their output for the backward
        # pass, and autograd refuses to run it if that output was changed in place: a reference is
        # as safe as a copy there. Other activations' outputs and inputs are copied.
        from_output = name in _SLOPE_FROM_OUTPUT
        y = out.detach() if from_output else out.detach().clone()
        slot["act_mean"], slot["act_std"] = y.mean, functools.partial(y.std, correction=0)
        z = None if from_output else inputs[0].detach().clone()
        slot["saturation"] = functools.partial(_saturation, name, y, z)

    def _preact_hook(self, i: int):
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach()
            norm = torch.linalg.vector_norm(g)  # what g.norm() computes, without its Python wrapper
            slot = self._slot(i)
            slot["preact_grad_norm"] = norm
            slot["preact_grad_rms"] = functools.partial(torch.div, norm, math.sqrt(g.numel()))
        return hook

    def _weight_hook(self, i: int):
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach().clone()  # a copy: later clipping or accumulation must not change it
            slot = self._slot(i)
            slot["weight_grad_norm"] = functools.partial(torch.linalg.vector_norm, g)
            slot["weight_grad_mean_abs"] = lambda: g.abs().mean()
        return hook

    # -- results --------------------------------------------------------------------------
    @property
    def order(self) -> list[int]:
        """Layer indices in depth order (execution order once a forward pass has run)."""
        if self._order is not None:
            return self._order
        if self._seen:
            seen = list(dict.fromkeys(self._seen))
            return seen + [i for i in range(len(self._layers)) if i not in seen]
        return list(range(len(self._layers)))

    @property
    def names(self) -> list[str]:
        """Layer names in depth order."""
        return [self._layers[i][0] for i in self.order]

    def stats(self) -> list[LayerStats]:
        """The latest statistics of every layer, input side first."""
        out = []
        for i in self.order:
            raw = self._raw.get(i, {})
            for key, value in raw.items():
                if callable(value):  # computed on first read, then kept
                    raw[key] = value()
            values = {k: float(v) for k, v in raw.items()}
            out.append(LayerStats(name=self._layers[i][0], **values))
        return out

    def column(self, stat: str) -> list[float]:
        """One statistic (see ``STAT_NAMES``) for every layer, input side first."""
        if stat not in STAT_NAMES:
            raise ValueError(f"unknown statistic {stat!r}; valid: {', '.join(STAT_NAMES)}")
        return [getattr(s, stat) for s in self.stats()]

    def table(self, stats: Iterable[str] = ("weight_grad_norm", "preact_grad_rms", "act_mean",
                                             "act_std", "saturation")) -> str:
        """A fixed-width text table of the latest statistics (3 significant digits)."""
        stats = list(stats)
        rows = self.stats()
        width = max(len(r.name) for r in rows)
        head = f"{'layer':<{width}}  " + "  ".join(f"{s:>20}" for s in stats)
        lines = [head]
        for r in rows:
            lines.append(f"{r.name:<{width}}  " + "  ".join(f"{getattr(r, s):>20.3g}" for s in stats))
        return "\n".join(lines)


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module | None = None,
            *, activations: bool = True) -> list[LayerStats]:
    """One forward and backward pass of ``model`` on (x, y) under a Probe; returns its stats.

    Gradients accumulate into ``.grad`` as with any backward; the model is zero_grad-ed first.

    Args:
        model: any module.
        x: a batch of inputs.
        y: targets for ``loss_fn``.
        loss_fn: default cross-entropy.
        activations: record activation statistics too.
    """
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    model.zero_grad(set_to_none=True)
    with Probe(model, activations=activations) as probe:
        loss_fn(model(x), y).backward()
    return probe.stats()


@torch.no_grad()
def dead_fraction(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> list[float]:
    """Per activation module, in depth order: fraction of units that pass no gradient for *any*
    input in ``x`` (local slope exactly 0 on the whole data set, e.g. a ReLU unit that is negative
    for every example). A unit that is zero on one batch is not dead.

    Args:
        model: any module with activation modules from ``gradflow.activations``.
        x: the whole data set (or a large sample), shape (n, ...).
        batch_size: rows per forward pass.
    """
    alive: dict[int, torch.Tensor] = {}
    order: list[int] = []
    handles = []

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        name = activations.name_of(module)
        z = inputs[0]
        # (batch, units, *spatial) -> units: a unit is alive if its slope is nonzero anywhere
        slope_nonzero = activations.derivative(name, z) != 0  # (batch, units, *spatial)
        live = slope_nonzero.transpose(0, 1).reshape(z.shape[1], -1).any(dim=1)  # (units,)
        key = id(module)
        if key not in alive:
            order.append(key)
            alive[key] = live
        else:
            alive[key] = alive[key] | live

    for module in model.modules():
        if activations.name_of(module) is not None:
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return [1.0 - alive[k].float().mean().item() for k in order]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every layer weight (by layer name), to compare after an optimizer step."""
    return {name: m.weight.detach().clone() for name, m in layers_of(model)}


def update_ratios(model: nn.Module, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """||W_now - W_before|| / ||W_before|| for every layer in ``before``: the relative size of the
    update actually applied (~1e-3 per step is the healthy range for SGD, Karpathy's rule of thumb).
    """
    current = dict(layers_of(model))
    out = {}
    for name, w0 in before.items():
        w = current[name].weight.detach()
        out[name] = ((w - w0).norm() / w0.norm().clamp_min(1e-12)).item()
    return out


@torch.no_grad()
def dead_fraction_per_batch(model: nn.Module, x: torch.Tensor, batch_size: int, *,
                            n_batches: int = 20, seed: int = 0) -> list[float]:
    """The shortcut count of dead units: a unit is called dead if its slope is zero for every
    example of *one batch*. Per activation module (depth order), the average of that fraction over
    ``n_batches`` random batches. It overstates death: a unit silent on 64 examples may fire on
    the 65th. Compare with ``dead_fraction`` (the whole data set), which it can only exceed.

    Args:
        model: any module with activation modules from ``gradflow.activations``.
        x: the data set, shape (n, ...).
        batch_size: examples per batch (1 to n).
        n_batches: how many random batches to average over (>= 1).
        seed: seed of a private generator that draws the batches.
    """
    if not isinstance(batch_size, int) or not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be an int between 1 and {len(x)}, got {batch_size!r}")
    if not isinstance(n_batches, int) or n_batches < 1:
        raise ValueError(f"n_batches must be an int >= 1, got {n_batches!r}")
    gen = torch.Generator().manual_seed(seed)
    totals: list[float] | None = None
    for _ in range(n_batches):
        idx = torch.randperm(len(x), generator=gen)[:batch_size].to(x.device)
        fractions = dead_fraction(model, x[idx], batch_size=batch_size)
        totals = fractions if totals is None else [a + b for a, b in zip(totals, fractions)]
    return [t / n_batches for t in totals]
