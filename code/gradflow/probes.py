"""Per-layer statistics of any ``nn.Module``, gathered with hooks, in depth order. Usage::

    with Probe(model) as probe:
        loss = loss_fn(model(x), y)
        loss.backward()
    probe.column("preact_grad_rms")   # one number per layer, input side first

A *layer* is a weight with two or more dimensions that takes part in the backward pass (it
requires a gradient): the places where gradients are multiplied by a weight matrix. That covers
``nn.Linear`` and convolutions (one row named after the module, e.g. ``hidden.0.linear``),
``nn.RNN``/``nn.LSTM``/``nn.GRU`` (one row per weight, ``lstm.weight_ih_l0``,
``lstm.weight_hh_l0``, ...), attention (``attn.in_proj_weight``, then ``attn.out_proj``) and
parametrised weights (``torch.nn.utils.parametrize``: the row is the weight the layer multiplies
by, e.g. a weight-normalised ``fc``). Frozen weights (``requires_grad=False``) are skipped. For
each layer the probe records::

    weight_grad_norm      ||dL/dW||_F  (raw, before any clipping)
    weight_grad_mean_abs  mean |dL/dW| (the diagnostic most tutorials print)
    preact_grad_rms       RMS of dL/dz over batch and units, z = the layer's output
    preact_grad_norm      ||dL/dz||_F over the batch
    act_mean, act_std     of the activation that follows the layer (or of z, if none does);
                          population std over batch and units
    saturation            fraction of units whose local slope |f'(z)| is < 5% of the
                          activation's maximum (NaN when no known activation follows)

``preact_*``, ``act_*`` and ``saturation`` need a module with one weight and one tensor output
(Linear, Conv, a parametrised layer); rows of recurrent and attention modules carry the weight
gradient only (NaN elsewhere). For a recurrent module the probe also records the gradient with
respect to its hidden state at every time step: ``probe.hidden_grad_norms("lstm")`` is
``||dL/dh_t||`` for t = 1..T (see ``Probe``).

A probe is cheap enough to leave on a training loop (``tools/benchmark.py`` measures it): during
a pass it keeps references, not copies, and computes nothing; ``stats()`` computes everything at
once when read (``gradflow._reduce``: tensors of one size stacked and reduced together, bit for
bit torch's own reductions of each); ``Probe(model, every=k)`` records one pass in k. While
entered, a probe wraps the ``forward`` of the modules it watches (an instance attribute, removed
on exit) instead of registering forward hooks, which would send every call down ``nn.Module``'s
slow path, asks autograd to keep dL/dz (``retain_grad``) on layer outputs, and takes the
``.grad`` of each ``nn.Linear`` once the backward pass is over (one callback per pass).

Depth order is the order in which layers run in a forward pass, not the order in which they were
registered; a weight used inside a module without calling its owner (``out_proj`` inside
``nn.MultiheadAttention``) is placed with the module that used it. The order is fixed by the
first forward pass that completes. All hooks are removed on exit, even after an exception.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from . import _reduce, activations
from .core import to_model_device

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
    """What one pass (forward + backward) showed at one layer. NaN where nothing was measured.

    ``activation`` is the registry name (``gradflow.activations.NAMES``) of the activation that
    followed the layer, or None (no known activation, e.g. the output layer).
    """

    name: str
    weight_grad_norm: float = math.nan
    weight_grad_mean_abs: float = math.nan
    preact_grad_rms: float = math.nan
    preact_grad_norm: float = math.nan
    act_mean: float = math.nan
    act_std: float = math.nan
    saturation: float = math.nan
    activation: str | None = None


_SLOPE_FROM_OUTPUT = _reduce.SLOPE_FROM_OUTPUT


# -- argument checks shared by probes, train and diagnose ------------------------------------
def _int_arg(name: str, value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int (NumPy integers accepted); ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        lo = "" if minimum is None else f">= {minimum}"
        hi = "" if maximum is None else f"<= {maximum}"
        raise ValueError(f"{name} must be an integer {' and '.join(s for s in (lo, hi) if s)}, got {value}")
    return value


def _float_arg(
    name: str,
    value: object,
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
    finite: bool = True,
) -> float:
    """``value`` as a Python float (NumPy floats and ints accepted), checked against a range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def _bool_arg(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _module_arg(name: str, value: object) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def _data_arg(name: str, value: object, *, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < min_dim or len(value) == 0:
        raise ValueError(
            f"{name} must hold at least one example (shape (n, ...), n >= 1), got shape {tuple(value.shape)}"
        )
    return value


# -- which weights are layers ----------------------------------------------------------------
class Weight(NamedTuple):
    """One probed weight: its row ``name``, the ``module`` that owns it and its ``key`` there."""

    name: str
    module: nn.Module
    key: str

    @property
    def parametrized(self) -> bool:
        """Whether ``module.<key>`` is computed by ``torch.nn.utils.parametrize``."""
        p = getattr(self.module, "parametrizations", None)
        return p is not None and self.key in p

    def parameters(self) -> list[nn.Parameter]:
        """The leaf parameters the optimizer updates for this weight (one, or a parametrisation's
        originals)."""
        if self.parametrized:
            return [p for p in self.module.parametrizations[self.key].parameters() if p.requires_grad]
        return [self.module._parameters[self.key]]


def weights_of(model: nn.Module) -> list[Weight]:
    """Every trainable weight with >= 2 dims of ``model``, in registration order: a ``Weight`` per
    ``nn.Linear``/Conv weight, recurrent ``weight_ih_l*``/``weight_hh_l*``, attention
    ``in_proj_weight`` (and ``q/k/v_proj_weight``) and parametrised weight. A row is named after its
    module when the weight is called ``weight`` (``hidden.0.linear``), else ``module.key``
    (``lstm.weight_hh_l0``). Frozen weights (``requires_grad=False``) are left out.

    Args:
        model: any ``nn.Module``.
    """
    _module_arg("model", model)
    out: list[Weight] = []
    for mname, module in model.named_modules():
        if isinstance(module, nn.utils.parametrize.ParametrizationList):
            continue
        keys = [
            k for k, p in module._parameters.items() if p is not None and p.dim() >= 2 and p.requires_grad
        ]
        plist = getattr(module, "parametrizations", None)
        if isinstance(plist, nn.ModuleDict):
            for key, par in plist.items():
                originals = [p for p in par.parameters(recurse=False)]
                if any(p.requires_grad for p in originals) and getattr(module, key).dim() >= 2:
                    keys.append(key)
        for key in keys:
            base = mname or type(module).__name__
            out.append(Weight(base if key == "weight" else f"{mname}.{key}" if mname else key, module, key))
    return out


def layers_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(row name, module) of every weight ``weights_of`` finds, in registration order.

    Args:
        model: any ``nn.Module``.
    """
    return [(w.name, w.module) for w in weights_of(model)]


_RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
_REBUILD_MACS = 2**20
_RETAIN_MAX = 16384  # larger layer outputs hand dL/dz over by reference (a pre-hook)


def _unrolled(module: nn.RNNBase, inputs: tuple) -> tuple[object, list[torch.Tensor]] | None:
    """Re-run a unidirectional ``nn.RNN``/``LSTM``/``GRU`` one cell at a time, so that each hidden
    state h_t of each stacked layer is a tensor of its own (the fused kernel keeps them inside).
    Returns (the module's output, rebuilt; the hidden states, one (batch, hidden) tensor per
    (layer, t) in layer-major order), or None where this is not possible (packed sequences,
    bidirectional, projections)."""
    x = inputs[0] if inputs else None
    if (
        not isinstance(x, torch.Tensor)
        or module.bidirectional
        or getattr(module, "proj_size", 0)
        or x.dim() not in (2, 3)
    ):
        return None
    batched = x.dim() == 3
    if not batched:
        x = x.unsqueeze(1)
    elif module.batch_first:
        x = x.transpose(0, 1)  # (T, B, in)
    T, B = x.shape[0], x.shape[1]
    L, H = module.num_layers, module.hidden_size
    hx = inputs[1] if len(inputs) > 1 else None
    lstm = isinstance(module, nn.LSTM)
    if hx is None:
        zeros = x.new_zeros(L, B, H)
        h0, c0 = zeros, zeros
    elif lstm:
        h0, c0 = hx
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    else:
        h0 = hx.unsqueeze(1) if not batched else hx
    if isinstance(module, nn.GRU):
        cell = torch._VF.gru_cell
    elif lstm:
        cell = torch._VF.lstm_cell
    else:
        cell = torch._VF.rnn_tanh_cell if module.nonlinearity == "tanh" else torch._VF.rnn_relu_cell
    states: list[torch.Tensor] = []
    seq = list(x.unbind(0))
    h_last, c_last = [], []
    for layer in range(L):
        w = [getattr(module, f"weight_ih_l{layer}"), getattr(module, f"weight_hh_l{layer}")]
        b = (
            [getattr(module, f"bias_ih_l{layer}"), getattr(module, f"bias_hh_l{layer}")]
            if module.bias
            else [None, None]
        )
        h, c = h0[layer], (c0[layer] if lstm else None)
        out = []
        for t in range(T):
            if lstm:
                h, c = cell(seq[t], (h, c), w[0], w[1], b[0], b[1])
            else:
                h = cell(seq[t], h, w[0], w[1], b[0], b[1])
            out.append(h)
        states.extend(out)
        h_last.append(h)
        c_last.append(c)
        seq = out
        if layer < L - 1 and module.dropout and module.training:
            seq = [nn.functional.dropout(s, module.dropout, True) for s in seq]
    output = torch.stack(out, 0)  # (T, B, H)
    h_n = torch.stack(h_last, 0)
    c_n = torch.stack(c_last, 0) if lstm else None
    if not batched:
        output, h_n = output.squeeze(1), h_n.squeeze(1)
        c_n = c_n.squeeze(1) if lstm else None
    elif module.batch_first:
        output = output.transpose(0, 1)
    return (output, (h_n, c_n) if lstm else h_n), states


class _Patch:
    """Removes one function from a module's ``_after_forward`` list (a RemovableHandle's job)."""

    def __init__(self, module: nn.Module, key: object):
        self.module, self.key = module, key

    def _alone(self) -> dict | None:
        state = self.module.__dict__.get("_gradflow_forward")
        return state if state is not None and list(state["after"]) == [self.key] else None

    def suspend(self) -> None:
        """Put the original ``forward`` back for a while (only if no one else shares the wrapper)."""
        state = self._alone()
        if state is not None and not state["suspended"]:
            state["suspended"] = True
            if state["previous"] is None:
                self.module.__dict__.pop("forward", None)
            else:
                self.module.__dict__["forward"] = state["previous"]

    def resume(self) -> None:
        state = self.module.__dict__.get("_gradflow_forward")
        if state is not None and state["suspended"]:
            state["suspended"] = False
            self.module.__dict__["forward"] = state["wrapper"]

    def remove(self) -> None:
        state = self.module.__dict__.get("_gradflow_forward")
        if state is None or self.key not in state["after"]:
            return
        del state["after"][self.key]
        state["before"].pop(self.key, None)
        state["calls"] = (tuple(state["before"].values()), tuple(state["after"].values()))
        if not state["after"]:
            del self.module.__dict__["_gradflow_forward"]
            if state["previous"] is None:
                self.module.__dict__.pop("forward", None)
            else:
                self.module.__dict__["forward"] = state["previous"]


def _after_forward(module: nn.Module, fn, before=None) -> _Patch:
    """Call ``fn(module, args, output)`` after every ``module.forward`` (a non-None return value
    replaces the output), and ``before(module, args)`` before it: what forward (pre-)hooks do,
    without them. A module with any forward hook takes ``nn.Module``'s slow call path (about as
    costly as a small layer's matrix product); an instance attribute ``forward`` wrapping the
    original keeps the fast one. Several callers can share one module; ``remove()`` restores
    the original ``forward`` when the last one goes."""
    state = module.__dict__.get("_gradflow_forward")
    if state is None:
        previous = module.__dict__.get("forward")
        inner = module.forward
        state = {"after": {}, "before": {}, "previous": previous, "calls": ((), ()), "suspended": False}

        def forward(*args, **kwargs):
            pre, post = state["calls"]
            for f in pre:
                f(module, args)
            out = inner(*args, **kwargs)
            for f in post:
                result = f(module, args, out)
                if result is not None:
                    out = result
            return out

        state["wrapper"] = forward
        module.__dict__["_gradflow_forward"] = state
        module.__dict__["forward"] = forward
    elif state["suspended"]:
        state["suspended"] = False
        module.__dict__["forward"] = state["wrapper"]
    key = object()
    state["after"][key] = fn
    if before is not None:
        state["before"][key] = before
    state["calls"] = (tuple(state["before"].values()), tuple(state["after"].values()))
    return _Patch(module, key)


class Probe:
    """Context manager that records ``LayerStats`` for every layer of ``model``.

    Args:
        model: any module with at least one trainable weight of >= 2 dims (Linear, Conv,
            RNN/LSTM/GRU, attention, parametrised).
        activations: also record activation statistics and saturation (a little slower).
        every: record one forward/backward pass in ``every`` (passes 0, every, 2 every, ...; the
            first pass is always recorded); on the other passes the hooks return at once, so a
            probe left on a long training loop costs almost nothing. ``stats()`` then shows the
            latest recorded pass. An int >= 1.
        hidden_grads: for ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (unidirectional, no projection), run
            the recurrence one cell at a time under the probe (the same arithmetic, so the same
            outputs up to float rounding) so that ``hidden_grad_norms`` can report
            ``||dL/dh_t||`` at every time step. ``False`` leaves the fused kernel alone.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or a flag is not a bool.
        ValueError: no weight to watch, or ``every`` < 1.

    During a pass the hooks only keep references to what they need (layer inputs, activations,
    gradients); the statistics are computed when first read (``stats``, ``column``, ``table``),
    batched into one transfer, so a probe attached to every step of a training loop adds little
    to it. A module called twice in one recorded forward pass is refused (a ``RuntimeError``
    naming it): one row per layer cannot hold two calls. Entering a probe that is already
    entered is allowed; the hooks go when the outermost ``with`` exits (with them the hooks the
    latest pass put on its outputs: a backward run after the exit records nothing).
    """

    def __init__(
        self, model: nn.Module, *, activations: bool = True, every: int = 1, hidden_grads: bool = True
    ):
        self.model = _module_arg("model", model)
        self.track_activations = _bool_arg("activations", activations)
        self.every = _int_arg("every", every, 1)
        self.track_hidden = _bool_arg("hidden_grads", hidden_grads)
        self._weights = weights_of(model)
        if not self._weights:
            raise ValueError(
                "Probe found no layer: no trainable weight with >= 2 dims (Linear, Conv, RNN, "
                "attention) to watch"
            )
        self._depth = 0  # nesting of `with` blocks
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._pass_handles: list[torch.utils.hooks.RemovableHandle] = []
        self._order: list[int] | None = None
        self._events: dict[int, int] = {}  # id(module) -> exit order in the discovery pass
        self._discovery: list[torch.utils.hooks.RemovableHandle] = []
        self._weight_handles: dict[int, torch.utils.hooks.RemovableHandle] = {}
        self._rebuild: set[int] = set()  # nn.Linear rows whose dL/dW is rebuilt as G^T X
        self._big: set[int] = set()  # larger nn.Linear rows: .grad itself while unchanged
        # a recorded pass still to hook: once its backward is over, _grab takes .grad references
        self._grab_pending = False
        # (slot, module._parameters) of the nn.Linear rows of this recorded pass whose .grad was
        # None at its forward: their .grad after the backward is this pass's gradient (_grab)
        self._fresh: list[tuple[dict, dict]] = []
        self._large: tuple[int | None, list[dict]] = (None, [])  # (pass, its large-output slots)
        self._hooks: list[tuple[nn.Module, object]] | None = None
        # an activation whose output is exactly the next nn.Linear's input (checked in the first
        # pass) needs no hook of its own: that layer's hook reads it. layer -> (row, name)
        self._feeds: dict[int, tuple[int, str]] = {}
        self._fed: dict[int, tuple[nn.Module, int, str]] = {}
        self._last_act: tuple | None = None
        self._module_handles: list[torch.utils.hooks.RemovableHandle] = []
        self._toggled: tuple[list, bool] | None = None  # (handles, active) _start_pass last set
        self._passes = 0
        self._active = True
        self._in_pass = False
        self._calls: set[int] = set()
        self._current: int | None = None
        self._followed: set[int] = set()
        self._raw: dict[int, dict[str, object]] = {i: {} for i in range(len(self._weights))}
        self._cache: list[LayerStats] | None = None
        self._reducer: tuple | None = None  # (signature, _reduce.Reducer)
        self._act_names: dict[int, str] = {}
        self._hidden: dict[str, list[torch.Tensor | None]] = {}
        self._hidden_shape: dict[str, tuple[int, int]] = {}
        self._rows_of: dict[int, list[int]] = {}
        for i, w in enumerate(self._weights):
            self._rows_of.setdefault(id(w.module), []).append(i)
        self._names = {id(m): n for n, m in model.named_modules()}

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Probe:
        self._depth += 1
        if self._depth > 1:
            return self  # already watching: the outermost `with` owns the hooks
        try:
            self._install()
        except BaseException:
            self._depth -= 1
            self.remove()
            raise
        return self

    def _build_hooks(self) -> list[tuple[nn.Module, object]]:
        """(module, forward hook) pairs: built once, installed for each recorded pass."""
        out: list[tuple[nn.Module, object]] = []
        modules = {id(w.module): w.module for w in self._weights}
        for key, module in modules.items():
            rows = self._rows_of[key]
            single = len(rows) == 1 and not isinstance(module, (*_RECURRENT, nn.MultiheadAttention))
            if isinstance(module, _RECURRENT):
                out.append((module, self._recurrent_hook(rows)))
            else:
                out.append((module, self._layer_hook(rows[0], single)))
        for i, w in enumerate(self._weights):
            if w.parametrized:
                out.append((w.module.parametrizations[w.key], self._param_output_hook(i)))
        if self.track_activations:
            for module in self.model.modules():
                name = activations.name_of(module)
                if id(module) not in modules and name is not None:
                    self._act_names[id(module)] = name
                    out.append((module, self._act_hook))
        return out

    def _install_module_hooks(self) -> None:
        if not self._module_handles:
            self._module_handles = [_after_forward(m, fn) for m, fn in self._hooks]

    def _remove_module_hooks(self) -> None:
        for h in self._module_handles:
            h.remove()
        self._module_handles = []

    def _install(self) -> None:
        if self._hooks is None:
            self._hooks = self._build_hooks()
        self._install_module_hooks()
        for i, w in enumerate(self._weights):
            if not w.parametrized and i not in self._rebuild and i not in self._big:
                # (an nn.Linear that rebuilds its weight gradient needs none, see _freeze_order)
                handle = w.module._parameters[w.key].register_hook(self._weight_hook(i))
                self._weight_handles[i] = handle
        if self._order is None:
            self._start_discovery()
        self._handles.append(_after_forward(self.model, self._end_pass, before=self._start_pass))

    def __exit__(self, *exc: object) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0:
            self.remove()

    def _close_pass(self) -> None:
        """Keep the gradients that arrived inside the ``with`` block; forget the rest."""
        for slot in self._raw.values():
            if "out" in slot:
                if self._resolve(slot, drop=True):
                    self._cache = None

    def remove(self) -> None:
        """Remove every hook this probe installed, including those on the latest pass's outputs
        (``__exit__`` of the outermost ``with`` calls it)."""
        self._close_pass()
        for h in (
            *self._handles,
            *self._pass_handles,
            *self._discovery,
            *self._weight_handles.values(),
            *self._module_handles,
        ):
            h.remove()
        self._handles.clear()
        self._weight_handles.clear()
        self._module_handles = []
        self._pass_handles.clear()
        self._discovery.clear()
        self._depth = 0

    @staticmethod
    def _fast(w: Weight) -> bool:
        """nn.Linear's weight gradient is rebuilt at read time as G^T X (bit for bit autograd's)."""
        return type(w.module) is nn.Linear and w.key == "weight"

    # -- order ----------------------------------------------------------------------------
    def _start_discovery(self) -> None:
        self._events = {}
        for h in self._discovery:
            h.remove()
        self._discovery = [
            m.register_forward_hook(self._exit_event) for m in self.model.modules() if m is not self.model
        ]

    def _exit_event(self, module: nn.Module, inputs: object, out: object) -> None:
        self._events.setdefault(id(module), len(self._events))

    def _freeze_order(self) -> None:
        self._events.setdefault(id(self.model), len(self._events))
        parents: dict[int, nn.Module] = {}
        for module in self.model.modules():
            for child in module.children():
                parents.setdefault(id(child), module)
        never = len(self._events)

        def anchor(module: nn.Module) -> int:
            m: nn.Module | None = module
            while m is not None:
                if id(m) in self._events:
                    return self._events[id(m)]
                m = parents.get(id(m))
            return never

        keyed = sorted(range(len(self._weights)), key=lambda i: (anchor(self._weights[i].module), i))
        self._order = keyed
        for h in self._discovery:
            h.remove()
        self._discovery.clear()
        if self._fed:
            skip = {id(m) for m, _, _ in self._fed.values()}
            self._feeds.update({j: (i, name) for j, (_, i, name) in self._fed.items()})
            self._fed = {}
            self._last_act = None
            self._remove_module_hooks()
            self._hooks = [(m, fn) for m, fn in self._hooks if not (fn == self._act_hook and id(m) in skip)]
            self._install_module_hooks()
        # An nn.Linear whose forward ran rebuilds its weight gradient as G^T X when read (one
        # product per read instead of a copy per pass), where that product is small: batch x in
        # x out <= _REBUILD_MACS multiply-adds. A larger one reads its .grad itself, if nothing
        # changed it since the backward pass (its version counter says), and rebuilds otherwise.
        for i, h in list(self._weight_handles.items()):
            w = self._weights[i]
            rows = self._raw[i].pop("rows", None)
            if self._fast(w) and id(w.module) in self._events and rows is not None:
                h.remove()
                del self._weight_handles[i]
                if rows * w.module.weight.numel() <= _REBUILD_MACS:
                    self._rebuild.add(i)
                else:
                    self._big.add(i)

    # -- hooks ----------------------------------------------------------------------------
    def _start_pass(self, module: nn.Module, inputs: object) -> None:
        self._active = self._order is None or self._passes % self.every == 0
        self._passes += 1
        if self.every > 1:  # the other passes run the modules' own forward, unwrapped
            # only when recording starts or stops, or the wrappers are new (a Python call per
            # layer on every pass would cost more than the suspended hooks save)
            toggled = self._toggled
            if toggled is None or toggled[0] is not self._module_handles or toggled[1] != self._active:
                for h in self._module_handles:
                    if self._active:
                        h.resume()
                    else:
                        h.suspend()
                self._toggled = (self._module_handles, self._active)
        self._in_pass = True
        self._calls.clear()
        self._current = None
        if self._active:
            self._pass_handles = []
            self._cache = None
            # the weights whose .grad this pass's backward will leave: taken once it is over
            self._fresh = []
            self._grab_pending = self._order is not None and bool(
                self._big or (self.every > 1 and self._rebuild)
            )
        if self._order is None:
            self._events = {}
            self._followed = set()
            self._fed = {}
            self._last_act = None

    def _end_pass(self, module: nn.Module, inputs: object, out: object) -> None:
        self._in_pass = False
        if self._order is None:
            self._freeze_order()

    def _check_once(self, module: nn.Module) -> None:
        if self._in_pass:
            if id(module) in self._calls:
                self._refuse(module)
            self._calls.add(id(module))

    def _refuse(self, module: nn.Module) -> None:
        raise RuntimeError(
            f"Probe: module {self._names.get(id(module)) or type(module).__name__!r} ran twice in "
            "one forward pass; a Probe keeps one row per layer and cannot tell the calls apart. "
            "Give each call its own module, or leave this model unprobed"
        )

    def _grad_of(self, out: torch.Tensor, fn) -> None:
        """Call fn(dL/d out) in the backward pass (a pre-hook on out's grad_fn), while entered."""
        node = out.grad_fn
        if node is None:
            handle = out.register_hook(functools.partial(self._call_if_entered, fn))
        else:
            handle = node.register_prehook(functools.partial(self._node_grad, fn, out.output_nr))
        self._pass_handles.append(handle)

    def _call_if_entered(self, fn, grad: torch.Tensor) -> None:
        if self._depth:
            fn(grad)

    def _node_grad(self, fn, k: int, grads: tuple) -> None:
        if self._depth:
            fn(grads[k])

    def _linear_grad(self, slot: dict, token: int, k: int, grads: tuple) -> None:
        """dL/dz of an nn.Linear in pass ``token``, with the input x that pass gave it: dL/dW =
        G^T X is rebuilt when read (the weight hook, which runs after this one in the first
        pass, may set a copy instead). x waits in the slot, tagged with its pass, not in this
        hook: a hook holding x would keep it alive as long as the graph, which a retained output
        keeps alive, and with it every activation of the previous pass. Where another forward
        pass has replaced x since (two forwards, one backward), G has no X to pair with."""
        if self._depth:
            if self._large[0] == token:  # this pass's backward has begun: the previous pass's
                # dL/dz and inputs of the large layers go now, not one by one as the new ones
                # arrive (held, they keep the allocator from reusing their cache-warm memory)
                for other in self._large[1]:
                    other["g"] = other["x"] = other["wg"] = None
                self._large = (None, [])
            seen = slot.get("x_seen")
            slot["g"], slot["wg"] = grads[k], None
            slot["x"] = seen[1] if seen is not None and seen[0] == token else None
            self._cache = None

    def _set_grad(self, slot: dict, grad: torch.Tensor) -> None:
        slot["g"] = grad
        self._cache = None

    def _layer_hook(self, i: int, single: bool):
        fast = self._fast(self._weights[i])
        slot = self._raw[i]
        rebuild = self._rebuild
        big = self._big
        feeds = self._feeds
        every = self.every
        plan: list = []  # (feed slot, feed name, keeps y, keeps x, needs "fresh"), once frozen

        def hook(module: nn.Module, inputs: tuple, out: object) -> None:
            if self._in_pass:
                if id(module) in self._calls:
                    self._refuse(module)
                self._calls.add(id(module))
            if not self._active:
                return
            self._current = i if single else None
            if self._order is None:  # the first pass: find out what this layer is fed
                if self.track_activations and inputs:
                    last = self._last_act
                    if last is not None and inputs[0] is last[2]:
                        self._fed[i] = (last[0], last[1], last[3])
                    self._last_act = None
                keeps_y, keeps_x, fresh = self.track_activations, fast, False
            else:
                if not plan:  # what the frozen order decided, looked up once
                    feed = feeds.get(i) if self.track_activations else None
                    plan.extend(
                        (
                            None if feed is None else self._raw[feed[0]],
                            None if feed is None else feed[1],
                            self.track_activations and i not in self._followed,
                            fast and (i in rebuild or i in big),
                            i in big or (i in rebuild and every > 1),
                        )
                    )
                fed, fed_name, keeps_y, keeps_x, fresh = plan
                if fed is not None and inputs:  # the activation before this layer, from its input
                    fed["y"], fed["z"], fed["act"] = inputs[0], None, fed_name
            if not single or not isinstance(out, torch.Tensor):
                return
            # references only (no copies): reduced under no_grad when read, see stats()
            if keeps_y:
                slot["y"], slot["act"], slot["z"] = out, None, None
            if not out.requires_grad:
                return
            if self._order is None and keeps_x:
                slot["rows"] = inputs[0].numel() // max(inputs[0].shape[-1], 1)
            if fresh:
                slot["wref"] = None
                if module._parameters["weight"].grad is None:
                    self._fresh.append((slot, module._parameters))
            if self._grab_pending and out.grad_fn is not None:  # one hook per pass
                self._grab_pending = False
                self._pass_handles.append(out.grad_fn.register_prehook(self._queue_grab))
            prev = slot.get("out")
            if prev is not None:  # the previous pass's dL/dz, if its backward ran
                g = prev.grad
                if g is not None:
                    slot["g"] = g
                    px = slot["out_x"]
                    if px is not None:
                        slot["x"], slot["wg"] = px, None
            if out.numel() < _RETAIN_MAX:
                # dL/dz arrives in out.grad (retain_grad: a C++ hook, no Python call in the
                # backward pass); it is picked up when read, or at the next pass, or at exit
                out.retain_grad()
                slot["out"] = out
                slot["out_x"] = inputs[0] if keeps_x else None
            else:  # a large dL/dz: a reference (retain_grad would copy it)
                slot["out"] = None
                token = self._passes
                slot["x_seen"] = (token, inputs[0] if keeps_x else None)  # (see _linear_grad)
                if self._large[0] != token:
                    self._large = (token, [])
                self._large[1].append(slot)
                node = out.grad_fn
                if node is not None:
                    self._pass_handles.append(
                        node.register_prehook(
                            functools.partial(self._linear_grad, slot, token, out.output_nr)
                        )
                    )
                else:
                    self._grad_of(out, functools.partial(self._set_grad, slot))

        return hook

    def _queue_grab(self, grads: tuple) -> None:
        if self._depth:  # (runs in the backward pass: _grab runs once the backward is over)
            torch.autograd.Variable._execution_engine.queue_callback(self._grab)

    def _grab(self) -> None:
        """Once a recorded backward pass is over: a reference to the .grad of each nn.Linear
        that ran in it with no .grad before, if nothing has changed that .grad in place since
        autograd made it (its version counter is still 0: not DDP's averaging, a hook's
        scaling, clipping); a read uses it while the counter stays 0, and rebuilds G^T X
        otherwise. One call per pass instead of a hook per weight."""
        for slot, params in self._fresh:
            g = params["weight"].grad
            slot["wref"] = (g, 0) if g is not None and g._version == 0 else None
            slot["wg"] = None
        self._fresh = []
        self._cache = None

    @staticmethod
    def _resolve(slot: dict, drop: bool = False) -> bool:
        """Move a pass's dL/dz (and, for nn.Linear, its input) from the output's .grad into the
        slot once the backward pass has reached it. Returns whether it had."""
        out = slot.get("out")
        if out is None:
            slot.pop("out", None)
            return False
        g = out.grad
        if g is None and not drop:
            return False
        x = slot.pop("out_x", None)
        del slot["out"]
        if g is None:
            return False
        slot["g"] = g
        if x is not None:
            slot["x"], slot["wg"] = x, None
        return True

    def _param_output_hook(self, i: int):
        def hook(module: nn.Module, inputs: object, w: torch.Tensor) -> None:
            if self._active and isinstance(w, torch.Tensor) and w.requires_grad:
                self._grad_of(w, self._weight_hook(i))

        return hook

    def _recurrent_hook(self, rows: list[int]):
        def hook(module: nn.Module, inputs: tuple, out: object) -> object:
            self._check_once(module)
            if not self._active:
                return None
            self._current = None
            if not self.track_hidden or not torch.is_grad_enabled():
                return None
            result = _unrolled(module, inputs)
            if result is None:
                return None
            new_out, states = result
            name = self._names[id(module)] or type(module).__name__
            grads: list[torch.Tensor | None] = [None] * len(states)
            self._hidden[name] = grads
            self._hidden_shape[name] = (module.num_layers, len(states) // module.num_layers)
            for k, h in enumerate(states):
                if h.requires_grad:
                    self._pass_handles.append(h.register_hook(self._hidden_hook(grads, k)))
            self._cache = None
            return new_out

        return hook

    def _hidden_hook(self, grads: list, k: int):
        def hook(g: torch.Tensor) -> None:
            if self._depth:
                grads[k] = g.detach()

        return hook

    def _act_hook(self, module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        i = self._current
        if i is None or not self._active or not isinstance(out, torch.Tensor):
            return
        self._current = None  # only the first activation after a layer belongs to it
        if self._order is None:
            self._followed.add(i)
        slot = self._raw[i]
        name = self._act_names[id(module)]
        # Sigmoid, tanh and ReLU keep their output for the backward pass, and autograd refuses to
        # run it if that output was changed in place: a reference is as safe as a copy there.
        # Other activations' outputs and inputs are copied.
        if name in _SLOPE_FROM_OUTPUT:
            slot["y"], slot["z"] = out, None
            if self._order is None:
                self._last_act = (module, i, out, name)
        else:
            slot["y"], slot["z"] = out.detach().clone(), inputs[0].detach().clone()
        slot["act"] = name

    def _weight_hook(self, i: int):
        slot = self._raw[i]

        def hook(grad: torch.Tensor) -> None:
            if self._active and self._depth:
                # a copy: later clipping or accumulation must not change it
                slot["wg"] = grad.detach().clone()
                self._cache = None

        return hook

    # -- results --------------------------------------------------------------------------
    @property
    def order(self) -> list[int]:
        """Row indices (into ``weights_of(model)``) in depth order (registration order until a
        forward pass has completed)."""
        return self._order if self._order is not None else list(range(len(self._weights)))

    @property
    def names(self) -> list[str]:
        """Layer names in depth order."""
        return [self._weights[i].name for i in self.order]

    @torch.no_grad()
    def stats(self) -> list[LayerStats]:
        """The latest statistics of every layer, input side first.

        Computed on the first read after a pass (then kept), by a ``_reduce.Reducer``: on the
        CPU, tensors of one size are stacked and reduced together (a row-wise reduction gives
        the very bits of the same reduction on each tensor alone); every number comes to Python
        in one transfer.

        A layer's dL/dW is the raw gradient of the latest recorded pass, before clipping: the
        ``.grad`` autograd left, if its version counter says nothing changed it in place, else
        rebuilt (``nn.Linear``: G^T X) or copied during the pass. A change through
        ``p.grad.data`` (``p.grad.data.mul_(c)``, as older code clips) does not move the
        counter: clip with ``torch.nn.utils.clip_grad_norm_`` or in place on ``p.grad``. Two
        recorded forward passes and one backward (a summed loss) give the latest forward's
        dL/dz; dL/dW is then the sum over both only while ``.grad`` is untouched (after
        clipping: a large layer's is NaN, a small one's that of the latest forward alone).
        """
        arrived = False
        for slot in self._raw.values():  # (what _resolve does, inline: this runs on every read)
            if "out" in slot:
                out = slot["out"]
                grad = None if out is None else out.grad
                if grad is not None or out is None:
                    del slot["out"]
                    x = slot.pop("out_x", None)
                    if grad is not None:
                        slot["g"] = grad
                        arrived = True
                        if x is not None:
                            slot["x"], slot["wg"] = x, None
        if self._cache is not None and not arrived:
            return list(self._cache)
        order = self.order
        raws = [self._raw[i] for i in order]
        wg = [raw.get("wg") for raw in raws]
        for p, w in enumerate(wg):
            if w is None:
                wg[p] = raws[p]["wg"] = self._weight_grad(raws[p])
        g = [raw.get("g") for raw in raws]
        y = [raw.get("y") for raw in raws]
        acts = [raw.get("act") for raw in raws]
        sat = [None if a is None else self._slope_source(raw) for a, raw in zip(acts, raws)]
        key = _reduce.signature(wg, g, y, sat)
        if self._reducer is None or self._reducer[0] != key:
            self._reducer = (key, _reduce.Reducer(wg, g, y, sat))
        values = self._reducer[1].run(wg, g, y, sat)
        weights = self._weights
        out = [LayerStats(weights[i].name, *v, activation=a) for i, v, a in zip(order, values, acts)]
        self._cache = out
        return list(out)

    @staticmethod
    def _slope_source(raw: dict) -> tuple | None:
        """How a layer's saturation is measured: None (no known activation after it), from the
        activation's output ("out", name, None), or from its input ("z", name, z)."""
        name = raw.get("act")
        if name is None or raw.get("y") is None:
            return None
        z = raw.get("z")
        return ("out", name, None) if z is None and name in _SLOPE_FROM_OUTPUT else ("z", name, z)

    @staticmethod
    def _weight_grad(raw: dict) -> torch.Tensor | None:
        """A layer's dL/dW: the live .grad if untouched since the backward pass, else rebuilt as
        G^T X from the layer's dL/dz and input (nn.Linear); None if neither is there."""
        ref = raw.get("wref")
        if ref is not None:
            g, version = ref
            # unchanged in place since the backward pass (its version counter says): still this
            # pass's dL/dW, even where .grad has since moved on to a new tensor (a
            # zero_grad(set_to_none=True) and later passes, as with every > 1)
            if g._version == version:
                return g
        g, x = raw.get("g"), raw.get("x")
        if g is None or x is None:
            return None
        if g.dim() != 2:
            g = g.reshape(-1, g.shape[-1])
        if x.dim() != 2:
            x = x.reshape(-1, x.shape[-1])
        return g.t().mm(x)

    def column(self, stat: str) -> list[float]:
        """One statistic for every layer, input side first.

        Args:
            stat: one of ``STAT_NAMES``.
        """
        if stat not in STAT_NAMES:
            raise ValueError(f"unknown statistic {stat!r}; valid: {', '.join(STAT_NAMES)}")
        return [getattr(s, stat) for s in self.stats()]

    def table(
        self,
        stats: Iterable[str] = ("weight_grad_norm", "preact_grad_rms", "act_mean", "act_std", "saturation"),
    ) -> str:
        """A fixed-width text table of the latest statistics (3 significant digits).

        Args:
            stats: names from ``STAT_NAMES``, one column each.
        """
        if isinstance(stats, str):
            raise TypeError("stats must be a list of statistic names, not one string")
        stats = list(stats)
        bad = [s for s in stats if s not in STAT_NAMES]
        if bad or not stats:
            raise ValueError(f"stats must be a non-empty list from {', '.join(STAT_NAMES)}, got {stats!r}")
        rows = self.stats()
        width = max(len(r.name) for r in rows)
        head = f"{'layer':<{width}}  " + "  ".join(f"{s:>20}" for s in stats)
        lines = [head]
        for r in rows:
            lines.append(f"{r.name:<{width}}  " + "  ".join(f"{getattr(r, s):>20.3g}" for s in stats))
        return "\n".join(lines)

    @property
    def recurrent_names(self) -> list[str]:
        """Names of the recurrent modules whose hidden-state gradients were recorded."""
        return list(self._hidden)

    def hidden_grad_norms(self, layer: str, *, stack: int = -1) -> torch.Tensor:
        """``||dL/dh_t||`` (Frobenius norm over batch and hidden units) at every time step t of a
        recurrent module in the latest recorded pass: the total gradient reaching the hidden state
        h_t, through the output at t and through h_(t+1). A CPU float tensor of shape (T,), t = 1
        first; NaN where no gradient reached h_t.

        Args:
            layer: the recurrent module's name (``probe.recurrent_names``, e.g. "lstm").
            stack: which layer of a stacked module (``num_layers`` > 1); -1, the top, by default.

        Raises:
            ValueError: ``layer`` was not recorded (not recurrent, bidirectional, packed input,
                ``hidden_grads=False``, or no pass yet), or ``stack`` is out of range.
        """
        if not isinstance(layer, str) or layer not in self._hidden:
            raise ValueError(
                f"layer must name a recurrent module recorded by this probe "
                f"{self.recurrent_names}, got {layer!r} (recorded: unidirectional "
                f"RNN/LSTM/GRU without projection, with hidden_grads=True, after a pass)"
            )
        n_layers, steps = self._hidden_shape[layer]
        stack = _int_arg("stack", stack, -n_layers, n_layers - 1) % n_layers
        grads = self._hidden[layer][stack * steps : (stack + 1) * steps]
        norms = [torch.linalg.vector_norm(g).float() if g is not None else None for g in grads]
        known = [v for v in norms if v is not None]
        values = torch.stack(known).cpu().tolist() if known else []
        it = iter(values)
        return torch.tensor([next(it) if v is not None else math.nan for v in norms])


def measure(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module | None = None,
    *,
    activations: bool = True,
) -> list[LayerStats]:
    """One forward and backward pass of ``model`` on (x, y) under a Probe; returns its stats.

    Gradients accumulate into ``.grad`` as with any backward; the model is zero_grad-ed first.
    ``x`` and ``y`` are moved to the model's device.

    Args:
        model: any module.
        x: a batch of inputs (a tensor with at least one example).
        y: targets for ``loss_fn``.
        loss_fn: a callable ``loss_fn(output, y)`` returning a scalar; default cross-entropy.
        activations: record activation statistics too.

    Raises:
        TypeError: a non-module model, non-tensor data, a loss_fn that is not callable.
        ValueError: empty data, or a loss that is not a single number.
    """
    _module_arg("model", model)
    _data_arg("x", x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (an nn.Module loss), got {type(loss_fn).__name__}")
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    x, y = to_model_device(model, x, y)
    model.zero_grad(set_to_none=True)
    with Probe(model, activations=activations) as probe:
        loss = loss_fn(model(x), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(
                "loss_fn must return a single number (a one-element tensor), got "
                f"{type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}"
            )
        loss.backward()
    return probe.stats()


def _activation_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if activations.name_of(m) is not None]


@torch.no_grad()
def dead_fraction(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> list[float]:
    """Per activation module, in depth order: fraction of units that pass no gradient for *any*
    input in ``x`` (local slope exactly 0 on the whole data set, e.g. a ReLU unit that is negative
    for every example). A unit that is zero on one batch is not dead. ``x`` is moved to the
    model's device; the model runs in eval mode (its mode is restored).

    Args:
        model: any module with activation modules from ``gradflow.activations``.
        x: the whole data set (or a large sample), shape (n, ...), n >= 1.
        batch_size: rows per forward pass (an int >= 1).

    Raises:
        TypeError: a non-module model, non-tensor ``x``, non-integer ``batch_size``.
        ValueError: empty ``x``, ``batch_size`` < 1, or a model without activation modules.
    """
    _module_arg("model", model)
    _data_arg("x", x)
    batch_size = _int_arg("batch_size", batch_size, 1)
    if not _activation_modules(model):
        raise ValueError("dead_fraction found no activation module (relu, tanh, ...) in model")
    (x,) = to_model_device(model, x)
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

    for module in _activation_modules(model):
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return [1.0 - alive[k].float().mean().item() for k in order]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every layer weight (by row name, see ``weights_of``), to compare after an
    optimizer step.

    Args:
        model: any module with at least one weight ``weights_of`` finds.
    """
    found = weights_of(model)
    if not found:
        raise ValueError("snapshot found no trainable weight with >= 2 dims in model")
    return {w.name: getattr(w.module, w.key).detach().clone() for w in found}


def update_ratios(model: nn.Module, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """||W_now - W_before|| / ||W_before|| for every layer in ``before``: the relative size of the
    update actually applied (~1e-3 per step is the healthy range for SGD, Karpathy's rule of thumb).

    Args:
        model: the module ``before`` was taken from.
        before: ``snapshot(model)`` taken before the update.

    Raises:
        TypeError: ``before`` is not a dict of tensors.
        ValueError: a name in ``before`` is not a layer of ``model``, or its shape changed.
    """
    current = {w.name: w for w in weights_of(model)}
    if not isinstance(before, dict):
        raise TypeError(f"before must be the dict snapshot(model) returns, got {type(before).__name__}")
    out = {}
    for name, w0 in before.items():
        if name not in current:
            raise ValueError(
                f"before has layer {name!r}, which model does not have; its layers: {', '.join(current)}"
            )
        if not isinstance(w0, torch.Tensor):
            raise TypeError(f"before[{name!r}] must be a tensor, got {type(w0).__name__}")
        w = getattr(current[name].module, current[name].key).detach()
        if w.shape != w0.shape:
            raise ValueError(f"before[{name!r}] has shape {tuple(w0.shape)}, the layer {tuple(w.shape)}")
        w0 = w0.to(w.device)
        out[name] = ((w - w0).norm() / w0.norm().clamp_min(1e-12)).item()
    return out


@torch.no_grad()
def dead_fraction_per_batch(
    model: nn.Module, x: torch.Tensor, batch_size: int, *, n_batches: int = 20, seed: int = 0
) -> list[float]:
    """The shortcut count of dead units: a unit is called dead if its slope is zero for every
    example of *one batch*. Per activation module (depth order), the average of that fraction over
    ``n_batches`` random batches. It overstates death: a unit silent on 64 examples may fire on
    the 65th. Compare with ``dead_fraction`` (the whole data set), which it can only exceed.

    Args:
        model: any module with activation modules from ``gradflow.activations``.
        x: the data set, shape (n, ...), n >= 1.
        batch_size: examples per batch (1 to n).
        n_batches: how many random batches to average over (>= 1).
        seed: seed of a private generator that draws the batches (an int >= 0).
    """
    _module_arg("model", model)
    _data_arg("x", x)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or not 1 <= batch_size <= len(x)
    ):
        raise ValueError(f"batch_size must be an int between 1 and {len(x)}, got {batch_size!r}")
    batch_size = int(batch_size)
    if isinstance(n_batches, bool) or not isinstance(n_batches, numbers.Integral) or n_batches < 1:
        raise ValueError(f"n_batches must be an int >= 1, got {n_batches!r}")
    n_batches = int(n_batches)
    seed = _int_arg("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    totals: list[float] | None = None
    for _ in range(n_batches):
        idx = torch.randperm(len(x), generator=gen)[:batch_size].to(x.device)
        fractions = dead_fraction(model, x[idx], batch_size=batch_size)
        totals = fractions if totals is None else [a + b for a, b in zip(totals, fractions)]
    return [t / n_batches for t in totals]
