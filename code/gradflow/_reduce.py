"""The statistics a ``Probe`` reports, for every layer at once, bit for bit what torch's own
reductions of each tensor give (``tests/test_probes_equal.py`` holds it to the Probe they
replaced, ``tests/test_reduce.py`` each shortcut below to the operation it stands for).

A read costs the fixed price of each tensor operation (a few microseconds, ten times that when
the training steps since the pass have pushed code and data out of the CPU's caches), not the
arithmetic. So, on the CPU:

- tensors of one size and dtype are stacked and reduced row by row (a row-wise reduction of a
  contiguous row of fewer than 32768 elements gives the bits of the full reduction of that
  tensor alone), into buffers kept from one read to the next;
- a mean is torch's sum, divided here on the number (torch's CPU mean is that sum divided in
  the dtype; a division in double rounded once to float32 is correctly rounded);
- the std of float32 activations comes from sum x^2 and sum x in double, checked to round to
  the float32 torch's own std gives, or asked of torch where that check fails (``_std_from_sums``);
- a saturation count is one comparison (tanh: |y| >= ``tanh_edge``), summed as floats.

On a GPU each tensor is reduced alone, by the very operations the statistics are defined by (a
GPU's reduction tree depends on the tensor's shape, its mean is a sum times 1/n), with every
number still brought back in one transfer. A ``Reducer`` is built once for the sizes, dtypes and
activations it sees; the Probe builds a new one when they change (``signature``).
"""

from __future__ import annotations

import array
import functools
import math

import torch

from . import activations

_GRAIN = 32768  # at::internal::GRAIN_SIZE: smaller reductions never split across threads
_FLOATS = (torch.float32, torch.float64)
NAN = math.nan

# column of each statistic in a row of ``Reducer.run`` (the order of probes.STAT_NAMES)
W_NORM, W_MEAN_ABS, G_RMS, G_NORM, A_MEAN, A_STD, SATURATION = range(7)

# Local slopes computed from an activation's output y (bit for bit what activations.derivative
# gives from its input, without evaluating the activation again): the probe's per-step saturation.
SLOPE_FROM_OUTPUT = {
    "sigmoid": lambda y: y * (1.0 - y),
    "tanh": lambda y: 1.0 - y**2,
    "relu": lambda y: (y > 0).to(y.dtype),
}
# activations whose slope can be negative (GELU, SiLU dip below 0): saturation compares |slope|
SIGNED_SLOPE = {"gelu", "silu"}


def saturation(name: str, y: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
    """Fraction of units whose |local slope| is < 5% of the activation's maximum (from y if z is None)."""
    slope = SLOPE_FROM_OUTPUT[name](y) if z is None else activations.derivative(name, z)
    if name in SIGNED_SLOPE:
        slope = slope.abs()
    return torch.mean(slope < 0.05 * activations.MAX_DERIVATIVE[name], dtype=torch.float32)


@functools.cache
def tanh_edge(dtype: torch.dtype) -> float:
    """The smallest |y| (a number of ``dtype``) for which tanh's slope from its output,
    1 - y**2 computed in ``dtype``, is below 5% of its maximum. That slope only falls as |y|
    grows (every rounding on the way is monotone), so |y| >= edge is the same test, in one
    operation instead of three: found by bisection over the bit patterns in [0, 1]."""
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]

    def slow(bits: int) -> bool:
        y = torch.tensor(bits, dtype=ints).view(dtype)
        return bool(SLOPE_FROM_OUTPUT["tanh"](y) < 0.05 * activations.MAX_DERIVATIVE["tanh"])

    lo, hi = 0, int(torch.tensor(1.0, dtype=dtype).view(ints))  # slow(lo) is False, slow(hi) True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if slow(mid) else (mid, hi)
    return torch.tensor(hi, dtype=ints).view(dtype).item()


