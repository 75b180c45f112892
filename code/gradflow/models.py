"""Model builders: plain functions with keyword arguments that return an ``nn.Module``.

No module here writes in place (no ``ReLU(inplace=True)``, no ``x += ...``): in-place ops break the
tensor hooks that ``gradflow.probes`` relies on.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _args, activations, norms
from .init import apply_init


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    return _args.integer(name, value, minimum=minimum)  # NumPy integers from a sweep are fine


class Dense(nn.Module):
    """One hidden layer: z = W x + b, then the optional norm, then the activation.

    With ``residual=True`` the layer returns x + act(norm(z)) (needs fan_in == fan_out).
    """

    def __init__(self, fan_in: int, fan_out: int, *, activation: str, norm: str | None,
                 residual: bool, bias: bool = True):
        super().__init__()
        if residual and fan_in != fan_out:
            raise ValueError(f"a residual layer needs fan_in == fan_out, got {fan_in} and {fan_out}")
        self.linear = nn.Linear(fan_in, fan_out, bias=bias)
        self.norm = norms.get(norm, fan_out) if norm is not None else nn.Identity()
        self.act = activations.get(activation)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, fan_in)
        h = self.act(self.norm(self.linear(x)))  # (batch, fan_out)
        return x + h if self.residual else h


class MLP(nn.Module):
    """``depth`` hidden Dense layers of equal ``width`` and a linear ``head``.

    Attributes ``hidden`` (ModuleList, input side first) and ``head`` make the layers easy to
    address: ``model.hidden[0].linear`` is the first layer.
    """

    def __init__(self, depth: int, width: int, *, in_features: int, out_features: int,
                 activation: str, norm: str | None, residual: bool, bias: bool = True):
        super().__init__()
        self.in_features = in_features
        self.hidden = nn.ModuleList(
            Dense(in_features if i == 0 else width, width, activation=activation, norm=norm,
                  # the first layer changes width, so it cannot carry an identity shortcut
                  residual=residual and i > 0, bias=bias)
            for i in range(depth))
        self.head = nn.Linear(width, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, in_features)
        if x.dim() < 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"this MLP takes inputs of width {self.in_features} (shape (batch, "
                             f"{self.in_features})), got shape {tuple(x.shape)} of width "
                             f"{x.shape[-1] if x.dim() else 'none'}")
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)  # (batch, out_features)


def mlp(depth: int, width: int, *, in_features: int = 64, out_features: int = 10,
        activation: str = "relu", init: str = "default", gain: float | None = None,
        norm: str | None = None, residual: bool = False, bias: bool = True,
        bias_init: float = 0.0, **init_options: float | str) -> MLP:
    """A multilayer perceptron with ``depth`` hidden layers, initialised with a named scheme.

    The defaults fit the digits data set (64 inputs, 10 classes).

    Args:
        depth: number of hidden layers (>= 1). The model has depth + 1 Linear layers.
        width: units per hidden layer (>= 1).
        in_features: input width.
        out_features: output width.
        activation: one of ``gradflow.activations.NAMES``.
        init: one of ``gradflow.init.SCHEMES`` or its aliases ("xavier", "he"); "default" is
            PyTorch's own Linear init.
        gain: multiplies the init's std (see ``gradflow.init.init_weight_``).
        norm: None, or one of ``gradflow.norms.NAMES``, placed between Linear and activation.
        residual: add an identity shortcut around hidden layers 2..depth.
        bias: give the Linear layers a bias.
        bias_init: the value every bias starts at.
        init_options: passed to the scheme (``std`` for "normal", ``mode`` for kaiming).
    """
    depth = _positive_int("depth", depth)
    width = _positive_int("width", width)
    in_features = _positive_int("in_features", in_features)
    out_features = _positive_int("out_features", out_features)
    if not isinstance(bias, bool):
        raise _args.ArgumentTypeError(f"bias is a flag (True/False), got {bias!r}; the starting value is bias_init")
    residual = _args.flag("residual", residual)
    bias_init = _args.real("bias_init", bias_init)
    if gain is not None:
        gain = _args.real("gain", gain, positive=True)
    activations.get(activation)  # validates the name with a helpful message
    if norm is not None:
        if not isinstance(norm, str):
            raise _args.ArgumentTypeError(f"norm must be None or a name (str), got {type(norm).__name__} {norm!r}")
        norms.get(norm, 1)
    model = MLP(depth, width, in_features=in_features, out_features=out_features,
                activation=activation, norm=norm, residual=residual, bias=bias)
    apply_init(model, init, gain=gain, bias=bias_init, **init_options)
    return model


# --- Residual networks (chapter 07) ---------------------------------------------------------------

PLACEMENTS = ("branch", "pre", "post")


def _as_int(value: object) -> object:
    """NumPy integers as Python ints (anything else unchanged, for ``_positive_int`` to judge)."""
    import numbers
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


class ResidualBlock(nn.Module):
    """Two Linear layers with an activation between them, and an identity shortcut around them.

    With ``h = act(W1 u + b1)`` and ``F = W2 h + b2`` the block computes, by ``placement``:

    - "branch": ``x + s * N2(W2 act(N1(W1 x)))``: the norms sit inside the branch (ResNet, the
      source's "Fix 3", Understanding Deep Learning Fig. 11.6);
    - "pre": ``x + s * W2 act(W1 N(x))``: the norm before the branch, the shortcut untouched;
    - "post": ``N(x + s * W2 act(W1 x))``: the norm after the sum (the original Transformer).

    ``s`` is 1, or a learnable scalar that starts at 0 with ``branch_scale=True`` (SkipInit/ReZero).
    ``final_activation`` is applied after the sum (He et al. 2016 use ReLU there). With
    ``residual=False`` the shortcut is dropped: the same layers as a plain block.
    """

    def __init__(self, width: int, *, activation: str = "relu", norm: str | None = None,
                 placement: str = "branch", branch_scale: bool = False, residual: bool = True,
                 final_activation: str | None = None, bias: bool = True):
        super().__init__()
        self.linear1 = nn.Linear(width, width, bias=bias)
        self.act = activations.get(activation)
        self.linear2 = nn.Linear(width, width, bias=bias)
        self.placement = placement
        identity = nn.Identity
        self.norm1 = norms.get(norm, width) if norm is not None and placement == "branch" else identity()
        self.norm2 = norms.get(norm, width) if norm is not None and placement == "branch" else identity()
        self.norm_in = norms.get(norm, width) if norm is not None and placement == "pre" else identity()
        self.norm_out = norms.get(norm, width) if norm is not None and placement == "post" else identity()
        self.scale = nn.Parameter(torch.zeros(())) if branch_scale else None
        self.residual = residual
        self.final = activations.get(final_activation) if final_activation is not None else identity()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the residual branch alone (its norms and scale included)."""
        u = self.norm_in(x)
        f = self.norm2(self.linear2(self.act(self.norm1(self.linear1(u)))))
        return f * self.scale if self.scale is not None else f

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, width)
        f = self.branch(x)
        return self.final(self.norm_out(x + f if self.residual else f))


