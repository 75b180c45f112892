"""A health dashboard for any model during training, built from small pieces. Usage::

    with gradflow.dashboard.Recorder(model) as rec:
        gradflow.train.fit(model, data, steps=300)      # or your own training loop
    gradflow.dashboard.show(rec)

The ``Recorder`` watches *training* passes only (a forward pass with autograd on and the model in
train mode; evaluation under ``torch.no_grad`` is skipped) and keeps, per recorded step:

- a histogram of ``|activation|`` for every activation module (ReLU, sigmoid, ...): drawn over the
  steps as an image, the "colorful dimension" of fastai's course; the fraction of values in the
  lowest bin (near zero) is the *dead chart*;
- a histogram of ``log10 |dL/dW|`` for every layer (Linear, Conv: a weight of two or more dims);
- the update-to-weight ratio ``||W_after - W_before|| / ||W_before||`` of every layer, from the
  weights actually changed by the optimizer between one training pass and the next (about 1e-3
  per step is the healthy range for plain SGD: Karpathy's rule of thumb in CS231n and makemore).

Every hook is removed on exit, even after an exception. The plot functions take a finished
recorder; ``show`` puts them on one figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from . import activations
from .probes import layers_of

HEALTHY_UPDATE_RATIO = 1e-3


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _range(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (low, high), got {value!r}")
    low, high = _real(f"{name}[0]", value[0]), _real(f"{name}[1]", value[1])
    if not low < high:
        raise ValueError(f"{name} needs low < high, got {value!r}")
    return low, high


def histogram(values: torch.Tensor, bins: int, low: float, high: float) -> torch.Tensor:
    """Counts of ``values`` in ``bins`` equal bins on [low, high], out-of-range values clamped
    into the first or last bin (``torch.histc`` alone would drop them), so the counts always sum
    to ``values.numel()``.

    Args:
        values: any tensor (flattened).
        bins: number of bins (>= 1).
        low: left edge of the first bin.
        high: right edge of the last bin (> low).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    low, high = _range("(low, high)", (low, high))
    v = values.detach().float().clamp(low, high)
    return torch.histc(v, bins=int(bins), min=low, max=high)


