"""Normalization layers by name.

v0 returns torch's own layers; the from-scratch teaching versions (chapter 05) will live here too
and be tested equal to these.
"""

from __future__ import annotations

from torch import nn

NAMES = ("batch", "layer", "rms")


def get(name: str, width: int) -> nn.Module:
    """A normalization layer over ``width`` features, for (batch, width) inputs.

    Args:
        name: "batch" (BatchNorm1d), "layer" (LayerNorm) or "rms" (RMSNorm).
        width: number of features.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    if name == "rms":
        return nn.RMSNorm(width)
    raise ValueError(f"unknown norm {name!r}; valid names: {', '.join(NAMES)} (or None)")
