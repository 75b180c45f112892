"""Plain-language findings from probe statistics, each with the fix the course teaches. Usage::

    stats = gradflow.probes.measure(model, x, y)
    print(gradflow.diagnose.report(stats))
    # vanishing: layer 1 (hidden.0.linear) gets 3.1e-06 of the output layer's gradient ...

A finding compares numbers that ``gradflow.probes`` already records: the gradient at the first
layer against the gradient at the last (output) layer, and each layer's saturation fraction. The
thresholds are rules of thumb, written as arguments so a reader can see and change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from . import activations
from .probes import STAT_NAMES, LayerStats

FIXES = {
    "vanishing": "use a non-saturating activation (ReLU family, ch. 03), an init that keeps the "
                 "per-layer gain at 1 (Xavier for tanh, He for ReLU, ch. 04), normalization "
                 "(ch. 05) or residual connections (ch. 07)",
    "exploding": "lower the init gain (ch. 04), normalize (ch. 05) and clip the gradient norm "
                 "(ch. 06)",
    "saturated": "keep pre-activations near 0: a smaller init scale or a zero-centred activation "
                 "(ch. 04), normalization before the activation (ch. 05), or ReLU-family units "
                 "(ch. 03)",
    "dead": "a smaller learning rate, a positive bias init, or Leaky ReLU / ELU (ch. 03)",
    "healthy": "nothing to fix in the gradient flow",
}


@dataclass
class Finding:
    """One diagnosis: its kind, the layer it is about (None: the whole model), the measured value
    that triggered it, a one-line message and the fix the course teaches."""
    kind: str
    layer: str | None
    value: float
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}\n    fix: {self.fix}"


def gradient_ratio(stats: Sequence[LayerStats], stat: str = "preact_grad_rms") -> float:
    """First layer's ``stat`` divided by the last layer's (layers in depth order, input first).

    Args:
        stats: per-layer statistics from ``gradflow.probes`` (``Probe.stats()`` or ``measure``).
        stat: a gradient statistic: "preact_grad_rms", "preact_grad_norm", "weight_grad_norm" or
            "weight_grad_mean_abs".

    Raises:
        ValueError: fewer than two layers, an unknown statistic, or a missing/zero last value.
    """
    if stat not in STAT_NAMES or "grad" not in stat:
        valid = [s for s in STAT_NAMES if "grad" in s]
        raise ValueError(f"stat must be a gradient statistic {valid}, got {stat!r}")
    if len(stats) < 2:
        raise ValueError(f"a gradient ratio needs at least 2 layers, got {len(stats)}")
    first, last = getattr(stats[0], stat), getattr(stats[-1], stat)
    if not math.isfinite(first) or not math.isfinite(last):
        raise ValueError(f"{stat} was not recorded for the first or the last layer "
                         f"({first}, {last}): run a backward pass under the probe first")
    if last == 0:
        raise ValueError(f"the last layer's {stat} is 0: no gradient reached the output layer")
    return first / last


def findings(stats: Sequence[LayerStats], *, stat: str = "preact_grad_rms",
             vanishing: float = 1e-3, exploding: float = 1e3, saturated: float = 0.5,
             dead: Sequence[float] | None = None, dead_threshold: float = 0.1) -> list[Finding]:
    """Turn per-layer probe statistics into findings; "healthy" when nothing is wrong.

    Args:
        stats: per-layer statistics, input side first (``gradflow.probes.measure``).
        stat: the gradient statistic compared between the first and the last layer.
        vanishing: a first/last ratio below this is reported as vanishing.
        exploding: a first/last ratio above this is reported as exploding.
        saturated: a layer whose fraction of saturated units (slope < 5% of the maximum) is above
            this is reported as saturated.
        dead: optional per-activation dead fractions from ``gradflow.probes.dead_fraction``
            (measured over a whole data set; a unit silent on one batch is not dead).
        dead_threshold: a dead fraction above this is reported.
    """
    if not 0 < vanishing < 1 < exploding:
        raise ValueError(f"need 0 < vanishing < 1 < exploding, got {vanishing}, {exploding}")
    if not 0 <= saturated <= 1 or not 0 <= dead_threshold <= 1:
        raise ValueError(f"saturated and dead_threshold are fractions in [0, 1], got "
                         f"{saturated}, {dead_threshold}")
    ratio = gradient_ratio(stats, stat)
    n = len(stats)
    first = f"layer 1 ({stats[0].name})"
    out: list[Finding] = []
    if ratio < vanishing:
        out.append(Finding("vanishing", stats[0].name, ratio,
                           f"vanishing: {first} gets {ratio:.1e} of the output layer's gradient "
                           f"({stat}, {n} layers)", FIXES["vanishing"]))
    elif ratio > exploding:
        out.append(Finding("exploding", stats[0].name, ratio,
                           f"exploding: {first} gets {ratio:.1e} times the output layer's "
                           f"gradient ({stat}, {n} layers)", FIXES["exploding"]))
    for i, s in enumerate(stats, start=1):
        if math.isfinite(s.saturation) and s.saturation > saturated:
            out.append(Finding("saturated", s.name, s.saturation,
                               f"saturated: layer {i} ({s.name}) has {s.saturation:.0%} of its "
                               f"units at a slope below 5% of the activation's maximum",
                               FIXES["saturated"]))
    for i, frac in enumerate(dead or [], start=1):
        if frac > dead_threshold:
            out.append(Finding("dead", f"activation {i}", frac,
                               f"dead units: activation {i} has {frac:.0%} of its units silent "
                               f"on every input", FIXES["dead"]))
    if not out:
        out.append(Finding("healthy", None, ratio,
                           f"healthy: {first} gets {ratio:.1e} of the output layer's gradient, "
                           f"no saturated layer", FIXES["healthy"]))
    return out


def report(stats: Sequence[LayerStats], **options: object) -> str:
    """``findings`` as text, one finding (and its fix) per paragraph.

    Args:
        stats: per-layer statistics, input side first.
        options: passed to ``findings``.
    """
    return "\n".join(str(f) for f in findings(stats, **options))


@torch.no_grad()
def activation_values(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every activation module (sigmoid, tanh, ReLU, ...) of ``model`` on ``x``,
    in the order they run: one tensor per activation layer, for histograms.

    Args:
        model: any module built from ``gradflow.activations`` modules (or torch's equivalents).
        x: a batch of inputs.
    """
    values: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        values.append(out.detach().clone())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if activations.name_of(m) is not None]
    if not handles:
        raise ValueError("activation_values found no activation module (sigmoid, tanh, relu, ...)")
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return values