class Recorder:
    """Context manager that records the dashboard's statistics during training.

    Args:
        model: any ``nn.Module`` with at least one layer (a weight of >= 2 dims) to watch.
        bins: bins of every histogram.
        act_range: (low, high) of the ``|activation|`` histograms; larger values land in the last
            bin. (0, 1) suits sigmoid and tanh; the default (0, 4) suits ReLU-family nets.
        grad_range: (low, high) of the ``log10 |dL/dW|`` histograms; exact zeros land in the first bin.
        every: record every this many training passes (1 = every step).
        modules: the modules whose outputs to histogram; default every activation module that
            ``gradflow.activations`` recognises (nn.ReLU, nn.Sigmoid, nn.Tanh, ...), in run order.

    After the run (attributes, NumPy arrays, steps count training passes from 1):
        ``act_steps``, ``act_names``, ``act_hist`` (steps, modules, bins);
        ``grad_steps``, ``layer_names``, ``grad_hist`` (steps, layers, bins);
        ``update_steps``, ``update_ratio`` (steps, layers): the update of that step;
        ``weight_eps``: the weights' relative round-off (``torch.finfo(dtype).eps``, 1.2e-7 for
        float32); an update ratio below it is rounding, not an update.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        bins: int = 40,
        act_range: tuple[float, float] = (0.0, 4.0),
        grad_range: tuple[float, float] = (-12.0, 2.0),
        every: int = 1,
        modules: Sequence[nn.Module] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
            raise ValueError(f"bins must be an int >= 2, got {bins!r}")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.model = model
        self.bins = int(bins)
        self.act_range = _range("act_range", act_range)
        self.grad_range = _range("grad_range", grad_range)
        self.every = int(every)
        self._layers = layers_of(model)
        if not self._layers:
            raise ValueError("Recorder found no layer with a >= 2-D weight (Linear, Conv) to watch")
        names = {id(m): n or type(m).__name__ for n, m in model.named_modules()}
        if modules is None:
            modules = [m for m in model.modules() if activations.name_of(m) is not None]
        else:
            modules = list(modules)
            for i, m in enumerate(modules):
                if not isinstance(m, nn.Module) or id(m) not in names:
                    raise ValueError(f"modules[{i}] is not a submodule of model")
        self._watched = modules
        self._watched_names = {id(m): names[id(m)] for m in modules}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._pass = 0  # training passes seen
        self._recording = False
        self._act_order: list[int] = []  # module ids in run order (first recorded pass)
        self._act: list[dict[int, torch.Tensor]] = []
        self._act_steps: list[int] = []
        self._grad: list[dict[int, torch.Tensor]] = []
        self._grad_steps: list[int] = []
        self._snapshot: tuple[int, list[torch.Tensor]] | None = None
        self._updates: list[list[float]] = []
        self._update_steps: list[int] = []
        # relative round-off of the watched weights (float32: 1.2e-7): smaller update ratios are
        # below what the weights can represent
        self.weight_eps = max(
            torch.finfo(layer.weight.dtype).eps if layer.weight.is_floating_point() else 0.0
            for _, layer in self._layers
        )

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        self._handles.append(self.model.register_forward_pre_hook(self._start_pass))
        for m in self._watched:
            self._handles.append(m.register_forward_hook(self._act_hook))
        for i, (_, layer) in enumerate(self._layers):
            self._handles.append(layer.weight.register_hook(self._grad_hook(i)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook and measure the last pending update (``__exit__`` calls it)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._close_update()
        self._recording = False

    # -- hooks ----------------------------------------------------------------------------
    def _weights(self) -> list[torch.Tensor]:
        return [layer.weight.detach() for _, layer in self._layers]

    def _close_update(self) -> None:
        if self._snapshot is None:
            return
        step, before = self._snapshot
        self._snapshot = None
        ratios = [
            torch.linalg.vector_norm(w - w0) / torch.linalg.vector_norm(w0).clamp_min(1e-30)
            for w, w0 in zip(self._weights(), before)
        ]
        self._update_steps.append(step)
        self._updates.append(torch.stack(ratios).tolist())

    def _start_pass(self, module: nn.Module, inputs: object) -> None:
        if not (torch.is_grad_enabled() and self.model.training):
            self._recording = False  # evaluation: not a training step
            return
        self._close_update()  # the weights changed since the last recorded training pass
        self._pass += 1
        self._recording = (self._pass - 1) % self.every == 0
        if self._recording:
            self._act.append({})
            self._act_steps.append(self._pass)
            self._grad.append({})
            self._grad_steps.append(self._pass)
            self._snapshot = (self._pass, [w.clone() for w in self._weights()])

    def _act_hook(self, module: nn.Module, inputs: object, out: object) -> None:
        if not self._recording or not isinstance(out, torch.Tensor):
            return
        key = id(module)
        if key not in self._act_order:
            self._act_order.append(key)
        counts = histogram(out.abs(), self.bins, *self.act_range)
        slot = self._act[-1]
        slot[key] = slot[key] + counts if key in slot else counts  # a module run twice: both

    def _grad_hook(self, i: int):
        def hook(grad: torch.Tensor) -> None:
            if not self._recording or not self._grad:
                return
            logs = torch.log10(grad.detach().abs().float().clamp_min(1e-30))
            counts = histogram(logs, self.bins, *self.grad_range)
            slot = self._grad[-1]
            slot[i] = slot[i] + counts if i in slot else counts

        return hook

    # -- results --------------------------------------------------------------------------
    @property
    def act_names(self) -> list[str]:
        """Names of the watched modules that produced output, in run order."""
        return [self._watched_names[k] for k in self._act_order]

    @property
    def act_steps(self) -> np.ndarray:
        """Training-pass numbers (from 1) at which activations were recorded."""
        return np.array(self._act_steps, dtype=int)

    @property
    def act_hist(self) -> np.ndarray:
        """Counts of ``|activation|``, shape (steps, modules, bins); rows of 0 where none ran."""
        out = np.zeros((len(self._act), len(self._act_order), self.bins))
        for t, slot in enumerate(self._act):
            for j, key in enumerate(self._act_order):
                if key in slot:
                    out[t, j] = slot[key].cpu().numpy()
        return out

    def dead_fraction(self) -> np.ndarray:
        """Fraction of activations in the lowest histogram bin, shape (steps, modules): fastai's
        dead chart (near-zero outputs: dead ReLUs, or sigmoid units pinned at 0)."""
        hist = self.act_hist
        total = hist.sum(axis=2)
        return np.divide(hist[:, :, 0], total, out=np.full(total.shape, np.nan), where=total > 0)

    @property
    def layer_names(self) -> list[str]:
        """Names of the layers (weights of >= 2 dims), in registration order."""
        return [n for n, _ in self._layers]

    @property
    def grad_steps(self) -> np.ndarray:
        """Training-pass numbers at which gradient histograms were recorded."""
        return np.array(self._grad_steps, dtype=int)

    @property
    def grad_hist(self) -> np.ndarray:
        """Counts of ``log10 |dL/dW|``, shape (steps, layers, bins)."""
        out = np.zeros((len(self._grad), len(self._layers), self.bins))
        for t, slot in enumerate(self._grad):
            for i, counts in slot.items():
                out[t, i] = counts.cpu().numpy()
        return out

    @property
    def update_steps(self) -> np.ndarray:
        """Training-pass numbers whose update was measured."""
        return np.array(self._update_steps, dtype=int)

    @property
    def update_ratio(self) -> np.ndarray:
        """``||ΔW|| / ||W||`` of each layer for each measured step, shape (steps, layers)."""
        return np.array(self._updates, dtype=float).reshape(len(self._updates), len(self._layers))


# -- plots ----------------------------------------------------------------------------------
def _check_recorder(rec: object) -> Recorder:
    if not isinstance(rec, Recorder):
        raise TypeError(f"rec must be a gradflow.dashboard.Recorder, got {type(rec).__name__}")
    return rec


def _new_axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_activations(
    rec: Recorder, *, modules: Sequence[int] | None = None, axes: Sequence[plt.Axes] | None = None
) -> list[plt.Axes]:
    """The "colorful dimension": per watched module, the ``|activation|`` histogram of every
    recorded step as one image column (x = step, y = value, colour = log(1 + count)).

    Args:
        rec: a finished ``Recorder``.
        modules: indices into ``rec.act_names`` to draw; default first, middle and last.
        axes: one axes per module; new ones if None.
    """
    rec = _check_recorder(rec)
    hist = rec.act_hist
    if hist.shape[0] == 0 or hist.shape[1] == 0:
        raise ValueError("the recorder saw no activation during a training pass")
    n = hist.shape[1]
    if modules is None:
        modules = sorted({0, n // 2, n - 1})
    modules = list(modules)
    for j in modules:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < n:
            raise ValueError(f"modules must hold indices in [0, {n}), got {j!r}")
    if axes is None:
        _, axes = plt.subplots(1, len(modules), figsize=(3.2 * len(modules), 2.8), squeeze=False)
        axes = list(axes[0])
    if len(axes) != len(modules):
        raise ValueError(f"need one axes per module: {len(modules)} modules, {len(axes)} axes")
    steps = rec.act_steps
    low, high = rec.act_range
    for ax, j in zip(axes, modules):
        ax.imshow(
            np.log1p(hist[:, j, :].T),
            origin="lower",
            aspect="auto",
            cmap="viridis",
            extent=(steps[0] - 0.5, steps[-1] + 0.5, low, high),
        )
        ax.grid(False)
        ax.set_title(f"{rec.act_names[j]} (#{j + 1})", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("|activation|")
    return axes


def plot_dead(rec: Recorder, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Fraction of each watched module's ``|activation|`` in the lowest bin, over steps.

    Args:
        rec: a finished ``Recorder``.
        ax: axes to draw on; a new figure if None.
    """
    rec = _check_recorder(rec)
    dead = rec.dead_fraction()
    ax = _new_axes(ax, (4.5, 3.0))
    cmap = plt.get_cmap("viridis")
    n = dead.shape[1]
    for j in range(n):
        ax.plot(
            rec.act_steps,
            dead[:, j],
            color=cmap(j / max(n - 1, 1)),
            lw=1,
            label=f"#{j + 1}" if j in (0, n - 1) else None,
        )
    width = (rec.act_range[1] - rec.act_range[0]) / rec.bins
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"fraction with |a| < {width:.3g}")
    ax.set_title("dead chart (lowest bin)", fontsize=9)
    if n:
        ax.legend(
            fontsize=7, title="activation", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0)
        )
    return ax