def _shared(t: torch.Tensor) -> bool:
    """Whether ``t`` can be a row of a stack: a float32/64 contiguous CPU tensor of 1 to
    _GRAIN - 1 elements (a larger reduction may be split across threads, a row of a stack never
    is). On a GPU a reduction's tree depends on the tensor's shape, and a mean is a sum times
    1/n: there every tensor is reduced alone, by torch's own operations."""
    return t.dtype in _FLOATS and 0 < t.numel() < _GRAIN and t.is_contiguous() and t.device.type == "cpu"


def signature(wg: list, g: list, y: list, sat: list) -> tuple:
    """What a ``Reducer`` depends on: shape, dtype, device and layout of every tensor, and how
    each layer's saturation is measured."""
    # (t.is_cpu stands for the device where it is the CPU: t.device builds an object each time)
    key = tuple(
        None if t is None else (t.shape, t.dtype, t.is_cpu or t.device, t.is_contiguous())
        for ts in (wg, g, y)
        for t in ts
    )
    return key, tuple(s if s is None else s[:2] for s in sat)


# post-processing of one number: its kind
_COPY, _DIV, _STD, _STD_SUMS, _FRACTION, _RELU = range(6)


class Reducer:
    """Reduces lists of tensors (one entry per layer, None where nothing was recorded) to the
    seven statistics of each layer. Built for one ``signature``; ``run`` may be called many times.

    Tensors of one size, dtype and device share one stack, whatever they hold, in the order
    dL/dz rows, dL/dW rows, activation rows: one norm covers the first two kinds (dL/dW's rows are
    made absolute in place first: |w| has the norm of w) and one sum the last two (a mean on the
    CPU is that sum divided by n, a division done here on the numbers). Every result lands in
    one buffer per dtype, read with one ``tolist``.

    Args:
        wg, g, y: per layer, dL/dW, dL/dz and the activation (or None).
        sat: per layer, None (no known activation), ("out", name, None) (slope from y, for the
            activations of ``SLOPE_FROM_OUTPUT``) or ("z", name, z) (slope from the input z).
    """

    def __init__(self, wg: list, g: list, y: list, sat: list):
        self.layers = len(wg)
        self.steps: list = []  # each step(wg, g, y, sat, scalars) fills its slices of the results
        self._notes: list[tuple] = []  # (layer, column, request or None, index, kind, constant, f32)
        self._requests: dict[tuple, list[list]] = {}  # (dtype, device) -> [[view, start, length]]
        self.n_scalars = 0
        self._buffers: dict[tuple, torch.Tensor] = {}
        groups: dict[tuple, list[tuple[int, int]]] = {}  # key -> [(column, layer)]
        for column, ts in ((G_NORM, g), (W_NORM, wg), (A_MEAN, y)):
            for p, t in enumerate(ts):
                if t is not None:
                    # (tensors of one size share a stack whatever their shapes: a row is the
                    # flat tensor, in its memory order, the order a full reduction takes)
                    key = (t.numel(), t.dtype, t.device) if _shared(t) else (column, p)
                    groups.setdefault(key, []).append((column, p))
        for key, members in groups.items():
            if len(key) == 3:
                self._batch(members, wg, g, y, sat)
            else:
                self._alone(*members[0], (g, wg, y), sat)
        # one result buffer per (dtype, device); every request a slice of it
        self.results: list[torch.Tensor] = []
        offset = 0
        for (dtype, device), requests in self._requests.items():
            total = sum(r[2] for r in requests)
            buffer = torch.empty(total, dtype=dtype, device=device)
            start = 0
            for r in requests:
                r[0], r[1] = buffer[start : start + r[2]], offset + start
                start += r[2]
            self.results.append(buffer)
            offset += total

        def where(req, j):
            return (req[1] + j) if req is not None else offset + j

        # the post-processing, by kind: into a flat list of 7 numbers per layer (dest = 7 p + k)
        self._plain: list[tuple[int, int]] = []  # (dest, src): as read
        self._divided: list[tuple[int, int, float]] = []  # (dest, src, c): v / c
        self._rounded: list[tuple[int, int, float, bool]] = []  # (dest, src, c, relu): to float32
        self._rooted: list[tuple[int, int, float]] = []  # (dest, src, n): sqrt(v / n)
        self._sums: list[tuple[int, int, int, int, float]] = []  # (layer, src q, src total, n)
        for p, k, req, j, kind, const, f32 in self._notes:
            dest, src = 7 * p + k, where(req, j)
            if kind == _STD_SUMS:
                self._sums.append((p, src, where(*const[1:]), const[0]))
            elif kind == _STD:
                self._rooted.append((dest, src, const))
            elif kind == _COPY:
                self._plain.append((dest, src))  # (a float32 value is its own rounding)
            elif f32:
                self._rounded.append((dest, src, const, kind == _RELU))
            else:
                self._divided.append((dest, src, const))
        self._rounded_at = [dest for dest, *_ in self._rounded]

    # -- building -------------------------------------------------------------------------
    def _request(self, dtype: torch.dtype, device: torch.device, length: int) -> list:
        """A slice of the results (filled in once every request is known): [view, start, length]."""
        req = [None, 0, length]
        self._requests.setdefault((dtype, device), []).append(req)
        return req

    def _scalar(self) -> int:
        self.n_scalars += 1
        return self.n_scalars - 1

    def _note(self, p, k, req, j, kind=_COPY, const=1.0, f32=False) -> None:
        self._notes.append((p, k, req, j, kind, const, f32))

    def _batch(self, members: list[tuple[int, int]], wg: list, g: list, y: list, sat: list) -> None:
        """Tensors of one size and dtype (float32/64), stacked into a buffer kept between reads."""
        gs = [p for c, p in members if c == G_NORM]
        ws = [p for c, p in members if c == W_NORM]
        ys = [p for c, p in members if c == A_MEAN]
        G, W, Y = len(gs), len(ws), len(ys)
        t = g[gs[0]] if gs else wg[ws[0]] if ws else y[ys[0]]
        R, n, f32, dtype, device = G + W + Y, t.numel(), t.dtype == torch.float32, t.dtype, t.device
        shapes = {u.shape for u in [g[p] for p in gs] + [wg[p] for p in ws] + [y[p] for p in ys]}
        one_shape = len(shapes) == 1  # else each tensor is stacked as a flat view
        buf = torch.empty((R, *t.shape) if one_shape else (R, n), dtype=dtype, device=device)
        flat = buf.view(R, n)
        grads, absolute, acts, summed = flat[: G + W], flat[G : G + W], flat[G + W :], flat[G:]
        root = _float32(math.sqrt(n)) if f32 else math.sqrt(n)  # torch.div's scalar, in dtype
        norms = self._request(dtype, device, G + W) if G + W else None
        sums = self._request(dtype, device, W + Y) if W + Y else None
        for j, p in enumerate(gs):
            self._note(p, G_NORM, norms, j)
            self._note(p, G_RMS, norms, j, _DIV, root, f32)
        for j, p in enumerate(ws):
            self._note(p, W_NORM, norms, G + j)
            self._note(p, W_MEAN_ABS, sums, j, _DIV, float(n), f32)
        for j, p in enumerate(ys):
            self._note(p, A_MEAN, sums, W + j, _DIV, float(n), f32)
        # the std: on the CPU, torch's std of one tensor takes its mean m in the dtype, then adds
        # up (x - m)^2 one element after the other in double precision. For float32, sum x^2 and
        # sum x in double give it (see _std_from_sums), checked to round to torch's float32; for
        # float64, a cumulative sum of (x - m)^2 adds in torch's very order. (Stacks are built on
        # the CPU only, see _shared.)
        mean = centred = squares = totals = stds = None
        if not f32:
            mean = torch.empty(Y, dtype=dtype, device=device)
            centred = torch.empty((Y, n), dtype=dtype, device=device)
        if f32 and Y:
            # the rows in double, in a buffer of our own: a norm or sum told to work in double
            # makes that copy itself, in fresh memory, at every read
            centred = torch.empty((Y, n), dtype=torch.float64, device=device)
            squares = self._request(torch.float64, device, Y)  # sqrt(sum x^2), in double
            totals = self._request(torch.float64, device, Y)  # sum x, in double
        elif Y:
            stds = self._request(dtype, device, Y)
        for j, p in enumerate(ys):
            if f32:
                self._note(p, A_STD, squares, j, _STD_SUMS, (float(n), totals, j), True)
            else:
                self._note(p, A_STD, stds, j, _STD, float(n), False)
        # saturation: the rows whose slope comes from y, counted by activation; the rest alone
        by_act: dict[str, list[int]] = {}
        others: list[tuple[int, int]] = []  # (layer, scalar index)
        for j, p in enumerate(ys):
            if sat[p] is not None and sat[p][0] == "out":
                by_act.setdefault(sat[p][1], []).append(j)
            elif sat[p] is not None:
                others.append((p, self._scalar()))
                self._note(p, SATURATION, None, others[-1][1])
        counts = []
        for name, js in by_act.items():
            pick = None if len(js) == Y else torch.tensor(js, device=device)
            req = self._request(dtype, device, len(js))
            counts.append((name, pick, req))
            for i, j in enumerate(js):
                self._note(ys[j], SATURATION, req, i, _RELU if name == "relu" else _FRACTION, float(n), True)
        edge = tanh_edge(dtype)
        limit = 0.05 * activations.MAX_DERIVATIVE["sigmoid"]
        rows = [(0, p) for p in gs] + [(1, p) for p in ws] + [(2, p) for p in ys]  # (list, layer)
        views: list = []  # the slices of the results, taken at the first run

        def step(wg, g, y, sat, scalars):
            if not views:
                views.extend(r[0] if r is not None else None for r in (norms, sums, stds, squares, totals))
                views.append(sums[0][W:] if Y else None)
                views.append([(name, pick, req[0]) for name, pick, req in counts])
            to_norms, to_sums, to_stds, to_squares, to_totals, act_sums, to_counts = views
            kinds = (g, wg, y)
            if one_shape:
                torch.stack([kinds[k][p] for k, p in rows], out=buf)
            else:
                torch.stack([kinds[k][p].view(-1) for k, p in rows], out=buf)
            if W:
                absolute.abs_()
            if G + W:
                torch.linalg.vector_norm(grads, dim=1, out=to_norms)
            if W + Y:
                torch.sum(summed, dim=1, out=to_sums)
            if not Y:
                return
            if f32:
                centred.copy_(acts)
                torch.linalg.vector_norm(centred, dim=1, out=to_squares)
                torch.sum(centred, dim=1, out=to_totals)
            else:  # float64: (x - m)^2, added up in order by a cumulative sum
                torch.div(act_sums, n, out=mean)  # the mean, as torch.mean gives it
                torch.sub(acts, mean[:, None], out=centred).mul_(centred)
                to_stds.copy_(centred.cumsum_(dim=1)[:, -1])
            for name, pick, into in to_counts:
                sub = acts if pick is None else acts.index_select(0, pick)  # (a copy)
                # the statistics above are taken: the rows may now be overwritten in place
                if name == "tanh":
                    mask = sub.abs_().ge_(edge)  # |y| >= edge  <=>  1 - y**2 < 0.05
                elif name == "relu":
                    mask = sub.gt_(0)  # slope 1 where y > 0: counts the units that are not slow
                else:  # sigmoid: y (1 - y) < 0.05 / 4
                    mask = torch.rsub(sub, 1.0).mul_(sub).lt_(limit)
                torch.sum(mask, dim=1, out=into)  # a float sum of 0s and 1s: an exact count
            for p, _ in others:
                scalars.append(saturation(sat[p][1], y[p], sat[p][2]))

        self.steps.append(step)

    def _scratch(self, t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A buffer of ``t``'s shape (and ``dtype``), kept between reads and shared by the tensors
        reduced alone (one at a time): a fresh temporary of this size costs page faults."""
        key = (t.shape, dtype or t.dtype, t.device)
        if key not in self._buffers:
            self._buffers[key] = torch.empty(t.shape, dtype=dtype or t.dtype, device=t.device)
        return self._buffers[key]

    def _alone(self, column: int, p: int, kinds: tuple, sat: list) -> None:
        """A tensor that shares no stack (too large to be a row of one, another dtype, not
        contiguous), reduced by the very operations its statistics are defined by; on the CPU,
        a contiguous float32/64 tensor uses buffers kept between reads for the temporaries, and
        the std of a float32 one comes from a norm in double, checked as in ``_batch``."""
        g, wg, y = kinds
        t = (g, wg, y)[(G_NORM, W_NORM, A_MEAN).index(column)][p]
        f32 = t.dtype == torch.float32
        n = t.numel()
        buffered = t.dtype in _FLOATS and t.is_contiguous() and t.device.type == "cpu" and 0 < n < 2**24
        if column == W_NORM:
            self._note(p, W_NORM, None, self._scalar())
            if buffered:  # mean |w| = sum |w| / n: torch.mean is that sum, divided in the dtype
                self._note(p, W_MEAN_ABS, None, self._scalar(), _DIV, float(n), f32)
                absolute = self._scratch(t)
            else:
                self._note(p, W_MEAN_ABS, None, self._scalar())

            def step(wg, g, y, sat, scalars):
                scalars.append(torch.linalg.vector_norm(wg[p]))
                if buffered:
                    scalars.append(torch.sum(torch.abs(wg[p], out=absolute)))
                else:
                    scalars.append(wg[p].abs().mean())

        elif column == G_NORM:
            # (on the CPU the division is one rounding in float32/64; on a GPU it is a * (1/b))
            plain = t.dtype in _FLOATS and n > 0 and t.device.type == "cpu"
            root = math.sqrt(n)
            norm = self._scalar()
            self._note(p, G_NORM, None, norm)
            if plain:
                self._note(p, G_RMS, None, norm, _DIV, _float32(root) if f32 else root, f32)
            else:
                self._note(p, G_RMS, None, self._scalar())

            def step(wg, g, y, sat, scalars):
                norm = torch.linalg.vector_norm(g[p])
                scalars.append(norm)
                if not plain:
                    scalars.append(torch.div(norm, root))

        else:
            measured = sat[p] is not None
            from_output = measured and sat[p][0] == "out" and buffered
            by_sums = buffered and f32
            self._note(p, A_MEAN, None, self._scalar())
            if by_sums:
                at = self._scalar()
                self._note(p, A_STD, None, at, _STD_SUMS, (float(n), None, self._scalar()), True)
            else:
                self._note(p, A_STD, None, self._scalar())
            if from_output:
                name = sat[p][1]
                kind = _RELU if name == "relu" else _FRACTION
                self._note(p, SATURATION, None, self._scalar(), kind, float(n), True)
                slow = self._scratch(t)
                edge = tanh_edge(t.dtype)
                limit = 0.05 * activations.MAX_DERIVATIVE["sigmoid"]
            elif measured:
                self._note(p, SATURATION, None, self._scalar())

            def step(wg, g, y, sat, scalars):
                a = y[p]
                mean = a.mean()
                scalars.append(mean)
                if by_sums:
                    scalars.append(torch.linalg.vector_norm(a, dtype=torch.float64))
                    scalars.append(torch.sum(a, dtype=torch.float64))
                else:
                    scalars.append(a.std(correction=0))
                if from_output:  # the count of slow units, as in _batch, in a buffer
                    if name == "tanh":
                        mask = torch.abs(a, out=slow).ge_(edge)
                    elif name == "relu":
                        mask = torch.gt(a, 0, out=slow)
                    else:
                        mask = torch.neg(a, out=slow).add_(1.0).mul_(a).lt_(limit)  # (1 - y) y
                    scalars.append(torch.sum(mask))
                elif measured:
                    scalars.append(saturation(sat[p][1], a, sat[p][2]))

        self.steps.append(step)

    # -- reading --------------------------------------------------------------------------
    def run(self, wg: list, g: list, y: list, sat: list) -> list[list[float]]:
        """Per layer, the seven statistics (NaN where not measured), as Python floats.

        ``sat[p]`` is None, ("out", name, None) or ("z", name, z): what ``signature`` saw,
        with the input z where the slope comes from it.
        """
        scalars: list[torch.Tensor] = []
        for step in self.steps:
            step(wg, g, y, sat, scalars)
        flat: list[float] = []
        for buffer in self.results:
            flat += buffer.tolist()
        if scalars:
            device = scalars[0].device
            if any(v.device != device for v in scalars):  # (a model spread over devices)
                scalars = [v.cpu() for v in scalars]
            flat += torch.stack(scalars).tolist()
        out = [NAN] * (7 * self.layers)
        for dest, src in self._plain:
            out[dest] = flat[src]
        for dest, src, c in self._divided:
            out[dest] = flat[src] / c
        for dest, src, n in self._rooted:
            out[dest] = math.sqrt(flat[src] / n)
        if self._rounded:
            # a division in double, rounded once to float32, is correctly rounded: the bits
            # torch's float32 division gives (the count of a ReLU's slow units is n - active)
            wide = [((c - flat[src]) if relu else flat[src]) / c for _, src, c, relu in self._rounded]
            for dest, v in zip(self._rounded_at, array.array("f", wide)):
                out[dest] = v
        for p, q, total, n in self._sums:  # (after the means: they take part)
            std = _std_from_sums(flat[q], flat[total], n, out[7 * p + A_MEAN])
            out[7 * p + A_STD] = std if std is not None else y[p].std(correction=0).item()
        return [out[i : i + 7] for i in range(0, len(out), 7)]


def _std_from_sums(root_q: float, total: float, n: float, mean: float) -> float | None:
    """torch's std (correction=0) of a float32 CPU tensor of n elements, from the square root of
    sum x^2 and from sum x, both added up in double, and from its float32 mean m; None where
    that cannot be sure to give torch's very float32.

    torch adds the n squares (x_i - m)^2 of the double-precision differences (one after the other
    below 32768 elements, in chunks split across threads above): in any order, a sum within
    (n + 3) u S* of the exact S* = sum (x_i - m)^2 (u = 2^-53). Here
    S = sum x^2 - 2 m sum x + n m^2, whose every term is known within (n + 8) u of
    (sqrt(sum x^2) + |m| sqrt(n))^2 =: B; the two square roots sqrt(S / n) differ by less than
    eps = (n + 8) u B / S + 8 u, relatively. Where the value widened by twice eps on both sides
    still rounds to one float32, that float32 is torch's (rounding is monotone); elsewhere (a
    std within about 10^-12 of half a float32 step, or tiny next to the mean) the caller asks
    torch.
    """
    q = root_q * root_q
    s = q - 2.0 * mean * total + n * mean * mean
    if not (s > 0.0 and math.isfinite(s)):  # (a zero std, a NaN, an inf: torch says)
        return None
    b = (root_q + abs(mean) * math.sqrt(n)) ** 2
    eps = 2.0 * ((n + 8.0) * 2.0**-53 * b / s + 8.0 * 2.0**-53)
    if eps > 1e-6:
        return None
    v = math.sqrt(s / n)
    lo, mid, hi = array.array("f", (v * (1.0 - eps), v, v * (1.0 + eps)))
    return mid if lo == hi else None


def _float32(x: float) -> float:
    return array.array("f", [x])[0]
