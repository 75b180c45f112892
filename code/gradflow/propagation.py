"""Signal propagation at initialisation: how the scale of activations and gradients changes per layer.

In a wide network with weights of variance sigma_w^2 / fan_in and zero biases, the pre-activation
h of a layer is close to Gaussian with second moment q, and one layer maps (Poole et al. 2016)::

    q_next = sigma_w^2 * E[phi(sqrt(q) z)^2]            z ~ N(0, 1)    (forward)
    chi    = sigma_w^2 * E[phi'(sqrt(q) z)^2]                          (backward, per layer)

A gradient's mean square is multiplied by chi at every layer, so the *critical* weight scale is the
one where chi = 1 at the fixed point q* of the forward map. For ReLU, E[relu'(h)^2] = 1/2 for any q:
sigma_w^2 = 2 (He init). For tanh with zero bias, q* = 0 for sigma_w <= 1 and chi = sigma_w^2 there,
so the critical scale is sigma_w = 1.

The expectations are computed by Gauss-Hermite quadrature (exact for polynomials, accurate to
~1e-10 for the smooth activations here; the nodes are symmetric and avoid 0, so the ReLU-family
kink at 0 costs nothing: for ReLU and leaky ReLU both expectations are exact).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from . import _args, activations
from .core import to_model_device
from .data import random_classification
from .models import MLP, mlp
from .plots import grid, layer_profile
from .probes import measure

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(200)  # even: no node at the kink z = 0
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: float) -> float:
    """E[f(h)] for h ~ N(0, q), by Gauss-Hermite quadrature with 200 nodes (none at 0).

    Args:
        f: a vectorised function of a NumPy array.
        q: the variance of h (>= 0; q = 0 gives f(0)).
    """
    if not callable(f):
        raise _args.ArgumentTypeError(f"f must be a function of a NumPy array, got {type(f).__name__}")
    q = _args.real("q (the variance of h)", q, minimum=0.0)
    return float(np.sum(_WEIGHTS * f(math.sqrt(q) * _NODES)))


def _numpy_fn(activation: str, derivative: bool) -> Callable[[np.ndarray], np.ndarray]:
    activations.get(activation)  # validates the name
    if derivative:
        return lambda h: activations.derivative(activation, torch.from_numpy(h)).numpy()
    module = activations.get(activation).double()  # PReLU has a float32 parameter
    return lambda h: module(torch.from_numpy(h)).detach().numpy()


def next_q(activation: str, sigma_w: float, q: float, sigma_b: float = 0.0) -> float:
    """One layer of the forward variance map: sigma_w^2 E[phi(h)^2] + sigma_b^2, h ~ N(0, q).

    Args:
        activation: an activation name (see ``gradflow.activations.NAMES``).
        sigma_w: weight scale (weights have variance sigma_w^2 / fan_in).
        q: second moment of the incoming pre-activations.
        sigma_b: bias standard deviation.
    """
    phi = _numpy_fn(activation, derivative=False)
    sigma_w, sigma_b = _sigmas(sigma_w, sigma_b)
    q = _args.real("q", q, minimum=0.0)
    return sigma_w**2 * gaussian_expectation(lambda h: phi(h) ** 2, q) + sigma_b**2


def _sigmas(sigma_w: float, sigma_b: float = 0.0) -> tuple[float, float]:
    return (_args.real("sigma_w", sigma_w, positive=True), _args.real("sigma_b", sigma_b, minimum=0.0))


def chi(activation: str, sigma_w: float, q: float) -> float:
    """The per-layer factor on a gradient's mean square: sigma_w^2 E[phi'(h)^2], h ~ N(0, q).

    Args:
        activation: an activation name.
        sigma_w: weight scale.
        q: second moment of the pre-activations at that layer.
    """
    dphi = _numpy_fn(activation, derivative=True)
    sigma_w, _ = _sigmas(sigma_w)
    q = _args.real("q", q, minimum=0.0)
    return sigma_w**2 * gaussian_expectation(lambda h: dphi(h) ** 2, q)


def fixed_point_q(
    activation: str, sigma_w: float, sigma_b: float = 0.0, *, q0: float = 1.0, iterations: int = 2000
) -> float:
    """q after ``iterations`` layers of the forward map, started at q0: the fixed point q* when the
    map converges (near the critical scale it converges slowly, like 1/iterations, towards 0).

    Args:
        activation: an activation name.
        sigma_w: weight scale (> 0).
        sigma_b: bias standard deviation.
        q0: starting second moment (> 0).
        iterations: layers to iterate (>= 1).
    """
    sigma_w, sigma_b = _sigmas(sigma_w, sigma_b)
    q0 = _args.real("q0", q0, positive=True)
    iterations = _args.integer("iterations", iterations, minimum=1, maximum=10**6)
    phi = _numpy_fn(activation, derivative=False)
    q = q0
    for _ in range(iterations):
        q = sigma_w**2 * gaussian_expectation(lambda h: phi(h) ** 2, q) + sigma_b**2
        if not math.isfinite(q) or q > 1e12:
            return math.inf
    return q


def critical_sigma_w(
    activation: str, sigma_b: float = 0.0, *, low: float = 0.3, high: float = 4.0, tol: float = 1e-4
) -> float:
    """The weight scale where chi = 1 at the forward fixed point (the edge of chaos), by bisection.

    Args:
        activation: an activation name whose chi grows with sigma_w (tanh, relu, ...).
        sigma_b: bias standard deviation.
        low, high: bracket for sigma_w; chi - 1 must change sign between them.
        tol: width of the final bracket (at least 1e-10: bisection cannot split floats finer).
    """
    _numpy_fn(activation, derivative=False)
    _, sigma_b = _sigmas(1.0, sigma_b)
    low = _args.real("low", low, positive=True)
    high = _args.real("high", high, positive=True)
    if not low < high:
        raise ValueError(f"the bracket needs low < high, got low={low}, high={high}")
    tol = _args.real("tol", tol, minimum=1e-10)

    def excess(s: float) -> float:
        q = fixed_point_q(activation, s, sigma_b)
        return chi(activation, s, q) - 1.0 if math.isfinite(q) else math.inf

    if not excess(low) < 0 < excess(high):
        raise ValueError(
            f"chi - 1 does not change sign between sigma_w = {low} and {high} for "
            f"{activation!r} (sigma_b = {sigma_b})"
        )
    while high - low > tol:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if excess(mid) < 0 else (low, mid)
    return 0.5 * (low + high)


def forward_rms(model: MLP, x: torch.Tensor) -> list[float]:
    """RMS (root mean square over batch and units) of each hidden layer's output, input side first.

    Args:
        model: a ``gradflow.models.MLP`` (anything with a ``hidden`` list of layers).
        x: a batch of inputs, shape (batch, in_features); moved to the model's device.
    """
    _args.module("model", model)
    hidden = getattr(model, "hidden", None)
    if not isinstance(hidden, nn.ModuleList):
        raise _args.ArgumentTypeError("forward_rms needs a gradflow MLP (a model with a `hidden` ModuleList)")
    (x,) = to_model_device(model, _args.tensor("x", x, min_dim=2))
    out = []
    with torch.no_grad():
        for layer in hidden:
            x = layer(x)
            out.append(x.pow(2).mean().sqrt().item())
    return out


def gradient_profile(
    depth: int,
    activation: str,
    init: str,
    gain: float | None = None,
    *,
    width: int = 64,
    batch: int = 128,
    seed: int = 0,
    double: bool = False,
) -> list[float]:
    """RMS of dL/dz at each hidden layer (input side first) of a fresh ``mlp`` at initialisation,
    on one batch of random inputs with random labels (10 classes).

    Args:
        depth: hidden layers.
        activation: an activation name.
        init: an init scheme name.
        gain: multiplies the init's std; None = the scheme's own (sqrt 2 for kaiming, else 1).
        width: units per hidden layer (also the input width).
        batch: examples in the batch.
        seed: seeds the weights and the batch.
        double: compute in float64 (ratios below ~1e-30 underflow float32).
    """
    depth = _args.integer("depth", depth, minimum=1)
    width = _args.integer("width", width, minimum=1)
    batch = _args.integer("batch", batch, minimum=1)
    seed = _args.integer("seed", seed, minimum=0)
    double = _args.flag("double", double)
    torch.manual_seed(seed)
    model = mlp(
        depth, width, in_features=width, out_features=10, activation=activation, init=init, gain=gain
    ).to("cpu")
    x, y = random_classification(batch, width, 10, seed=seed)
    if double:
        model, x = model.double(), x.double()
    return [s.preact_grad_rms for s in measure(model, x, y, activations=False)][:depth]


def gradient_ratio(
    depth: int, activation: str, sigma_w: float, *, width: int = 32, batch: int = 32, seed: int = 0
) -> float:
    """log10 of RMS(dL/dz) at hidden layer 1 over hidden layer ``depth`` for a fresh MLP with
    weights N(0, sigma_w^2 / fan_in) ("lecun" with gain sigma_w), zero biases, on one random batch,
    in float64 (ratios reach 1e-30).

    Args:
        depth: hidden layers (>= 2).
        activation: an activation name.
        sigma_w: weight scale (> 0).
        width: units per hidden layer (also the input width).
        batch: examples in the batch.
        seed: seeds the weights and the batch.
    """
    depth = _args.integer("depth", depth, minimum=2)  # a first/last ratio needs two layers
    sigma_w, _ = _sigmas(sigma_w)
    rms = gradient_profile(
        depth, activation, "lecun", sigma_w, width=width, batch=batch, seed=seed, double=True
    )
    return math.log10(rms[0]) - math.log10(rms[-1])


def gradient_ratio_grid(
    activation: str,
    depths: list[int],
    sigma_ws: list[float],
    *,
    width: int = 32,
    batch: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """``gradient_ratio`` for every (depth, sigma_w): array of shape (len(depths), len(sigma_ws)).

    Args:
        activation: an activation name.
        depths: hidden-layer counts (each >= 2), the rows.
        sigma_ws: weight scales, the columns.
        width, batch, seed: see ``gradient_ratio`` (keep width and batch small: it is a grid).
    """
    if len(depths) == 0 or len(sigma_ws) == 0:
        raise ValueError("depths and sigma_ws must be non-empty")
    depths = [_args.integer(f"depths[{i}]", d, minimum=2) for i, d in enumerate(depths)]
    sigma_ws = [_args.real(f"sigma_ws[{i}]", s, positive=True) for i, s in enumerate(sigma_ws)]
    return np.array(
        [
            [gradient_ratio(d, activation, s, width=width, batch=batch, seed=seed) for s in sigma_ws]
            for d in depths
        ]
    )


def draw_signal_profile(
    depth: int = 30,
    activation: str = "relu",
    init: str = "kaiming_normal",
    gain: float = 1.0,
    width: int = 128,
    seed: int = 0,
    axes: np.ndarray | None = None,
) -> np.ndarray:
    """Two panels for a fresh MLP on one random batch: forward RMS of each hidden layer's output and
    RMS of the gradient dL/dz at each hidden layer, input side first.

    Args:
        depth: hidden layers.
        activation: an activation name.
        init: an init scheme name (``gradflow.init.SCHEMES`` or an alias).
        gain: multiplies the scheme's std (for kaiming the ReLU gain sqrt(2) is multiplied too).
        width: units per hidden layer (also the input width).
        seed: seeds the weights and the batch.
        axes: two axes to draw on; a new figure if None.
    """
    gain = _args.real("gain", gain, positive=True)
    torch.manual_seed(_args.integer("seed", seed, minimum=0))
    from .init import KAIMING_DEFAULT_GAIN, resolve

    base = KAIMING_DEFAULT_GAIN if resolve(init).startswith("kaiming") else 1.0
    model = mlp(
        depth, width, in_features=width, out_features=10, activation=activation, init=init, gain=base * gain
    ).to("cpu")
    x, y = random_classification(256, width, 10, seed=seed)
    fwd = forward_rms(model, x)
    grad = [s.preact_grad_rms for s in measure(model, x, y, activations=False)][:depth]
    if axes is None:
        _, axes = grid(2, width=4.2, height=3.3)
    label = f"{activation}, {init}, gain {gain:g}"
    rel = [g / grad[-1] for g in grad]  # relative to the last hidden layer
    layer_profile(
        {label: fwd},
        ax=axes[0],
        ylabel="RMS of layer output",
        title=f"forward: layer {depth} RMS {fwd[-1]:.1e}",
    )
    layer_profile(
        {label: rel},
        ax=axes[1],
        ylabel=f"RMS of dL/dz / its value at layer {depth}",
        title=f"backward: layer 1 / layer {depth} = {rel[0]:.1e}",
    )
    for ax, values in zip(axes, (fwd, rel)):  # at least 1e-2 .. 1e2: a flat line looks flat
        finite = [v for v in values if v > 0 and math.isfinite(v)] or [1.0]
        ax.set_ylim(min(1e-2, min(finite) / 3), max(1e2, max(finite) * 3))
    plt.tight_layout()
    return axes


def predicted_log10_ratio(
    activation: str, sigma_w: float, depths: list[int], *, q0: float = 1.0
) -> np.ndarray:
    """Mean-field prediction of ``gradient_ratio``: 0.5 * sum_{l=1}^{L-1} log10 chi(q_l), with q_l
    the pre-activation second moment of hidden layer l from the forward map (q_1 = sigma_w^2 q0,
    zero biases, equal widths). One value per entry of ``depths``.

    Args:
        activation: an activation name.
        sigma_w: weight scale (> 0).
        depths: hidden-layer counts (each >= 1).
        q0: mean square of the input features (1 for standard Gaussian inputs).
    """
    sigma_w, _ = _sigmas(sigma_w)
    q0 = _args.real("q0", q0, minimum=0.0)
    if len(depths) == 0:
        raise ValueError("depths must be non-empty")
    depths = [_args.integer(f"depths[{i}]", d, minimum=1) for i, d in enumerate(depths)]
    total, cumulative = 0.0, [0.0]  # cumulative[L-1] = prediction for depth L
    q = sigma_w**2 * q0
    for _ in range(1, max(depths)):
        total += 0.5 * math.log10(chi(activation, sigma_w, q))
        cumulative.append(total)
        q = next_q(activation, sigma_w, q)
    return np.array([cumulative[d - 1] for d in depths])
