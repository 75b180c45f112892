"""The fast Probe (issue 11) reports bit for bit what the Probe it replaced reported
(tests/probe_reference.py, kept verbatim), in a training loop with gradient clipping."""

import copy
import dataclasses
import math

import probe_reference
import torch
from torch import nn

from gradflow import probes


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(12, 16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.Sigmoid(),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 16),
        nn.ELU(),
        nn.Linear(16, 5),
    )


def _conv():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
    )


def _run(model, make_probe, x, y, steps=6, read_every=1):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rows = []
    with make_probe(model) as probe:
        for t in range(steps):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[t]), y[t]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.05)  # changes .grad in place
            opt.step()
            if (t + 1) % read_every == 0:
                rows.append([dataclasses.astuple(s)[:8] for s in probe.stats()])
    return rows


def _bits(rows):
    return [
        [
            tuple(
                ("nan" if isinstance(v, float) and math.isnan(v) else v.hex() if isinstance(v, float) else v)
                for v in r
            )
            for r in step
        ]
        for step in rows
    ]


def _data(shape, batches=(64, 64, 33, 64, 7, 64)):
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(b, *shape, generator=g) for b in batches]
    y = [torch.randint(0, 5, (b,), generator=g) for b in batches]
    return x, y


def test_same_bits_as_the_reference_probe_on_an_mlp_with_clipping():
    x, y = _data((12,))
    for read_every in (1, 3):
        ref = _run(_model(), probe_reference.Probe, x, y, read_every=read_every)
        new = _run(_model(), probes.Probe, x, y, read_every=read_every)
        assert _bits(new) == _bits(ref)
        assert all(math.isfinite(v) for v in ref[-1][0][1:])


def test_same_bits_as_the_reference_probe_on_a_cnn():
    x, y = _data((1, 8, 8))
    ref = _run(_conv(), probe_reference.Probe, x, y)
    new = _run(_conv(), probes.Probe, x, y)
    assert _bits(new) == _bits(ref)


def test_same_bits_with_gradients_only():
    x, y = _data((12,))
    ref = _run(_model(), lambda m: probe_reference.Probe(m, activations=False), x, y)
    new = _run(_model(), lambda m: probes.Probe(m, activations=False), x, y)
    assert _bits(new) == _bits(ref)


def test_every_k_records_the_passes_it_samples():
    x, y = _data((12,))
    model = _model()
    ref = _run(copy.deepcopy(model), probe_reference.Probe, x, y)  # every pass
    new = _run(model, lambda m: probes.Probe(m, every=2), x, y, read_every=1)
    # passes 0, 2, 4 are recorded; after pass 1, 3, 5 the probe still shows 0, 2, 4
    for t in range(6):
        assert _bits([new[t]]) == _bits([ref[t - t % 2]])


def _wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 256), nn.Tanh(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 5))


def test_same_bits_on_wide_layers_with_and_without_clipping():
    """Layers too large to rebuild dL/dW at each read take .grad itself when nothing changed it
    since the backward pass, and rebuild it when clipping did."""
    x, y = _data((12,), batches=(96, 96, 40, 96, 96, 96))
    ref = _run(_wide(), probe_reference.Probe, x, y)
    new = _run(_wide(), probes.Probe, x, y)
    assert _bits(new) == _bits(ref)

    def run_unclipped(model, make_probe):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        rows = []
        with make_probe(model) as probe:
            for t in range(4):
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x[t]), y[t]).backward()
                opt.step()
                rows.append([dataclasses.astuple(s)[:8] for s in probe.stats()])
        return rows

    assert _bits(run_unclipped(_wide(), probes.Probe)) == _bits(run_unclipped(_wide(), probe_reference.Probe))


def test_the_model_is_left_as_it_was():
    model = _model()
    with probes.Probe(model):
        model(torch.randn(3, 12)).sum().backward()
    with probes.Probe(model, every=3):
        for _ in range(5):  # the wrappers come and go between recorded passes
            model(torch.randn(3, 12)).sum().backward()
    assert all("forward" not in m.__dict__ and "_gradflow_forward" not in m.__dict__ for m in model.modules())


def test_every_k_without_clipping_reads_grad_itself_with_the_same_bits():
    x, y = _data((12,))

    def run(make_probe):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        rows = []
        with make_probe(model) as probe:
            for t in range(6):
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x[t]), y[t]).backward()
                opt.step()
                rows.append([dataclasses.astuple(s)[:8] for s in probe.stats()])
        return rows

    ref = run(probe_reference.Probe)
    new = run(lambda m: probes.Probe(m, every=2))
    for t in range(6):
        assert _bits([new[t]]) == _bits([ref[t - t % 2]])
