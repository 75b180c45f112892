"""Argument checks shared by every public function of gradflow.

Each helper returns the value as a plain Python type (so a NumPy integer from a sweep works like an
int) or raises an error that names the argument and says what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. Also a ValueError, so callers that catch ValueError for any
    bad argument (as gradflow did before it told the two apart) keep working."""


def integer(name: str, value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (Python or NumPy integer, not a bool) within [minimum, maximum]."""
    allowed = (
        ""
        if minimum is None and maximum is None
        else f" >= {minimum}"
        if maximum is None
        else f" <= {maximum}"
        if minimum is None
        else f" between {minimum} and {maximum}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer{allowed}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{allowed}, got {value}")
    return value


def real(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float (Python or NumPy number, not a bool): not NaN, finite unless
    ``finite=False``, > 0 if ``positive``, within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def flag(name: str, value: object) -> bool:
    """``value`` as a bool (Python or NumPy bool only: 'yes' or 1 are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def choice(name: str, value: object, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options``."""
    options = tuple(options)
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"{name} must be a string, one of {', '.join(map(repr, options))}; "
            f"got {type(value).__name__} {value!r}"
        )
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def tensor(name: str, value: object, *, min_dim: int = 0, non_empty: bool = True) -> torch.Tensor:
    """``value`` if it is a tensor with at least ``min_dim`` dimensions (and elements)."""
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions, got shape {tuple(value.shape)}")
    if non_empty and value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    return value


def module(name: str, value: object) -> nn.Module:
    """``value`` if it is an ``nn.Module``."""
    if not isinstance(value, nn.Module):
        raise ArgumentTypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def device(name: str, value: object) -> torch.device:
    """``value`` as a ``torch.device`` ("cpu", "cuda", "cuda:0", a torch.device)."""
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name} must be a device such as 'cpu' or 'cuda', got {value!r}") from err
