"""Seeding, device choice and the course's `check`: the three things every notebook calls first."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from . import _args


def set_seed(seed: int, *, threads: int | None = 1) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and fix torch's CPU thread count.

    Args:
        seed: any non-negative integer.
        threads: intra-op CPU threads for torch. One thread makes small models faster on a busy
            2-core machine *and* makes float sums add up in the same order every run, so printed
            digits reproduce. ``None`` leaves torch's setting alone.
    """
    seed = _args.integer("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if threads is not None:
        torch.set_num_threads(_args.integer("threads", threads, minimum=1))


def default_device() -> torch.device:
    """The GPU when there is one (Colab), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a model that has none).

    Args:
        model: any ``nn.Module``.
    """
    _args.module("model", model)
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def to_model_device(model: torch.nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Move ``tensors`` to the device ``model`` lives on, so that one call works on CPU and GPU.

    Every ``gradflow`` function that runs a model on data calls this first (Colab's GPU runtime:
    ``train.fit`` leaves the model on the GPU, the data sets live on the CPU).

    Args:
        model: the model that will consume the tensors.
        tensors: tensors to move (returned in the same order, as a tuple).
    """
    device = model_device(model)
    for i, t in enumerate(tensors):
        _args.tensor(f"tensors[{i}]", t, non_empty=False)
    return tuple(t.to(device) for t in tensors)


def check(condition: bool, message: str) -> None:
    """Assert a claim of the course and print it as one line starting with ``✓``.

    The message should carry the measured value and the bound, e.g.
    ``f"first/last gradient ratio {r:.1e} < 1e-3"``, so a reader sees the evidence and nbval
    compares it. Round the value in the message: the line is part of the stored output.

    Args:
        condition: the claim, evaluated (a Python or NumPy bool, or a one-element tensor).
        message: what is claimed, with the measured number.

    Raises:
        AssertionError: ``✗ <message>`` when the condition is false.
    """
    if not isinstance(message, str):
        raise _args.ArgumentTypeError(f"message must be a str, got {type(message).__name__}")
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise _args.ArgumentTypeError(
                "check() needs a single truth value, got a tensor of "
                f"{condition.numel()} elements (use .all() or .any())"
            )
        condition = bool(condition.item())
    if not isinstance(condition, (bool, np.bool_)):
        raise _args.ArgumentTypeError(
            f"check() needs a bool, got {type(condition).__name__}: compare the measured value with its bound"
        )
    if not condition:
        raise AssertionError(f"✗ {message}")
    print(f"✓ {message}")


def progress_enabled() -> bool:
    """Progress bars are on unless ``GRADFLOW_PROGRESS=0`` (set in CI and when storing outputs)."""
    return os.environ.get("GRADFLOW_PROGRESS", "1") not in ("0", "false", "False", "")
