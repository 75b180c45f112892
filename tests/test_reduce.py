"""The Probe's read path (gradflow._reduce): the shortcuts it takes give torch's very bits.

test_probes_equal.py compares whole Probes with the one they replaced; here each shortcut is held
to the operation it stands for, including the cases a small model never reaches (tensors too
large to stack, float64, a std the shortcut cannot vouch for)."""

import copy
import math

import probe_reference
import pytest
import torch
from test_probes_equal import _bits, _data, _run
from torch import nn

from gradflow import _reduce, activations, probes


def _next(x: float, dtype: torch.dtype, step: int) -> float:
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    bits = torch.tensor(x, dtype=dtype).view(ints) + step
    return bits.view(dtype).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_edge_is_where_the_slope_from_the_output_falls_below_five_percent(dtype):
    edge = _reduce.tanh_edge(dtype)
    below = _next(edge, dtype, -1)
    slope = activations.MAX_DERIVATIVE["tanh"] * 0.05
    for y, slow in ((edge, True), (below, False), (-edge, True), (-below, False), (1.0, True), (0.0, False)):
        t = torch.tensor(y, dtype=dtype)
        assert bool(1.0 - t**2 < slope) is slow, (y, slow)


def test_std_from_sums_is_torch_std_wherever_it_answers():
    g = torch.Generator().manual_seed(0)
    answered: dict[tuple, int] = {}
    for n in (1, 2, 7, 640, 4096, 40000):
        for loc, scale in ((0.0, 1.0), (0.9, 0.05), (-3.0, 1e-3), (0.0, 1e-20), (1e4, 1.0)):
            for _ in range(20):
                x = loc + scale * torch.randn(n, generator=g)
                got = _reduce._std_from_sums(
                    torch.linalg.vector_norm(x, dtype=torch.float64).item(),
                    torch.sum(x, dtype=torch.float64).item(),
                    float(n),
                    x.mean().item(),
                )
                if got is not None:
                    answered[n, loc, scale] = answered.get((n, loc, scale), 0) + 1
                    assert got == x.std(correction=0).item(), (n, loc, scale)
    # it answers where the mean is within a few stds of 0 (activations), declines where the std
    # is tiny next to the mean (3000 or 10^4 stds away) or 0 (one element)
    big = (7, 640, 4096, 40000)
    assert all(answered.get((n, 0.0, s), 0) == 20 for n in big for s in (1.0, 1e-20))
    assert all(answered.get((n, 0.9, 0.05), 0) >= 10 for n in big)  # 18 stds away
    assert not any(answered.get((n, -3.0, 1e-3)) or answered.get((n, 1e4, 1.0)) for n in big)
    assert not any(k[0] == 1 for k in answered)


def _wide_model(dtype=torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(12, 512),
        nn.Tanh(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.Sigmoid(),
        nn.Linear(512, 5),
    )
    return model.to(dtype)


def test_tensors_too_large_to_stack_give_the_same_bits():
    """(batch 96 x 512 units: 49152 elements per activation, above the 32768 a row may hold)"""
    x, y = _data((12,), batches=(96, 96, 80, 96, 96, 96))
    for read_every in (1, 2):
        ref = _run(_wide_model(), probe_reference.Probe, x, y, read_every=read_every)
        new = _run(_wide_model(), probes.Probe, x, y, read_every=read_every)
        assert _bits(new) == _bits(ref)
    ref = _run(_wide_model(), probe_reference.Probe, x, y)
    new = _run(_wide_model(), lambda m: probes.Probe(m, every=2), x, y)
    assert all(_bits([new[t]]) == _bits([ref[t - t % 2]]) for t in range(6))


def test_float64_models_give_the_same_bits():
    x, y = _data((12,))
    x = [t.double() for t in x]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5)
    ).double()
    ref = _run(copy.deepcopy(model), probe_reference.Probe, x, y)
    new = _run(model, probes.Probe, x, y)
    assert _bits(new) == _bits(ref)
    x, y = _data((12,), batches=(96, 96, 80, 96, 96, 96))
    x = [t.double() for t in x]
    ref = _run(_wide_model(torch.float64), probe_reference.Probe, x, y)
    new = _run(_wide_model(torch.float64), probes.Probe, x, y)
    assert _bits(new) == _bits(ref)


def test_a_std_the_shortcut_declines_is_asked_of_torch(monkeypatch):
    monkeypatch.setattr(_reduce, "_std_from_sums", lambda *args: None)
    x, y = _data((12,))
    from test_probes_equal import _model

    ref = _run(_model(), probe_reference.Probe, x, y)
    new = _run(_model(), probes.Probe, x, y)
    assert _bits(new) == _bits(ref)
    assert all(math.isfinite(row[6]) for row in new[-1][:-1])  # act_std of every hidden layer


def test_tensors_of_one_size_and_different_shapes_share_a_stack_with_the_same_bits():
    """(the output layer's dL/dW is 10 x 64, its dL/dz and output 64 x 10: one stack of flat rows)"""
    from gradflow import models

    def model():
        torch.manual_seed(0)
        return models.mlp(3, 64, in_features=12, out_features=10, activation="tanh")

    g = torch.Generator().manual_seed(2)
    x = [torch.randn(64, 12, generator=g) for _ in range(6)]
    y = [torch.randint(0, 10, (64,), generator=g) for _ in range(6)]
    made = []
    ref = _run(model(), probe_reference.Probe, x, y)
    new = _run(model(), lambda m: made.append(probes.Probe(m)) or made[0], x, y)
    assert _bits(new) == _bits(ref)
    assert any(b.shape == (3, 640) for b in _stacks(made[0]))


def _stacks(probe):
    """The stack buffers a probe's reducer holds (found in its steps' closures)."""
    found = []
    for step in probe._reducer[1].steps:
        for cell in step.__closure__ or ():
            v = cell.cell_contents
            if isinstance(v, torch.Tensor) and v.dim() >= 2:
                found.append(v)
    return found
