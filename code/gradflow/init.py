"""Named weight-initialisation schemes and the one loop that applies them.

Every scheme is a plain function ``(weight, gain, **options) -> None`` filling ``weight`` in place
(initialisation is the one place where in-place writes are the point). ``apply_init`` walks the
model's Linear and Conv layers in order and calls the scheme on each: that loop is the whole story,
nothing is hidden in a constructor.

Variances, for a weight of shape (fan_out, fan_in)::

    xavier_*      2 / (fan_in + fan_out) * gain^2     (Glorot & Bengio 2010, eq. 12)
    kaiming_*     2 / fan        (fan = fan_in or fan_out; He et al. 2015), times gain^2 / 2 if
                  a gain other than ReLU's sqrt(2) is given
    lecun         1 / fan_in * gain^2                 (LeCun et al. 1998)
    default       1 / (3 fan_in): PyTorch's own nn.Linear init, kaiming_uniform_(a=sqrt(5))
    normal        std^2 (you choose std)
    orthogonal    W W^T = gain^2 I                    (Saxe et al. 2013)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from . import _args


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear ``(out, in)`` or Conv ``(out, in, *kernel)`` weight.

    Args:
        weight: a tensor with at least 2 dimensions.
    """
    _args.tensor("weight", weight, non_empty=False)
    if weight.dim() < 2:
        raise ValueError(f"fan-in/fan-out need a weight with >= 2 dims, got shape {tuple(weight.shape)}")
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _fan(weight: torch.Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(weight)
    return fan_in if mode == "fan_in" else fan_out


@torch.no_grad()
def _zeros(w: torch.Tensor, gain: float, **_: object) -> None:
    w.zero_()


@torch.no_grad()
def _constant(w: torch.Tensor, gain: float, value: float = 0.1, **_: object) -> None:
    w.fill_(gain * value)


@torch.no_grad()
def _normal(w: torch.Tensor, gain: float, std: float = 0.01, **_: object) -> None:
    w.normal_(0.0, gain * std)


@torch.no_grad()
def _xavier_uniform(w: torch.Tensor, gain: float, **_: object) -> None:
    fan_in, fan_out = fans(w)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))  # Var of U[-a, a] is a^2 / 3
    w.uniform_(-bound, bound)


@torch.no_grad()
def _xavier_normal(w: torch.Tensor, gain: float, **_: object) -> None:
    fan_in, fan_out = fans(w)
    w.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))  # a *std*, not a variance


@torch.no_grad()
def _kaiming_normal(w: torch.Tensor, gain: float, mode: str = "fan_in", **_: object) -> None:
    w.normal_(0.0, gain / math.sqrt(_fan(w, mode)))


@torch.no_grad()
def _kaiming_uniform(w: torch.Tensor, gain: float, mode: str = "fan_in", **_: object) -> None:
    bound = gain * math.sqrt(3.0 / _fan(w, mode))
    w.uniform_(-bound, bound)


@torch.no_grad()
def _lecun(w: torch.Tensor, gain: float, **_: object) -> None:
    w.normal_(0.0, gain / math.sqrt(fans(w)[0]))


@torch.no_grad()
def _orthogonal(w: torch.Tensor, gain: float, **_: object) -> None:
    nn.init.orthogonal_(w, gain=gain)


@torch.no_grad()
def _default(w: torch.Tensor, gain: float, **_: object) -> None:
    # What nn.Linear.reset_parameters does: kaiming_uniform_(a=sqrt(5)) = U[-1/sqrt(fan_in), +],
    # variance 1/(3 fan_in). A third of He's variance, two thirds of LeCun's.
    bound = gain / math.sqrt(fans(w)[0])
    w.uniform_(-bound, bound)


SCHEMES: dict[str, Callable[..., None]] = {
    "zeros": _zeros,
    "constant": _constant,
    "normal": _normal,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "kaiming_normal": _kaiming_normal,
    "kaiming_uniform": _kaiming_uniform,
    "lecun": _lecun,
    "orthogonal": _orthogonal,
    "default": _default,
}
# Short names used across the course.
ALIASES = {
    "xavier": "xavier_normal",
    "glorot": "xavier_normal",
    "he": "kaiming_normal",
    "kaiming": "kaiming_normal",
}

