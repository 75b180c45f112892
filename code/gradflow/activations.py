"""Activation functions by name, with their analytic derivatives.

The derivatives are written out by hand (not taken from autograd) because the course reasons with
them: sigma'(z) = sigma(z)(1 - sigma(z)) <= 1/4, tanh'(z) = 1 - tanh(z)^2 <= 1, ReLU' in {0, 1}.
The unit tests hold each one against autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from . import _args

LEAKY_SLOPE = 0.01  # torch's default negative slope for LeakyReLU
PRELU_INIT = 0.25  # torch's default initial slope for PReLU
ELU_ALPHA = 1.0

# name -> factory returning a fresh module (PReLU has a parameter, so modules are never shared)
_MODULES: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "prelu": lambda: nn.PReLU(init=PRELU_INIT),
    "elu": lambda: nn.ELU(ELU_ALPHA),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def _gelu_prime(z: torch.Tensor) -> torch.Tensor:
    # GELU(z) = z * Phi(z)  =>  GELU'(z) = Phi(z) + z * phi(z)
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _silu_prime(z: torch.Tensor) -> torch.Tensor:
    # SiLU(z) = z * s(z)  =>  SiLU'(z) = s(z) * (1 + z * (1 - s(z)))
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


_DERIVATIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": torch.ones_like,
    "sigmoid": lambda z: torch.sigmoid(z) * (1.0 - torch.sigmoid(z)),
    "tanh": lambda z: 1.0 - torch.tanh(z) ** 2,
    "relu": lambda z: (z > 0).to(z.dtype),
    # full_like keeps z's dtype: a Python scalar would become a float32 0.01 (off by 2e-10)
    "leaky_relu": lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE)),
    "prelu": lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, PRELU_INIT)),
    "elu": lambda z: torch.where(z > 0, torch.ones_like(z), ELU_ALPHA * torch.exp(z)),
    "gelu": _gelu_prime,
    "silu": _silu_prime,
}

# The largest value each derivative takes (used to call a unit "saturated" when its local slope is
# a small fraction of what the activation can pass). GELU and SiLU overshoot 1 slightly.
MAX_DERIVATIVE: dict[str, float] = {
    "linear": 1.0,
    "sigmoid": 0.25,
    "tanh": 1.0,
    "relu": 1.0,
    "leaky_relu": 1.0,
    "prelu": 1.0,
    "elu": 1.0,
    "gelu": 1.1289,
    "silu": 1.0998,
}

# Module class -> registry name, so probes can recognise activations inside any model.
_CLASS_NAMES: dict[type, str] = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
}

NAMES: tuple[str, ...] = tuple(_MODULES)


def _validate(name: str) -> str:
    if not isinstance(name, str):
        raise _args.ArgumentTypeError(
            f"activation must be a name (str), one of {', '.join(NAMES)}; got {type(name).__name__} {name!r}"
        )
    if name not in _MODULES:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(NAMES)}")
    return name


def get(name: str) -> nn.Module:
    """A new activation module.

    Args:
        name: one of ``NAMES``: linear, sigmoid, tanh, relu, leaky_relu, prelu, elu, gelu, silu.
    """
    return _MODULES[_validate(name)]()


def derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """The activation's analytic derivative at pre-activations ``z`` (same shape as ``z``).

    Args:
        name: an activation name (see ``NAMES``). PReLU uses its initial slope 0.25.
        z: pre-activations, any shape.
    """
    name = _validate(name)
    return _DERIVATIVES[name](_args.tensor("z", z, non_empty=False))


def name_of(module: nn.Module) -> str | None:
    """The registry name of an activation module, or None if it is not one we know.

    Args:
        module: any ``nn.Module``.
    """
    _args.module("module", module)
    for cls, name in _CLASS_NAMES.items():
        if type(module) is cls:
            return name
    return None


def saturation(name: str, z: torch.Tensor, threshold: float = 0.05) -> float:
    """Fraction of entries of ``z`` where the local slope is below ``threshold`` of its maximum.

    For sigmoid that is sigma(z) outside [0.013, 0.987]; for tanh ``|tanh(z)| > 0.975``; for ReLU
    z <= 0 (the unit passes no gradient); for Leaky ReLU z <= 0 as well (it passes only 1%).

    Args:
        name: an activation name.
        z: pre-activations.
        threshold: fraction of the maximal slope under which a unit counts as saturated.
    """
    name = _validate(name)
    _args.tensor("z", z)
    threshold = _args.real("threshold", threshold, positive=True, maximum=1.0)
    slope = derivative(name, z)
    return (slope < threshold * MAX_DERIVATIVE[name]).float().mean().item()
