"""What a Probe reports stays what the Probe it replaced reported (tests/probe_reference.py) in the
less common states of a training loop: a forward pass with no backward, a gradient changed in
place during the backward pass, a layer a pass does not use, an empty batch. Layers are 256 wide
so that their outputs take the path for large tensors as well as the one for small ones."""

import math
import warnings

import probe_reference
import torch
from test_probes_equal import _bits, _wide
from torch import nn

from gradflow import probes


def _batch(n=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g), torch.randint(0, 5, (n,), generator=g)


def _rows(probe):
    return _bits([[tuple(s.__dict__.values())[:8] for s in probe.stats()]])


def test_a_forward_pass_without_backward_keeps_the_last_gradients():
    """(a validation loss computed without no_grad, inside the with block)"""

    def run(make):
        model, (x, y) = _wide(), _batch()
        with make(model) as probe:
            for _ in range(2):
                model.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x), y).backward()
            after_backward = _rows(probe)
            model(0.5 * x)
            return after_backward, _rows(probe)

    assert run(probes.Probe) == run(probe_reference.Probe)


def test_a_gradient_changed_in_place_during_the_backward_pass_is_not_taken_for_the_raw_one():
    """(what DDP does at the end of a backward pass: it writes the averaged gradients in place)"""
    engine = torch.autograd.Variable._execution_engine

    def run(make):
        model, (x, y) = _wide(), _batch()

        def average():
            with torch.no_grad():
                for p in model.parameters():
                    p.grad.mul_(0.5)

        rows = []
        with make(model) as probe:
            for _ in range(3):
                model.zero_grad(set_to_none=True)
                out = model(x)
                out.register_hook(lambda grad: engine.queue_callback(average))
                nn.functional.cross_entropy(out, y).backward()
                rows.append(_rows(probe))
        return rows

    assert run(probes.Probe) == run(probe_reference.Probe)
    assert run(lambda m: probes.Probe(m, every=2))[2] == run(probe_reference.Probe)[2]


class _Branches(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.b, self.c, self.out = (
            nn.Linear(12, 256),
            nn.Linear(256, 256),
            nn.Linear(256, 256),
            nn.Linear(256, 5),
        )

    def forward(self, x, branch):
        h = torch.relu(self.inp(x))
        return self.out(torch.relu((self.b if branch == "b" else self.c)(h)))


def test_a_layer_a_pass_does_not_use_keeps_its_own_last_statistics():
    """b runs, its gradient is clipped in place, then a pass through c accumulates (no zero_grad):
    b's row stays that of its own pass, raw."""

    def run(make):
        model, (x, y) = _Branches(), _batch()
        with make(model) as probe:
            nn.functional.cross_entropy(model(x, "b"), y).backward()
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x, "b"), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            first = _rows(probe)
            nn.functional.cross_entropy(model(2 * x, "c"), y).backward()
            rows = first, _rows(probe)
            for branch in "bcbc":
                model.zero_grad(set_to_none=False)
                nn.functional.cross_entropy(model(x, branch), y).backward()
                rows += (_rows(probe),)
            return rows

    for new, ref in zip(run(probes.Probe), run(probe_reference.Probe)):
        # (by name: the old probe drops the row of a layer the first pass did not run, c, once
        # a later pass has run it)
        new = {r[0]: r for r in new[0]}
        assert all(new[r[0]] == r for r in ref[0])


def test_an_empty_batch_gives_nan_where_torch_does():
    def run(make):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5))
        with make(model) as probe:
            model(torch.randn(8, 12)).sum().backward()
            model.zero_grad(set_to_none=True)
            model(torch.randn(0, 12)).sum().backward()
            return probe.stats()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's std of nothing warns
        new, ref = run(probes.Probe), run(probe_reference.Probe)
    assert _bits([[tuple(s.__dict__.values())[:8] for s in new]]) == _bits(
        [[tuple(s.__dict__.values())[:8] for s in ref]]
    )
    assert math.isnan(new[0].preact_grad_rms) and new[0].weight_grad_norm == 0.0