def plot_grad_histograms(rec: Recorder, *, last: int = 10, ax: plt.Axes | None = None) -> plt.Axes:
    """Per layer, the distribution of ``log10 |dL/dW|`` over the last ``last`` recorded steps.

    Args:
        rec: a finished ``Recorder``.
        last: how many of the final recorded steps to pool (>= 1).
        ax: axes to draw on; a new figure if None.
    """
    rec = _check_recorder(rec)
    if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or last < 1:
        raise ValueError(f"last must be an int >= 1, got {last!r}")
    hist = rec.grad_hist
    if hist.shape[0] == 0:
        raise ValueError("the recorder saw no backward pass during training")
    pooled = hist[-int(last) :].sum(axis=0)  # (layers, bins)
    low, high = rec.grad_range
    centers = low + (np.arange(rec.bins) + 0.5) * (high - low) / rec.bins
    ax = _new_axes(ax, (4.5, 3.0))
    cmap = plt.get_cmap("viridis")
    n = pooled.shape[0]
    for i in range(n):
        total = pooled[i].sum()
        if total > 0:
            ax.plot(
                centers,
                pooled[i] / total,
                color=cmap(i / max(n - 1, 1)),
                lw=1,
                label=f"layer {i + 1}" if i in (0, n - 1) else None,
            )
    ax.set_xlabel("log10 |dL/dW|")
    ax.set_ylabel("fraction of weights")
    ax.set_title(f"gradient histograms (last {min(last, hist.shape[0])} steps)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_update_ratios(rec: Recorder, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Per layer, ``log10 ||ΔW|| / ||W||`` over training, with the 1e-3 rule of thumb.

    Args:
        rec: a finished ``Recorder``.
        ax: axes to draw on; a new figure if None.
    """
    rec = _check_recorder(rec)
    ratio = rec.update_ratio
    if ratio.shape[0] == 0:
        raise ValueError("the recorder measured no update (no training pass was recorded)")
    ax = _new_axes(ax, (4.5, 3.0))
    cmap = plt.get_cmap("viridis")
    n = ratio.shape[1]
    floor = 1e-12  # a layer that did not move at all
    # A relative change below the weights' round-off (float32: eps = 1.2e-7) is not an update the
    # optimizer made: w + dw rounds back to w for most weights. Where a ratio falls there, shade
    # the band: it is not data.
    eps = rec.weight_eps
    if eps > floor and bool((ratio < eps).any()):
        ax.axhspan(floor, eps, color="0.88", zorder=0, label=f"round-off (< {eps:.0e})")
    for i in range(n):
        ax.plot(
            rec.update_steps,
            np.maximum(ratio[:, i], floor),
            color=cmap(i / max(n - 1, 1)),
            lw=1,
            label=f"layer {i + 1}" if i in (0, n - 1) else None,
        )
    ax.axhline(HEALTHY_UPDATE_RATIO, color="k", ls="--", lw=1, label="1e-3")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("||ΔW|| / ||W||")
    ax.set_title("update-to-weight ratio", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def show(rec: Recorder, *, title: str | None = None) -> plt.Figure:
    """The whole dashboard on one figure: three activation images (first, middle, last module)
    above the dead chart, the gradient histograms and the update ratios.

    Args:
        rec: a finished ``Recorder``.
        title: a title for the figure.
    """
    rec = _check_recorder(rec)
    fig = plt.figure(figsize=(12.0, 5.8), layout="constrained")
    n = len(rec.act_names)
    modules = sorted({0, n // 2, n - 1}) if n else []
    grid = fig.add_gridspec(2, 3)
    top = grid[0, :].subgridspec(1, max(len(modules), 1))
    if modules:
        plot_activations(rec, modules=modules, axes=[fig.add_subplot(top[0, k]) for k in range(len(modules))])
        plot_dead(rec, ax=fig.add_subplot(grid[1, 0]))
    plot_grad_histograms(rec, ax=fig.add_subplot(grid[1, 1]))
    plot_update_ratios(rec, ax=fig.add_subplot(grid[1, 2]))
    if title:
        fig.suptitle(title)
    return fig


# -- explorer -------------------------------------------------------------------------------
def draw_dashboard(
    activation: str = "sigmoid",
    init: str = "default",
    norm: str | None = None,
    residual: bool = False,
    depth: int = 10,
    lr: float = 0.1,
    steps: int = 100,
    seed: int = 0,
) -> plt.Figure:
    """Train a fresh ``gradflow.models.mlp`` of width 64 on the digits under a ``Recorder`` (on
    the CPU; every second step recorded from 50 steps on) and draw its dashboard.

    Args:
        activation: an activation name.
        init: an init scheme name.
        norm: None, "batch", "layer" or "rms".
        residual: identity shortcuts around hidden layers 2..depth.
        depth: hidden layers (>= 1).
        lr: SGD learning rate (> 0).
        steps: training steps (>= 1).
        seed: seeds the weights and the batch order.
    """
    from . import data, models, train
    from .core import set_seed

    if not isinstance(residual, (bool, np.bool_)):
        raise TypeError(f"residual must be True or False, got {residual!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    lr = _real("lr", lr)
    set_seed(int(seed))
    model = models.mlp(int(depth), 64, activation=activation, init=init, norm=norm, residual=bool(residual))
    bounded = activation in ("sigmoid", "tanh")
    every = 2 if steps >= 50 else 1  # half the recording cost; 50 or more columns per image
    with Recorder(model, act_range=(0.0, 1.0) if bounded else (0.0, 4.0), every=every) as rec:
        history = train.fit(
            model,
            data.digits(device="cpu"),
            steps=int(steps),
            lr=lr,
            seed=int(seed),
            eval_every=int(steps),
            device="cpu",
            on_nonfinite="record",
            progress=False,
        )
    acc = "diverged" if history.diverged else f"test accuracy {history.test_acc[-1]:.3f}"
    extra = (f", {norm} norm" if norm else "") + (", residual" if residual else "")
    return show(rec, title=f"{depth} x {activation}, {init} init{extra}, lr {lr:g}: {acc}")


def dashboard_explorer(
    activation: str = "sigmoid",
    init: str = "default",
    norm: str = "none",
    residual: bool = False,
    depth: int = 10,
    lr: float = 0.1,
) -> None:
    """Drop-downs for activation, init and norm, a residual switch and sliders for depth and
    learning rate over ``draw_dashboard`` (100 training steps per redraw, about a second of CPU).

    Args:
        activation: the activation shown first.
        init: the init scheme shown first.
        norm: "none", "batch", "layer" or "rms".
        residual: the residual switch's first state.
        depth: hidden layers shown first (2 to 30).
        lr: SGD learning rate shown first (1e-3 to 1).
    """
    import ipywidgets as widgets

    from .init import SCHEMES
    from .widgets import explore

    def draw(norm: str, **kwargs: object) -> plt.Figure:
        return draw_dashboard(norm=None if norm == "none" else norm, **kwargs)

    return explore(
        draw,
        activation=widgets.Dropdown(
            options=[n for n in activations.NAMES if n != "linear"],
            value=activation,
            description="activation",
        ),
        init=widgets.Dropdown(
            options=[s for s in SCHEMES if s not in ("zeros", "constant")], value=init, description="init"
        ),
        norm=widgets.Dropdown(options=["none", "batch", "layer", "rms"], value=norm, description="norm"),
        residual=widgets.Checkbox(value=residual, description="residual"),
        depth=widgets.IntSlider(value=depth, min=2, max=30, description="depth"),
        lr=widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.1, description="lr"),
        steps=widgets.fixed(100),
        seed=widgets.fixed(0),
    )
