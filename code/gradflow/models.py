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