class ResidualMLP(nn.Module):
    """A stem Linear (only when ``in_features != width``), ``blocks`` ResidualBlocks, a Linear head.

    ``forward(x, skip=(...))`` replaces the listed blocks (0-based) by the identity: the lesion test
    of Veit et al. 2016. ``states(x)`` returns the input of every block and the last block's output.
    """

    def __init__(self, blocks: int, width: int, *, in_features: int, out_features: int,
                 bias: bool = True, **block_options: object):
        super().__init__()
        self.in_features = in_features
        self.stem = nn.Linear(in_features, width, bias=bias) if in_features != width else nn.Identity()
        self.blocks = nn.ModuleList(ResidualBlock(width, bias=bias, **block_options)
                                    for _ in range(blocks))
        self.head = nn.Linear(width, out_features, bias=bias)

    def states(self, x: torch.Tensor, skip: tuple[int, ...] | list[int] = ()) -> list[torch.Tensor]:
        """[x_0, x_1, ..., x_L]: x_0 enters block 1, x_L leaves block L (each (batch, width))."""
        if x.dim() != 2 or x.shape[-1] != self.in_features:
            raise ValueError(f"this network takes inputs of shape (batch, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        xs = [self.stem(x)]
        for i, block in enumerate(self.blocks):
            xs.append(xs[-1] if i in skip else block(xs[-1]))
        return xs

    def forward(self, x: torch.Tensor, skip: tuple[int, ...] | list[int] = ()) -> torch.Tensor:
        return self.head(self.states(x, skip)[-1])  # (batch, out_features)


def init_residual_(model: nn.Module, scheme: str = "kaiming_normal", *, gain: float | None = None,
                   zero_last: bool = False, bias: float = 0.0, **options: float | str) -> nn.Module:
    """Initialise a residual network: every Linear with ``scheme``, then, with ``zero_last``, the
    last Linear of every branch set to zero (Fixup-style, Zhang et al. 2019), so that each block
    starts as the identity.

    Args:
        model: any module holding ``ResidualBlock`` modules.
        scheme: a name from ``gradflow.init.SCHEMES`` or its aliases.
        gain: multiplies the scheme's std (see ``gradflow.init.init_weight_``).
        zero_last: zero each branch's ``linear2`` weight (and bias).
        bias: the value every other bias starts at.
        options: passed to the scheme (``std``, ``mode``).

    Returns:
        the same model.
    """
    if not isinstance(zero_last, bool):
        raise TypeError(f"zero_last must be True or False, got {zero_last!r}")
    apply_init(model, scheme, gain=gain, bias=bias, **options)
    if zero_last:
        for name, module in model.named_modules():
            if isinstance(module, ResidualBlock):
                with torch.no_grad():
                    module.linear2.weight.zero_()
                    if module.linear2.bias is not None:
                        module.linear2.bias.zero_()
    return model


def residual_mlp(blocks: int, width: int, *, in_features: int = 64, out_features: int = 10,
                 activation: str = "relu", norm: str | None = None, placement: str = "branch",
                 branch_scale: bool = False, residual: bool = True,
                 final_activation: str | None = None, init: str = "kaiming_normal",
                 gain: float | None = None, zero_last: bool = False, bias: bool = True,
                 **init_options: float | str) -> ResidualMLP:
    """A residual MLP: stem, ``blocks`` two-layer residual blocks of equal ``width``, a head.

    The defaults fit the digits data set. The source's 20-block net is
    ``residual_mlp(20, 32, in_features=32, out_features=1, norm="batch", final_activation="relu")``.

    Args:
        blocks: number of residual blocks (>= 1); the network has 2 x blocks (+ stem) + 1 Linear layers.
        width: units per block (>= 1); with ``in_features == width`` there is no stem.
        in_features: input width.
        out_features: output width.
        activation: the activation between a block's two Linears (``gradflow.activations.NAMES``).
        norm: None, or one of ``gradflow.norms.NAMES``.
        placement: where the norm goes, "branch", "pre" or "post" (see ``ResidualBlock``).
        branch_scale: multiply each branch by a learnable scalar that starts at 0 (SkipInit/ReZero).
        residual: keep the identity shortcuts; False gives the plain network with the same layers.
        final_activation: None, or an activation applied after each block's sum.
        init: the weight scheme (``gradflow.init``); "kaiming_normal" = He.
        gain: multiplies the scheme's std.
        zero_last: zero-initialise each branch's last Linear (Fixup-style).
        bias: give the Linear layers a bias.
        init_options: passed to the scheme.
    """
    blocks, width, in_features, out_features = (
        _positive_int(name, _as_int(value)) for name, value in (
            ("blocks", blocks), ("width", width), ("in_features", in_features),
            ("out_features", out_features)))
    for name, flag in (("branch_scale", branch_scale), ("residual", residual), ("bias", bias),
                       ("zero_last", zero_last)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    activations.get(activation)
    if final_activation is not None:
        activations.get(final_activation)
    if norm is not None:
        norms.get(norm, 1)
    model = ResidualMLP(blocks, width, in_features=in_features, out_features=out_features, bias=bias,
                        activation=activation, norm=norm, placement=placement,
                        branch_scale=branch_scale, residual=residual,
                        final_activation=final_activation)
    return init_residual_(model, init, gain=gain, zero_last=zero_last, **init_options)