# The options each scheme takes (anything else is a typo, refused rather than silently ignored).
OPTIONS: dict[str, tuple[str, ...]] = {
    "zeros": (),
    "constant": ("value",),
    "normal": ("std",),
    "xavier_uniform": (),
    "xavier_normal": (),
    "kaiming_normal": ("mode",),
    "kaiming_uniform": ("mode",),
    "lecun": (),
    "orthogonal": (),
    "default": (),
}

# Gains that make a scheme fit an activation (torch.nn.init.calculate_gain's values).
KAIMING_DEFAULT_GAIN = math.sqrt(2.0)


def resolve(scheme: str) -> str:
    """The canonical scheme name for ``scheme`` or one of its aliases.

    Args:
        scheme: a name from ``SCHEMES`` or ``ALIASES``.
    """
    if not isinstance(scheme, str):
        raise _args.ArgumentTypeError(
            f"scheme must be a name (str) from {', '.join(list(SCHEMES) + list(ALIASES))}; "
            f"got {type(scheme).__name__} {scheme!r}"
        )
    name = ALIASES.get(scheme, scheme)
    if name not in SCHEMES:
        valid = ", ".join(list(SCHEMES) + list(ALIASES))
        raise ValueError(f"unknown init scheme {scheme!r}; valid names: {valid}")
    return name


def init_weight_(
    weight: torch.Tensor, scheme: str, *, gain: float | None = None, **options: float | str
) -> torch.Tensor:
    """Fill one weight tensor with a named scheme and return it.

    Args:
        weight: a 2-D (Linear) or 4-D (Conv) weight.
        scheme: a name from ``SCHEMES`` or ``ALIASES`` ("xavier", "he", ...).
        gain: multiplies the std (for every scheme: "normal" draws with std ``gain * std``,
            "constant" fills ``gain * value``). Default: sqrt(2) for the kaiming schemes (ReLU),
            1 otherwise.
        options: ``std`` for "normal", ``value`` for "constant", ``mode`` ("fan_in"/"fan_out")
            for the kaiming schemes.
    """
    name = resolve(scheme)
    _args.tensor("weight", weight, min_dim=2)
    options = _scheme_options(name, options)
    if gain is None:
        gain = KAIMING_DEFAULT_GAIN if name.startswith("kaiming") else 1.0
    SCHEMES[name](weight, _args.real("gain", gain, positive=True), **options)
    return weight


def _scheme_options(name: str, options: dict[str, object]) -> dict[str, object]:
    """Check the options given for scheme ``name``; return them converted to plain types."""
    unknown = sorted(set(options) - set(OPTIONS[name]))
    if unknown:
        allowed = ", ".join(OPTIONS[name]) or "none"
        raise _args.ArgumentTypeError(
            f"init scheme {name!r} takes no option {', '.join(map(repr, unknown))}; its options: {allowed}"
        )
    checked = dict(options)
    if "std" in options:
        checked["std"] = _args.real("std", options["std"], minimum=0.0)
    if "value" in options:
        checked["value"] = _args.real("value", options["value"])
    if "mode" in options:
        checked["mode"] = _args.choice("mode", options["mode"], ("fan_in", "fan_out"))
    return checked


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear and Conv layer, in registration order.

    Args:
        model: any module.
    """
    _args.module("model", model)
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]


def apply_init(
    model: nn.Module, scheme: str, *, gain: float | None = None, bias: float = 0.0, **options: float | str
) -> nn.Module:
    """Initialise every Linear/Conv layer of ``model`` with ``scheme``; biases set to ``bias``.

    ``scheme="default"`` re-draws PyTorch's own init for the weights (biases still set to
    ``bias``), so results do not depend on how the layers were created.

    Args:
        model: any module.
        scheme: a name from ``SCHEMES`` or ``ALIASES``.
        gain: see ``init_weight_``.
        bias: the constant every bias starts at.
        options: passed to the scheme (``std``, ``value``, ``mode``).

    Returns:
        the same model, for chaining.
    """
    name = resolve(scheme)  # fail before touching anything
    _scheme_options(name, options)
    if gain is not None:
        _args.real("gain", gain, positive=True)
    bias = _args.real("bias", bias)
    layers = weighted_layers(model)
    if not layers:
        raise ValueError("apply_init found no Linear or Conv layer in the model")
    for _, layer in layers:
        init_weight_(layer.weight, scheme, gain=gain, **options)
        if layer.bias is not None:
            with torch.no_grad():
                layer.bias.fill_(bias)
    return model
