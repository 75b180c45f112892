"""Plain-language findings from probe statistics, each with the fix the course teaches. Usage::

    stats = gradflow.probes.measure(model, x, y)
    print(gradflow.diagnose.report(stats))
    # vanishing: layer 1 (hidden.0.linear) gets 3.1e-06 of the output layer's gradient ...

A finding compares numbers that ``gradflow.probes`` already records: the gradient at the first
layer against the gradient at the last (output) layer, each layer's saturation fraction, and
(optionally) dead-unit fractions measured over a data set. The thresholds are rules of thumb,
written as arguments so a reader can see and change them; saturation has one per activation
family (``SATURATION_THRESHOLDS``): half of a healthy ReLU's outputs are 0 on any batch, which is
its normal regime, not saturation; a ReLU unit is *dead* only when it is 0 on every example
(``gradflow.probes.dead_fraction``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import activations
from .core import to_model_device
from .probes import STAT_NAMES, LayerStats, _data_arg, _float_arg, _module_arg

# Saturation threshold per activation family: a layer whose fraction of units at |slope| < 5% of
# the maximum exceeds it is reported. None: saturation is not a finding for that family (ReLU,
# Leaky ReLU and PReLU switch off on half their inputs by design; their failure is death, counted
# over a whole data set). Layers whose activation is unknown use the ``saturated`` argument.
SATURATION_THRESHOLDS: dict[str, float | None] = {
    "sigmoid": 0.5,
    "tanh": 0.5,
    "elu": 0.5,
    "gelu": 0.5,
    "silu": 0.5,
    "relu": None,
    "leaky_relu": None,
    "prelu": None,
    "linear": None,
}
# activations for which "use ReLU-family units" is no advice
_RELU_LIKE = {"relu", "leaky_relu", "prelu", "elu", "gelu", "silu"}

FIXES = {
    "vanishing": "use a non-saturating activation (ReLU family, ch. 03), an init that keeps the "
    "per-layer gain at 1 (Xavier for tanh, He for ReLU, ch. 04), normalization "
    "(ch. 05) or residual connections (ch. 07)",
    "exploding": "lower the init gain (ch. 04), normalize (ch. 05) and clip the gradient norm (ch. 06)",
    "saturated": "keep pre-activations near 0: a smaller init scale or a zero-centred activation "
    "(ch. 04), normalization before the activation (ch. 05), or ReLU-family units "
    "(ch. 03)",
    "dead": "a smaller learning rate, a positive bias init, or Leaky ReLU / ELU (ch. 03)",
    "healthy": "nothing to fix in the gradient flow",
}
# the same advice for a model already built from ReLU-like units (no "use ReLU" there)
FIXES_RELU_LIKE = {
    "vanishing": "an init that keeps the per-layer gain at 1 (He for ReLU, ch. 04), normalization "
    "(ch. 05) or residual connections (ch. 07)",
    "saturated": "keep pre-activations near 0: a smaller init scale (ch. 04) or normalization "
    "before the activation (ch. 05)",
}


def _check_stats(stats: object) -> list[LayerStats]:
    if isinstance(stats, (str, bytes)) or not hasattr(stats, "__len__"):
        raise TypeError(
            f"stats must be a list of LayerStats (Probe.stats() or probes.measure), "
            f"got {type(stats).__name__}"
        )
    stats = list(stats)
    bad = [type(s).__name__ for s in stats if not isinstance(s, LayerStats)]
    if bad:
        raise TypeError(f"stats must hold LayerStats only, got {bad[0]}")
    return stats


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
    stats = _check_stats(stats)
    if not isinstance(stat, str) or stat not in STAT_NAMES or "grad" not in stat:
        valid = [s for s in STAT_NAMES if "grad" in s]
        raise ValueError(f"stat must be a gradient statistic {valid}, got {stat!r}")
    if len(stats) < 2:
        raise ValueError(f"a gradient ratio needs at least 2 layers, got {len(stats)}")
    first, last = getattr(stats[0], stat), getattr(stats[-1], stat)
    for where, value, s in (("first", first, stats[0]), ("last", last, stats[-1])):
        if math.isinf(value):
            raise ValueError(
                f"the {where} layer's {stat} is {value}: the gradient overflowed "
                f"(exploding, or a non-finite loss)"
            )
        if math.isnan(value):
            if math.isfinite(s.act_mean) or math.isfinite(s.weight_grad_norm):
                raise ValueError(
                    f"the {where} layer's {stat} is NaN while other statistics were "
                    f"recorded: the pass produced NaN (check the input, the loss and "
                    f"the weights for NaN/inf), or no backward pass ran under the probe"
                )
            raise ValueError(
                f"{stat} was not recorded for the {where} layer ({where} = {value}): "
                f"run a forward and a backward pass under the probe first, with "
                f"finite inputs (a NaN input gives NaN everywhere)"
            )
    if last == 0:
        raise ValueError(f"the last layer's {stat} is 0: no gradient reached the output layer")
    return first / last


def findings(
    stats: Sequence[LayerStats],
    *,
    stat: str = "preact_grad_rms",
    vanishing: float = 1e-3,
    exploding: float = 1e3,
    saturated: float | dict[str, float | None] = 0.5,
    dead: Sequence[float] | None = None,
    dead_threshold: float = 0.1,
) -> list[Finding]:
    """Turn per-layer probe statistics into findings; "healthy" when nothing is wrong.

    Args:
        stats: per-layer statistics, input side first (``gradflow.probes.measure``).
        stat: the gradient statistic compared between the first and the last layer.
        vanishing: a first/last ratio below this is reported as vanishing (0 < vanishing < 1).
        exploding: a first/last ratio above this is reported as exploding (> 1).
        saturated: the saturation threshold, a fraction in [0, 1]: a layer whose fraction of units
            at ``abs(slope)`` < 5% of the maximum is above it is reported. A number applies to every
            saturating family (sigmoid, tanh, ELU, GELU, SiLU) and to layers of unknown
            activation; a dict ``{family: fraction or None}`` overrides ``SATURATION_THRESHOLDS``
            family by family. ReLU, Leaky ReLU and PReLU layers are never called saturated.
        dead: optional per-activation dead fractions from ``gradflow.probes.dead_fraction``
            (measured over a whole data set; a unit silent on one batch is not dead), each a
            fraction in [0, 1].
        dead_threshold: a dead fraction above this is reported (in [0, 1]).

    Raises:
        TypeError: ``stats`` is not a list of ``LayerStats``; a threshold is not a number.
        ValueError: thresholds out of range, NaN dead fractions, or a gradient ratio that cannot
            be formed (see ``gradient_ratio``).
    """
    stats = _check_stats(stats)
    vanishing = _float_arg("vanishing", vanishing)
    exploding = _float_arg("exploding", exploding)
    if not 0 < vanishing < 1 < exploding:
        raise ValueError(f"need 0 < vanishing < 1 < exploding, got {vanishing}, {exploding}")
    thresholds = dict(SATURATION_THRESHOLDS)
    if isinstance(saturated, dict):
        for family, value in saturated.items():
            if family not in thresholds:
                raise ValueError(
                    f"saturated: unknown activation family {family!r}; valid: {', '.join(thresholds)}"
                )
            thresholds[family] = (
                None if value is None else _float_arg(f"saturated[{family!r}]", value, low=0.0, high=1.0)
            )
        default = 0.5
    else:
        if isinstance(saturated, bool) or not isinstance(saturated, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"saturated must be a fraction or a dict of fractions, got {type(saturated).__name__}"
            )
        if not 0 <= saturated <= 1:
            raise ValueError(
                f"saturated and dead_threshold are fractions in [0, 1], got saturated={saturated}"
            )
        default = float(saturated)
        thresholds = {k: (None if v is None else default) for k, v in thresholds.items()}
    dead_threshold = _float_arg("dead_threshold", dead_threshold)
    if not 0 <= dead_threshold <= 1:
        raise ValueError(
            f"saturated and dead_threshold are fractions in [0, 1], got dead_threshold={dead_threshold}"
        )
    if dead is not None:
        if isinstance(dead, (str, bytes)) or not hasattr(dead, "__iter__"):
            raise TypeError(
                f"dead must be a list of fractions (probes.dead_fraction), got {type(dead).__name__}"
            )
        dead = [_float_arg(f"dead[{i}]", f, low=0.0, high=1.0) for i, f in enumerate(dead)]
    ratio = gradient_ratio(stats, stat)
    n = len(stats)
    families = {s.activation for s in stats if s.activation is not None}
    relu_like = bool(families) and families <= _RELU_LIKE
    fixes = {**FIXES, **(FIXES_RELU_LIKE if relu_like else {})}
    first = f"layer 1 ({stats[0].name})"
    out: list[Finding] = []
    if ratio < vanishing:
        out.append(
            Finding(
                "vanishing",
                stats[0].name,
                ratio,
                f"vanishing: {first} gets {ratio:.1e} of the output layer's gradient ({stat}, {n} layers)",
                fixes["vanishing"],
            )
        )
    elif ratio > exploding:
        out.append(
            Finding(
                "exploding",
                stats[0].name,
                ratio,
                f"exploding: {first} gets {ratio:.1e} times the output layer's gradient ({stat}, {n} layers)",
                fixes["exploding"],
            )
        )
    for i, s in enumerate(stats, start=1):
        limit = thresholds.get(s.activation, default) if s.activation is not None else default
        if limit is not None and math.isfinite(s.saturation) and s.saturation > limit:
            fix = FIXES_RELU_LIKE["saturated"] if s.activation in _RELU_LIKE else fixes["saturated"]
            out.append(
                Finding(
                    "saturated",
                    s.name,
                    s.saturation,
                    f"saturated: layer {i} ({s.name}) has {s.saturation:.0%} of its "
                    f"units at a slope below 5% of the activation's maximum",
                    fix,
                )
            )
    for i, frac in enumerate(dead or [], start=1):
        if frac > dead_threshold:
            out.append(
                Finding(
                    "dead",
                    f"activation {i}",
                    frac,
                    f"dead units: activation {i} has {frac:.0%} of its units silent on every input",
                    fixes["dead"],
                )
            )
    if not out:
        out.append(
            Finding(
                "healthy",
                None,
                ratio,
                f"healthy: {first} gets {ratio:.1e} of the output layer's gradient, no saturated layer",
                fixes["healthy"],
            )
        )
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
        x: a batch of inputs (moved to the model's device; the values stay there).

    Raises:
        TypeError: a non-module model or non-tensor ``x``.
        ValueError: empty ``x``, or a model without activation modules.
    """
    _module_arg("model", model)
    _data_arg("x", x)
    (x,) = to_model_device(model, x)
    values: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        values.append(out.detach().clone())

    handles = [m.register_forward_hook(hook) for m in model.modules() if activations.name_of(m) is not None]
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
