"""Normalization layers: a factory by name, and from-scratch teaching versions of each.

``get(name, width)`` returns torch's own layers (the default every model builder uses);
``get(name, width, scratch=True)`` returns the from-scratch versions below, which
``tests/test_norms.py`` checks equal to torch's (forward, gradients, running statistics, train and
eval mode).

Every layer here computes the same three steps (statistics, normalize, then scale and shift by
``gamma`` and ``beta``) over a different set of axes of an (N, C, ...) input:

- ``BatchNorm``: over the batch and every position, per channel (``nn.BatchNorm1d/2d``).
- ``LayerNorm``: over the trailing feature dimensions, per example (``nn.LayerNorm``).
- ``InstanceNorm``: over the positions, per example and channel (``nn.InstanceNorm1d/2d``).
- ``GroupNorm``: over a group of channels and their positions, per example (``nn.GroupNorm``).
- ``RMSNorm``: over the trailing feature dimensions, mean square only (``nn.RMSNorm``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

NAMES = ("batch", "layer", "rms")


def _check_pos_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_eps(eps: object, allow_none: bool = False) -> float | None:
    if eps is None and allow_none:
        return None
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"eps must be a real number >= 0{' or None' if allow_none else ''}, got {eps!r}")
    return float(eps)


def _shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    if isinstance(normalized_shape, (str, bytes)):
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}")
    try:
        shape = tuple(
            _check_pos_int("normalized_shape", int(s) if isinstance(s, np.integer) else s)
            for s in normalized_shape
        )
    except TypeError:
        raise TypeError(
            f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}"
        ) from None
    if not shape:
        raise ValueError("normalized_shape must not be empty")
    return shape


def default_groups(width: int) -> int:
    """A group count for GroupNorm over ``width`` channels: the largest divisor of ``width`` that
    is <= 32 (Wu & He 2018 use 32 groups).

    Args:
        width: number of channels (>= 1).
    """
    width = _check_pos_int("width", width)
    return max(g for g in range(1, min(width, 32) + 1) if width % g == 0)


class BatchNorm(nn.Module):
    """Batch normalization (Ioffe & Szegedy 2015), written out; equal to ``nn.BatchNorm1d/2d/3d``.

    Input (N, C) or (N, C, ...). In training mode each channel is normalized with the mean and the
    *biased* variance (divide by n) over the batch and every spatial position, and the running
    statistics are updated with PyTorch's convention (``momentum`` weights the *new* batch):
    ``running = (1 - momentum) * running + momentum * batch_stat``, where ``running_var`` takes the
    *unbiased* variance (divide by n - 1). With ``momentum=None`` the running statistics are the
    plain average over all batches seen. In eval mode the running statistics normalize.

    Args:
        num_features: channels C.
        eps: added to the variance before the square root.
        momentum: weight of the new batch in the running statistics (0 to 1), or None.
        affine: learn a per-channel scale ``weight`` (gamma, starts at 1) and shift ``bias``
            (beta, starts at 0).
        track_running_stats: keep running statistics; if False, batch statistics are used in
            eval mode too.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features = _check_pos_int("num_features", num_features)
        self.eps = _check_eps(eps)
        if momentum is not None and (
            isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1
        ):
            raise ValueError(f"momentum must be a number in [0, 1] or None, got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features))
            self.bias = nn.Parameter(torch.zeros(self.num_features))
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features))
            self.register_buffer("running_var", torch.ones(self.num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, ...)
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm({self.num_features}) takes (N, {self.num_features}, ...) "
                f"inputs, got shape {tuple(x.shape)}"
            )
        axes = [0] + list(range(2, x.dim()))  # everything but the channel axis
        shape = [1, -1] + [1] * (x.dim() - 2)  # broadcast a (C,) vector over x
        n = x.numel() // self.num_features  # values per channel
        if self.training or not self.track_running_stats:
            if self.training and n < 2:
                raise ValueError(
                    f"BatchNorm in training mode needs more than 1 value per channel, "
                    f"got input shape {tuple(x.shape)}"
                )
            mean = x.mean(dim=axes)  # (C,)
            var = (x - mean.view(shape)).pow(2).mean(dim=axes)  # biased: divide by n
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    m = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                    unbiased = var * n / (n - 1)
                    self.running_mean.mul_(1 - m).add_(m * mean)
                    self.running_var.mul_(1 - m).add_(m * unbiased)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class LayerNorm(nn.Module):
    """Layer normalization (Ba et al. 2016), written out; equal to ``nn.LayerNorm``.

    Each example is normalized with the mean and biased variance of its last
    ``len(normalized_shape)`` dimensions; the same in training and eval mode (no running state).

    Args:
        normalized_shape: the trailing shape to normalize over (an int for the last dimension).
        eps: added to the variance before the square root.
        elementwise_affine: learn ``weight`` (starts at 1) and ``bias`` (starts at 0) of that shape.
    """

    def __init__(
        self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True
    ):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = _check_eps(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(
                f"LayerNorm{self.normalized_shape} needs inputs ending in that shape, got {tuple(x.shape)}"
            )
        axes = tuple(range(-k, 0))
        mean = x.mean(dim=axes, keepdim=True)
        var = (x - mean).pow(2).mean(dim=axes, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.elementwise_affine:
            y = y * self.weight + self.bias
        return y


class InstanceNorm(nn.Module):
    """Instance normalization (Ulyanov et al. 2016), written out; equal to ``nn.InstanceNorm1d/2d``
    with their defaults (no running statistics).

    Input (N, C, ...spatial) with at least one spatial dimension: each (example, channel) pair is
    normalized over its spatial positions, in training and eval mode alike.

    Args:
        num_features: channels C.
        eps: added to the variance before the square root.
        affine: learn a per-channel ``weight`` and ``bias`` (torch's default is False).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        self.num_features = _check_pos_int("num_features", num_features)
        self.eps = _check_eps(eps)
        self.affine = bool(affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features))
            self.bias = nn.Parameter(torch.zeros(self.num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, L) or (N, C, H, W)
        if x.dim() < 3 or x.shape[1] != self.num_features:
            raise ValueError(
                f"InstanceNorm({self.num_features}) takes (N, {self.num_features}, "
                f"spatial...) inputs, got shape {tuple(x.shape)}"
            )
        axes = tuple(range(2, x.dim()))
        mean = x.mean(dim=axes, keepdim=True)
        var = (x - mean).pow(2).mean(dim=axes, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class GroupNorm(nn.Module):
    """Group normalization (Wu & He 2018), written out; equal to ``nn.GroupNorm``.

    Input (N, C, ...). The C channels are split into ``num_groups`` consecutive groups; each
    (example, group) is normalized over its channels and spatial positions. One group is LayerNorm
    over (C, ...); C groups is InstanceNorm. Per-channel ``weight`` and ``bias``.

    Args:
        num_groups: number of groups G; must divide ``num_channels``.
        num_channels: channels C.
        eps: added to the variance before the square root.
        affine: learn per-channel ``weight`` (starts at 1) and ``bias`` (starts at 0).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_groups = _check_pos_int("num_groups", num_groups)
        self.num_channels = _check_pos_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_groups ({num_groups}) must divide num_channels ({num_channels})")
        self.eps = _check_eps(eps)
        self.affine = bool(affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_channels))
            self.bias = nn.Parameter(torch.zeros(self.num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, ...)
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm({self.num_groups}, {self.num_channels}) takes "
                f"(N, {self.num_channels}, ...) inputs, got shape {tuple(x.shape)}"
            )
        g = x.reshape(x.shape[0], self.num_groups, -1)  # (N, G, C/G * spatial)
        mean = g.mean(dim=2, keepdim=True)
        var = (g - mean).pow(2).mean(dim=2, keepdim=True)
        y = ((g - mean) / torch.sqrt(var + self.eps)).reshape(x.shape)
        if self.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class RMSNorm(nn.Module):
    """Root-mean-square normalization (Zhang & Sennrich 2019), written out; equal to ``nn.RMSNorm``.

    ``y = x / sqrt(mean(x**2) + eps) * weight`` over the last ``len(normalized_shape)`` dims: no
    mean subtracted, no bias. With ``eps=None`` it uses ``torch.finfo(x.dtype).eps``, as torch does.

    Args:
        normalized_shape: the trailing shape to normalize over (an int for the last dimension).
        eps: added to the mean square, or None for the dtype's machine epsilon.
        elementwise_affine: learn ``weight`` (starts at 1).
    """

    def __init__(
        self, normalized_shape: int | Sequence[int], eps: float | None = None, elementwise_affine: bool = True
    ):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps = _check_eps(eps, allow_none=True)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(
                f"RMSNorm{self.normalized_shape} needs inputs ending in that shape, got {tuple(x.shape)}"
            )
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        ms = x.pow(2).mean(dim=tuple(range(-k, 0)), keepdim=True)
        y = x * torch.rsqrt(ms + eps)
        if self.elementwise_affine:
            y = y * self.weight
        return y


class CovariateShift(nn.Module):
    """Inject a fresh random per-unit scale and shift at every training forward pass
    (Santurkar et al. 2018's "noisy BatchNorm"); the identity in eval mode.

    In training mode, for an input (N, C) each unit j gets ``y_j = s_j * x_j + m_j`` with
    ``s_j ~ U[1, 1 + scale]`` and ``m_j ~ U[-shift, shift]`` drawn anew at every call: the
    distribution each later layer sees changes at every step, the "internal covariate shift" that
    BatchNorm was said to remove.

    Args:
        shift: half-width of the uniform shift (>= 0).
        scale: width of the uniform scale above 1 (>= 0).
    """

    def __init__(self, shift: float = 1.0, scale: float = 1.0):
        super().__init__()
        for name, v in (("shift", shift), ("scale", scale)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
                raise ValueError(f"{name} must be a real number >= 0, got {v!r}")
        self.shift, self.scale = float(shift), float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C)
        if not self.training:
            return x
        c = x.shape[1]
        s = 1 + self.scale * torch.rand(c, device=x.device, dtype=x.dtype)
        m = self.shift * (2 * torch.rand(c, device=x.device, dtype=x.dtype) - 1)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return x * s.view(shape) + m.view(shape)

    def extra_repr(self) -> str:
        return f"shift={self.shift}, scale={self.scale}"


def get(name: str, width: int, *, scratch: bool = False) -> nn.Module:
    """A normalization layer over ``width`` features, for (batch, width) inputs.

    Args:
        name: "batch" (BatchNorm1d), "layer" (LayerNorm) or "rms" (RMSNorm). (GroupNorm needs a
            group count: build it with ``GroupNorm`` or ``nn.GroupNorm``.)
        width: number of features (>= 1).
        scratch: return this module's from-scratch version instead of torch's layer (same numbers,
            see ``tests/test_norms.py``; torch's is faster).
    """
    width = _check_pos_int("width", width)
    if name == "batch":
        return BatchNorm(width) if scratch else nn.BatchNorm1d(width)
    if name == "layer":
        return LayerNorm(width) if scratch else nn.LayerNorm(width)
    if name == "rms":
        return RMSNorm(width) if scratch else nn.RMSNorm(width)
    raise ValueError(f"unknown norm {name!r}; valid names: {', '.join(NAMES)} (or None)")


# -- which axes each layer normalizes, read off the layers themselves ------------------------------

AXES_LAYERS = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm", "RMSNorm")


def _layer_for(name: str, channels: int, spatial: int, groups: int) -> nn.Module:
    return {
        "BatchNorm": lambda: BatchNorm(channels),
        "LayerNorm": lambda: LayerNorm((channels, spatial)),
        "InstanceNorm": lambda: InstanceNorm(channels),
        "GroupNorm": lambda: GroupNorm(groups, channels),
        "RMSNorm": lambda: RMSNorm((channels, spatial)),
    }[name]()


def normalization_groups(
    name: str, *, batch: int = 4, channels: int = 6, spatial: int = 3, groups: int = 2, seed: int = 0
) -> np.ndarray:
    """Which entries of an (N, C, S) input a layer normalizes together, measured from its Jacobian.

    Two entries share a group when the output at one depends on the input at the other (a nonzero
    entry of d output / d input, computed in float64 on a random input). LayerNorm and RMSNorm
    normalize over (C, S), as in a CNN; GroupNorm uses ``groups`` groups.

    Args:
        name: one of ``AXES_LAYERS``.
        batch: N (>= 2).
        channels: C (>= 1, divisible by ``groups``).
        spatial: S, positions per channel (>= 2).
        groups: GroupNorm's group count.
        seed: seeds the random input.

    Returns:
        An (N, C, S) integer array: entries with the same number are normalized together
        (groups numbered 0, 1, ... in the order of their first entry).
    """
    if name not in AXES_LAYERS:
        raise ValueError(f"unknown layer {name!r}; valid: {', '.join(AXES_LAYERS)}")
    batch, channels, spatial = (
        _check_pos_int(n, v) for n, v in (("batch", batch), ("channels", channels), ("spatial", spatial))
    )
    if batch < 2 or spatial < 2:
        raise ValueError(f"batch and spatial must be >= 2, got {batch} and {spatial}")
    layer = _layer_for(name, channels, spatial, _check_pos_int("groups", groups)).double().train()
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(batch, channels, spatial, generator=gen, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(layer, x).reshape(x.numel(), x.numel())
    linked = (jac.abs() > 1e-12).numpy()
    ids = np.full(x.numel(), -1)
    for i in range(x.numel()):
        if ids[i] < 0:
            ids[linked[i]] = ids.max() + 1
    return ids.reshape(batch, channels, spatial)


def draw_norm_axes(
    batch: int = 4, channels: int = 6, spatial: int = 3, groups: int = 2, seed: int = 0
) -> plt.Figure:
    """One panel per layer: an (N, C, S) input drawn as N rows of C blocks of S cells, coloured by
    the group ``normalization_groups`` measured (one colour = one mean and variance).

    Args:
        batch: N, examples.
        channels: C, channels (or features).
        spatial: S, positions per channel.
        groups: GroupNorm's group count (must divide ``channels``).
        seed: seeds the random input the Jacobians are taken at.
    """
    from .plots import use_style

    use_style()
    fig, axes = plt.subplots(1, len(AXES_LAYERS), figsize=(3.0 * len(AXES_LAYERS), 2.6))
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(list(plt.get_cmap("tab20").colors) + list(plt.get_cmap("tab20b").colors))
    for ax, name in zip(axes, AXES_LAYERS):
        ids = normalization_groups(
            name, batch=batch, channels=channels, spatial=spatial, groups=groups, seed=seed
        )
        img = ids.reshape(batch, channels * spatial)
        ax.imshow(img % 40, cmap=cmap, vmin=0, vmax=39, aspect="auto", interpolation="nearest")
        for c in range(1, channels):
            ax.axvline(c * spatial - 0.5, color="white", lw=2)
        for n in range(1, batch):
            ax.axhline(n - 0.5, color="white", lw=0.5)
        size = int((ids == 0).sum())
        ax.set_title(f"{name}\n{ids.max() + 1} groups of {size}", fontsize=10)
        ax.set_xticks(
            [c * spatial + (spatial - 1) / 2 for c in range(channels)],
            [f"C{c + 1}" for c in range(channels)],
            fontsize=7,
        )
        ax.set_yticks(range(batch), [f"n{n + 1}" for n in range(batch)], fontsize=7)
        ax.set_xlabel(f"channel (each with {spatial} positions)")
        ax.grid(False)
    axes[0].set_ylabel("example in the batch")
    fig.tight_layout()
    return fig


# -- gradient flow with and without a norm, and its explorer ---------------------------------------


def norm_gradient_profile(
    depth: int = 20,
    activation: str = "sigmoid",
    norm: str | None = "batch",
    *,
    init: str = "default",
    width: int = 64,
    batch_size: int = 64,
    seed: int = 0,
) -> list[float]:
    """RMS of dL/dz (z = the Linear output, before the norm) at each hidden layer, input side
    first, of a fresh ``models.mlp`` at initialisation in training mode, on one batch of random
    inputs with random labels (10 classes).

    Args:
        depth: hidden layers (>= 1).
        activation: an activation name (``gradflow.activations.NAMES``).
        norm: None or one of ``NAMES``, placed between each Linear and its activation.
        init: an init scheme name (``gradflow.init.SCHEMES``).
        width: units per hidden layer (also the input width).
        batch_size: examples in the batch (>= 2 for "batch").
        seed: seeds the weights and the batch.
    """
    from .data import random_classification
    from .models import mlp
    from .probes import measure

    depth, width, batch_size = (
        _check_pos_int(n, v) for n, v in (("depth", depth), ("width", width), ("batch_size", batch_size))
    )
    if norm == "batch" and batch_size < 2:
        raise ValueError("batch_size must be >= 2 with BatchNorm in training mode")
    torch.manual_seed(int(seed))
    model = (
        mlp(depth, width, in_features=width, out_features=10, activation=activation, init=init, norm=norm)
        .to("cpu")
        .train()
    )
    x, y = random_classification(batch_size, width, 10, seed=int(seed))
    return [s.preact_grad_rms for s in measure(model, x, y, activations=False)][:depth]


def draw_norm_flow(
    depth: int = 20,
    activation: str = "sigmoid",
    norm: str = "batch",
    init: str = "default",
    width: int = 64,
    batch_size: int = 64,
    seed: int = 0,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Per-layer gradient RMS at initialisation with ``norm`` and without it (same weights' scheme,
    same batch), on a log scale.

    Args:
        depth: hidden layers.
        activation: an activation name.
        norm: one of ``NAMES``.
        init: an init scheme name.
        width: units per hidden layer.
        batch_size: examples in the batch.
        seed: seeds the weights and the batch.
        ax: axes to draw on; a new figure if None.
    """
    from .plots import layer_profile

    if norm not in NAMES:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NAMES)}")
    kw = dict(init=init, width=width, batch_size=batch_size, seed=seed)
    with_norm = norm_gradient_profile(depth, activation, norm, **kw)
    without = norm_gradient_profile(depth, activation, None, **kw)
    r_with, r_without = with_norm[0] / with_norm[-1], without[0] / without[-1]
    return layer_profile(
        {
            f"{activation} + {norm}norm (layer 1 / layer {depth}: {r_with:.1e})": with_norm,
            f"{activation}, no norm (layer 1 / layer {depth}: {r_without:.1e})": without,
        },
        ax=ax,
        ylabel="RMS of dL/dz (Linear output)",
        title=f"{depth} layers of width {width}, {init} init, batch {batch_size}",
    )


def norm_flow_explorer(
    depth: int = 20,
    activation: str = "sigmoid",
    norm: str = "batch",
    init: str = "default",
    batch_size: int = 64,
) -> None:
    """Sliders and drop-downs over ``draw_norm_flow``: depth, activation, norm, init, batch size.

    Args:
        depth: starting depth.
        activation: starting activation.
        norm: starting norm.
        init: starting init scheme.
        batch_size: starting batch size.
    """
    import ipywidgets as widgets

    from . import activations
    from .init import SCHEMES
    from .widgets import explore

    explore(
        draw_norm_flow,
        depth=widgets.IntSlider(value=depth, min=2, max=60, description="depth"),
        activation=widgets.Dropdown(
            options=list(activations.NAMES), value=activation, description="activation"
        ),
        norm=widgets.Dropdown(options=list(NAMES), value=norm, description="norm"),
        init=widgets.Dropdown(
            options=[s for s in SCHEMES if s not in ("zeros", "constant")], value=init, description="init"
        ),
        batch_size=widgets.IntSlider(value=batch_size, min=2, max=256, description="batch"),
        width=widgets.fixed(64),
        seed=widgets.fixed(0),
        ax=widgets.fixed(None),
    )


def elements_moved(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> int:
    """Count the tensor elements that ``fn(x)`` reads and writes, summed over every torch
    operation it calls: a machine-independent measure of the memory traffic of element-wise code
    (one full pass over an n-element tensor that writes a same-size result counts 2n).

    Every torch function and tensor method ``fn`` calls is intercepted (a
    ``torch.overrides.TorchFunctionMode``); for each, the sizes of its tensor arguments and of the
    tensors it returns are added up. A fused library kernel (``nn.LayerNorm``) counts as one
    operation, so compare functions written with the same operations.

    Args:
        fn: a callable taking one tensor.
        x: the input tensor.
    """
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    total = 0

    class _Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            nonlocal total
            out = func(*args, **(kwargs or {}))
            if getattr(func, "__name__", "") not in ("__get__", "size", "dim", "numel", "shape"):
                total += sum(
                    t.numel() for t in tree_leaves((args, kwargs or {}, out)) if isinstance(t, torch.Tensor)
                )
            return out

    with torch.no_grad(), _Count():
        fn(x)
    return total
