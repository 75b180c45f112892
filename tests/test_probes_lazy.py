"""gradflow.probes.Probe computes its statistics when they are read, from copies taken during the
pass: what it reports must not depend on what happens between the pass and the read."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from gradflow import models, probes


def _step(model, x, y):
    nn.functional.cross_entropy(model(x), y).backward()


def _same(a, b):
    return all(
        u == v or (isinstance(u, float) and math.isnan(u) and math.isnan(v))
        for u, v in zip(dataclasses.astuple(a), dataclasses.astuple(b))
    )


def test_weight_gradient_is_the_raw_one_even_if_changed_in_place_before_the_read():
    torch.manual_seed(0)
    model = models.mlp(3, 16, in_features=8, out_features=3, activation="tanh")
    x, y = torch.randn(20, 8), torch.randint(0, 3, (20,))
    with probes.Probe(model) as probe:
        _step(model, x, y)
        raw = [m.weight.grad.norm().item() for _, m in probes.layers_of(model)]
        nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # scales .grad in place
        model.zero_grad(set_to_none=False)  # zeroes it in place
    assert probe.column("weight_grad_norm") == pytest.approx(raw, rel=1e-6)


def test_statistics_are_those_of_the_latest_pass_and_stable_across_reads():
    torch.manual_seed(0)
    model = models.mlp(2, 16, in_features=8, out_features=3, activation="sigmoid")
    with probes.Probe(model) as probe:
        for scale in (1.0, 3.0):
            x = scale * torch.randn(32, 8)
            _step(model, x, torch.randint(0, 3, (32,)))
    first = probe.stats()
    assert all(_same(a, b) for a, b in zip(probe.stats(), first))
    h = torch.sigmoid(model.hidden[0].linear(x)).detach()
    assert first[0].act_mean == pytest.approx(h.mean().item(), rel=1e-6)
    assert first[0].act_std == pytest.approx(h.std(correction=0).item(), rel=1e-6)
