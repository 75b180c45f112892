"""Products of Jacobians: the object that vanishes or explodes.

Backpropagation multiplies the output gradient by one Jacobian per layer. These helpers build such
products directly, from random matrices or from a model, in float64 so that singular values down
to 1e-15 of the largest are still resolved.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _args
from .core import to_model_device


def random_matrices(
    depth: int, width: int, *, scale: float = 1.0, kind: str = "gaussian", seed: int = 0
) -> list[torch.Tensor]:
    """``depth`` random (width, width) float64 matrices with E[||W v||^2] = scale^2 ||v||^2.

    Args:
        depth: number of matrices (>= 1).
        width: their size (>= 1).
        scale: the gain; Gaussian entries have std scale / sqrt(width).
        kind: "gaussian" or "orthogonal" (scale times a Haar-random orthogonal matrix).
        seed: seed of a private generator.
    """
    depth = _args.integer("depth", depth, minimum=1)
    width = _args.integer("width", width, minimum=1)
    scale = _args.real("scale", scale, minimum=0.0)
    kind = _args.choice("kind", kind, ("gaussian", "orthogonal"))
    seed = _args.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    mats = []
    for _ in range(depth):
        a = torch.randn(width, width, generator=g, dtype=torch.float64)
        if kind == "gaussian":
            mats.append(a * (scale / math.sqrt(width)))
        else:
            q, r = torch.linalg.qr(a)
            q = q * torch.sign(torch.diagonal(r))  # sign fix makes Q Haar-distributed
            mats.append(scale * q)
    return mats


def product(matrices: list[torch.Tensor]) -> torch.Tensor:
    """M_L ... M_2 M_1 for ``matrices = [M_1, ..., M_L]`` (M_1 applied first).

    Args:
        matrices: a non-empty list of 2-D tensors whose shapes chain (M_(l+1) has as many
            columns as M_l has rows).
    """
    _check_chain(matrices)
    out = matrices[0]
    for m in matrices[1:]:
        out = m @ out
    return out


def log10_norm_growth(matrices: list[torch.Tensor], *, seed: int = 0) -> torch.Tensor:
    """log10 ||M_l ... M_1 v|| / ||v|| for l = 1..L and a random unit vector v, shape (L,).

    This is exactly what happens to a gradient vector pushed back through L layers.

    Args:
        matrices: a non-empty list of 2-D tensors whose shapes chain, M_1 first.
        seed: seed of the private generator that draws v.
    """
    _check_chain(matrices)
    seed = _args.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(matrices[0].shape[1], generator=g, dtype=torch.float64).to(matrices[0])
    v = v / v.norm()
    out = []
    for m in matrices:
        v = m @ v
        out.append(torch.log10(v.norm()))
    return torch.stack(out)


def input_output_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d model(x) / d x for one input ``x`` of shape (in,), as an (out, in) matrix.

    Runs the model on the batch x[None] (so BatchNorm in train mode would see a batch of one: put
    such models in eval mode first). ``x`` is moved to the model's device.

    Args:
        model: a model taking a batch of shape (batch, in).
        x: one input, shape (in,).
    """
    _args.module("model", model)
    _args.tensor("x", x)
    if x.dim() != 1:
        raise ValueError(f"x must be one input of shape (in,), got shape {tuple(x.shape)}")
    (x,) = to_model_device(model, x)
    return torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x)


def _check_chain(matrices: list[torch.Tensor]) -> None:
    if not isinstance(matrices, (list, tuple)) or not matrices:
        raise ValueError(f"matrices must be a non-empty list of 2-D tensors, got {matrices!r:.80}")
    for i, m in enumerate(matrices):
        _args.tensor(f"matrices[{i}]", m, min_dim=2)
        if m.dim() != 2:
            raise ValueError(f"matrices[{i}] must be 2-D, got shape {tuple(m.shape)}")
        if i and m.shape[1] != matrices[i - 1].shape[0]:
            raise ValueError(
                f"matrices[{i}] of shape {tuple(m.shape)} cannot follow matrices[{i - 1}] "
                f"of shape {tuple(matrices[i - 1].shape)}: columns must equal the rows before"
            )
