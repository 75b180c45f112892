"""The Probe as it was before the speed work of issue 11 (commit 8f9fc9d), kept verbatim as the
slow reference that tests/test_probes_equal.py holds the fast one to, bit for bit."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from gradflow import activations

STAT_NAMES = (
    "weight_grad_norm",
    "weight_grad_mean_abs",
    "preact_grad_rms",
    "preact_grad_norm",
    "act_mean",
    "act_std",
    "saturation",
)


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
    "tanh": lambda y: 1.0 - y**2,
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
    def __enter__(self) -> Probe:
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

    def table(
        self,
        stats: Iterable[str] = ("weight_grad_norm", "preact_grad_rms", "act_mean", "act_std", "saturation"),
    ) -> str:
        """A fixed-width text table of the latest statistics (3 significant digits)."""
        stats = list(stats)
        rows = self.stats()
        width = max(len(r.name) for r in rows)
        head = f"{'layer':<{width}}  " + "  ".join(f"{s:>20}" for s in stats)
        lines = [head]
        for r in rows:
            lines.append(f"{r.name:<{width}}  " + "  ".join(f"{getattr(r, s):>20.3g}" for s in stats))
        return "\n".join(lines)
