"""Model builders: plain functions with keyword arguments that return an ``nn.Module``.

No module here writes in place (no ``ReLU(inplace=True)``, no ``x += ...``): in-place ops break the
tensor hooks that ``gradflow.probes`` relies on.
"""

from __future__ import annotations

import torch
from torch import nn

from . import activations, norms
from .init import apply_init


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


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
    _positive_int("depth", depth)
    _positive_int("width", width)
    _positive_int("in_features", in_features)
    _positive_int("out_features", out_features)
    if not isinstance(bias, bool):
        raise TypeError(f"bias is a flag (True/False), got {bias!r}; the starting value is bias_init")
    activations.get(activation)  # validates the name with a helpful message
    if norm is not None:
        norms.get(norm, 1)
    model = MLP(depth, width, in_features=in_features, out_features=out_features,
                activation=activation, norm=norm, residual=residual, bias=bias)
    apply_init(model, init, gain=gain, bias=bias_init, **init_options)
    return model


# ---------------------------------------------------------------------------------------------
# Sequence models (chapter 08): one recurrent layer over a sequence and a linear readout.
# ---------------------------------------------------------------------------------------------

import math  # noqa: E402  (the sequence-model section is self-contained)
import numbers  # noqa: E402

def _seq_int(name: str, value: object) -> int:
    """A positive int; NumPy integers (from a sweep) are accepted."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    return int(_positive_int(name, value))


CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
RECURRENT_INITS = ("default", "xavier_uniform", "orthogonal", "identity")


class SequenceModel(nn.Module):
    """A single-layer recurrent network (``rnn``: ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``, batch
    first) and a linear ``readout`` of its hidden state.

    ``forward(x)`` takes ``(batch, length, input_size)`` and returns the readout of the *last*
    hidden state, ``(batch, out_features)``; ``forward_all(x)`` returns the readout at every step,
    ``(batch, length, out_features)``.
    """

    def __init__(self, cell: str, *, input_size: int, hidden_size: int, out_features: int):
        super().__init__()
        self.cell = cell
        self.input_size = input_size
        if cell in ("rnn_tanh", "rnn_relu"):
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=cell[4:], batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        else:
            self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, out_features)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"this sequence model takes inputs of shape (batch, length, "
                             f"{self.input_size}), got {tuple(x.shape)}")

    def forward_all(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        hidden, _ = self.rnn(x)  # (batch, length, hidden_size)
        return self.readout(hidden)  # (batch, length, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        hidden, _ = self.rnn(x)  # (batch, length, hidden_size)
        return self.readout(hidden[:, -1])  # (batch, out_features)


def _gate_slice(cell: str, gate: str, hidden_size: int) -> slice:
    """Rows of ``weight_ih``/``bias_ih`` (and ``_hh``) that belong to one gate.

    PyTorch stacks the gates as (i, f, g, o) in an LSTM and (r, z, n) in a GRU."""
    order = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}[cell]
    k = order.index(gate)
    return slice(k * hidden_size, (k + 1) * hidden_size)


def sequence_model(cell: str = "rnn_tanh", *, input_size: int = 2, hidden_size: int = 32,
                   out_features: int = 1, init: str = "default", recurrent_gain: float = 1.0,
                   forget_bias: float | None = None, input_std: float | None = None) -> SequenceModel:
    """A one-layer recurrent model with a linear readout, initialised in one explicit loop.

    The loop walks ``model.rnn.named_parameters()`` (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``) and fills each by name:

    - ``init="default"`` keeps PyTorch's own draw, U[-1/sqrt(H), 1/sqrt(H)] for every weight and
      bias of the recurrent layer (H = ``hidden_size``).
    - ``"xavier_uniform"`` / ``"orthogonal"``: ``weight_ih`` Xavier-uniform, each gate's block of
      ``weight_hh`` drawn with the scheme (orthogonal: an orthogonal H x H block per gate);
      biases 0.
    - ``"identity"`` (the IRNN of Le et al. 2015): ``weight_hh`` = identity per gate block,
      biases 0, ``weight_ih`` normal with mean 0 and std ``input_std`` (default 0.001).

    ``recurrent_gain`` then multiplies ``weight_hh`` (e.g. to set its scale above or below 1).
    ``forget_bias`` (LSTM only) sets the forget gate's *total* bias. PyTorch adds two biases,
    ``bias_ih`` and ``bias_hh``, so the forget slice of ``bias_ih`` gets ``forget_bias`` and that
    of ``bias_hh`` gets 0; ``None`` keeps what ``init`` gave (PyTorch's default: the sum of two
    U[-1/sqrt(H), 1/sqrt(H)] draws, mean 0, so the gate starts near sigmoid(0) = 0.5).
    The readout keeps PyTorch's Linear init.

    Args:
        cell: one of ``CELLS``: "rnn_tanh", "rnn_relu" (vanilla RNNs), "gru", "lstm".
        input_size: features per time step.
        hidden_size: units of the hidden state (>= 1).
        out_features: outputs of the readout.
        init: one of ``RECURRENT_INITS``.
        recurrent_gain: multiplies ``weight_hh`` after ``init`` (> 0).
        forget_bias: the LSTM forget gate's total starting bias, or None.
        input_std: std of ``weight_ih`` for ``init="identity"`` (>= 0).
    """
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; valid: {', '.join(CELLS)}")
    input_size = _seq_int("input_size", input_size)
    hidden_size = _seq_int("hidden_size", hidden_size)
    out_features = _seq_int("out_features", out_features)
    if not isinstance(init, str) or init not in RECURRENT_INITS:
        raise ValueError(f"unknown recurrent init {init!r}; valid: {', '.join(RECURRENT_INITS)}")
    if isinstance(recurrent_gain, bool) or not isinstance(recurrent_gain, numbers.Real) \
            or not recurrent_gain > 0:
        raise ValueError(f"recurrent_gain must be a number > 0, got {recurrent_gain!r}")
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"forget_bias applies to cell='lstm' only, got cell={cell!r}")
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                or not math.isfinite(forget_bias):
            raise TypeError(f"forget_bias must be a finite number or None, got {forget_bias!r}")
    if input_std is not None:
        if init != "identity":
            raise ValueError("input_std applies to init='identity' only")
        if isinstance(input_std, bool) or not isinstance(input_std, numbers.Real) or not input_std >= 0:
            raise ValueError(f"input_std must be a number >= 0, got {input_std!r}")
    std_in = 0.001 if input_std is None else float(input_std)

    model = SequenceModel(cell, input_size=input_size, hidden_size=hidden_size,
                          out_features=out_features)
    H = hidden_size
    with torch.no_grad():
        for name, param in model.rnn.named_parameters():
            kind = name.split("_")[0] + "_" + name.split("_")[1]  # weight_ih, weight_hh, bias_ih, bias_hh
            if init != "default":
                if kind.startswith("bias"):
                    param.zero_()
                elif kind == "weight_ih":
                    if init == "identity":
                        param.normal_(0.0, std_in)
                    else:
                        nn.init.xavier_uniform_(param)
                else:  # weight_hh: one H x H block per gate
                    for g in range(param.shape[0] // H):
                        block = param[g * H:(g + 1) * H]
                        if init == "identity":
                            block.copy_(torch.eye(H))
                        elif init == "orthogonal":
                            block.copy_(nn.init.orthogonal_(torch.empty(H, H)))
                        else:
                            block.copy_(nn.init.xavier_uniform_(torch.empty(H, H)))
            if kind == "weight_hh" and recurrent_gain != 1.0:
                param.mul_(float(recurrent_gain))
            if forget_bias is not None and kind.startswith("bias"):
                rows = _gate_slice("lstm", "forget", H)
                param[rows] = float(forget_bias) if kind == "bias_ih" else 0.0
    return model


def rnn(*, nonlinearity: str = "tanh", irnn: bool = False, **options: object) -> SequenceModel:
    """A vanilla (Elman) RNN, h_t = phi(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), with a readout.

    Args:
        nonlinearity: "tanh" or "relu".
        irnn: the identity-initialised ReLU RNN of Le et al. (2015): needs ``nonlinearity="relu"``
            and sets ``init="identity"``.
        options: passed to ``sequence_model`` (``hidden_size``, ``input_size``, ``init``,
            ``recurrent_gain``, ...).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if not isinstance(irnn, bool):
        raise TypeError(f"irnn is a flag (True/False), got {irnn!r}")
    if irnn:
        if nonlinearity != "relu":
            raise ValueError("an IRNN is a ReLU RNN: pass nonlinearity='relu' with irnn=True")
        if options.get("init", "identity") != "identity":
            raise ValueError(f"irnn=True sets init='identity', got init={options['init']!r}")
        options["init"] = "identity"
    return sequence_model("rnn_" + nonlinearity, **options)


def gru(**options: object) -> SequenceModel:
    """A GRU sequence model with a linear readout.

    Args:
        options: passed to ``sequence_model`` (``hidden_size``, ``input_size``, ``init``, ...).
    """
    return sequence_model("gru", **options)


def lstm(*, forget_bias: float | None = None, **options: object) -> SequenceModel:
    """An LSTM sequence model with a linear readout.

    Args:
        forget_bias: the forget gate's total starting bias (None: PyTorch's default draw, mean 0;
            Gers et al. 2000 and Jozefowicz et al. 2015 recommend 1 or more).
        options: passed to ``sequence_model`` (``hidden_size``, ``input_size``, ``init``, ...).
    """
    return sequence_model("lstm", forget_bias=forget_bias, **options)
