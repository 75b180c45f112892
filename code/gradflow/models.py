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

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        *,
        activation: str,
        norm: str | None,
        residual: bool,
        bias: bool = True,
    ):
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

    def __init__(
        self,
        depth: int,
        width: int,
        *,
        in_features: int,
        out_features: int,
        activation: str,
        norm: str | None,
        residual: bool,
        bias: bool = True,
    ):
        super().__init__()
        self.in_features = in_features
        self.hidden = nn.ModuleList(
            Dense(
                in_features if i == 0 else width,
                width,
                activation=activation,
                norm=norm,
                # the first layer changes width, so it cannot carry an identity shortcut
                residual=residual and i > 0,
                bias=bias,
            )
            for i in range(depth)
        )
        self.head = nn.Linear(width, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, in_features)
        if x.dim() < 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"this MLP takes inputs of width {self.in_features} (shape (batch, "
                f"{self.in_features})), got shape {tuple(x.shape)} of width "
                f"{x.shape[-1] if x.dim() else 'none'}"
            )
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)  # (batch, out_features)


def mlp(
    depth: int,
    width: int,
    *,
    in_features: int = 64,
    out_features: int = 10,
    activation: str = "relu",
    init: str = "default",
    gain: float | None = None,
    norm: str | None = None,
    residual: bool = False,
    bias: bool = True,
    bias_init: float = 0.0,
    **init_options: float | str,
) -> MLP:
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
        raise _args.ArgumentTypeError(
            f"bias is a flag (True/False), got {bias!r}; the starting value is bias_init"
        )
    residual = _args.flag("residual", residual)
    bias_init = _args.real("bias_init", bias_init)
    if gain is not None:
        gain = _args.real("gain", gain, positive=True)
    activations.get(activation)  # validates the name with a helpful message
    if norm is not None:
        if not isinstance(norm, str):
            raise _args.ArgumentTypeError(
                f"norm must be None or a name (str), got {type(norm).__name__} {norm!r}"
            )
        norms.get(norm, 1)
    model = MLP(
        depth,
        width,
        in_features=in_features,
        out_features=out_features,
        activation=activation,
        norm=norm,
        residual=residual,
        bias=bias,
    )
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

    def __init__(
        self,
        width: int,
        *,
        activation: str = "relu",
        norm: str | None = None,
        placement: str = "branch",
        branch_scale: bool = False,
        residual: bool = True,
        final_activation: str | None = None,
        bias: bool = True,
    ):
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

    def __init__(
        self,
        blocks: int,
        width: int,
        *,
        in_features: int,
        out_features: int,
        bias: bool = True,
        **block_options: object,
    ):
        super().__init__()
        self.in_features = in_features
        self.stem = nn.Linear(in_features, width, bias=bias) if in_features != width else nn.Identity()
        self.blocks = nn.ModuleList(ResidualBlock(width, bias=bias, **block_options) for _ in range(blocks))
        self.head = nn.Linear(width, out_features, bias=bias)

    def states(self, x: torch.Tensor, skip: tuple[int, ...] | list[int] = ()) -> list[torch.Tensor]:
        """[x_0, x_1, ..., x_L]: x_0 enters block 1, x_L leaves block L (each (batch, width))."""
        if x.dim() != 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"this network takes inputs of shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        xs = [self.stem(x)]
        for i, block in enumerate(self.blocks):
            xs.append(xs[-1] if i in skip else block(xs[-1]))
        return xs

    def forward(self, x: torch.Tensor, skip: tuple[int, ...] | list[int] = ()) -> torch.Tensor:
        return self.head(self.states(x, skip)[-1])  # (batch, out_features)


def init_residual_(
    model: nn.Module,
    scheme: str = "kaiming_normal",
    *,
    gain: float | None = None,
    zero_last: bool = False,
    bias: float = 0.0,
    **options: float | str,
) -> nn.Module:
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
        for _name, module in model.named_modules():
            if isinstance(module, ResidualBlock):
                with torch.no_grad():
                    module.linear2.weight.zero_()
                    if module.linear2.bias is not None:
                        module.linear2.bias.zero_()
    return model


def residual_mlp(
    blocks: int,
    width: int,
    *,
    in_features: int = 64,
    out_features: int = 10,
    activation: str = "relu",
    norm: str | None = None,
    placement: str = "branch",
    branch_scale: bool = False,
    residual: bool = True,
    final_activation: str | None = None,
    init: str = "kaiming_normal",
    gain: float | None = None,
    zero_last: bool = False,
    bias: bool = True,
    **init_options: float | str,
) -> ResidualMLP:
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
        _positive_int(name, _as_int(value))
        for name, value in (
            ("blocks", blocks),
            ("width", width),
            ("in_features", in_features),
            ("out_features", out_features),
        )
    )
    for name, flag in (
        ("branch_scale", branch_scale),
        ("residual", residual),
        ("bias", bias),
        ("zero_last", zero_last),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    activations.get(activation)
    if final_activation is not None:
        activations.get(final_activation)
    if norm is not None:
        norms.get(norm, 1)
    model = ResidualMLP(
        blocks,
        width,
        in_features=in_features,
        out_features=out_features,
        bias=bias,
        activation=activation,
        norm=norm,
        placement=placement,
        branch_scale=branch_scale,
        residual=residual,
        final_activation=final_activation,
    )
    return init_residual_(model, init, gain=gain, zero_last=zero_last, **init_options)


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
            raise ValueError(
                f"this sequence model takes inputs of shape (batch, length, "
                f"{self.input_size}), got {tuple(x.shape)}"
            )

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


def sequence_model(
    cell: str = "rnn_tanh",
    *,
    input_size: int = 2,
    hidden_size: int = 32,
    out_features: int = 1,
    init: str = "default",
    recurrent_gain: float = 1.0,
    forget_bias: float | None = None,
    input_std: float | None = None,
) -> SequenceModel:
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
    if (
        isinstance(recurrent_gain, bool)
        or not isinstance(recurrent_gain, numbers.Real)
        or not recurrent_gain > 0
    ):
        raise ValueError(f"recurrent_gain must be a number > 0, got {recurrent_gain!r}")
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(f"forget_bias applies to cell='lstm' only, got cell={cell!r}")
        if (
            isinstance(forget_bias, bool)
            or not isinstance(forget_bias, numbers.Real)
            or not math.isfinite(forget_bias)
        ):
            raise TypeError(f"forget_bias must be a finite number or None, got {forget_bias!r}")
    if input_std is not None:
        if init != "identity":
            raise ValueError("input_std applies to init='identity' only")
        if isinstance(input_std, bool) or not isinstance(input_std, numbers.Real) or not input_std >= 0:
            raise ValueError(f"input_std must be a number >= 0, got {input_std!r}")
    std_in = 0.001 if input_std is None else float(input_std)

    model = SequenceModel(cell, input_size=input_size, hidden_size=hidden_size, out_features=out_features)
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
                        block = param[g * H : (g + 1) * H]
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
