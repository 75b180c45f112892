"""Chapter 03 helpers: the per-batch dead count, the activation/derivative figure, the unit-slope
explorer's figure."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from gradflow import plots, probes, widgets


def _one_relu_layer():
    """Linear(1 -> 3) + ReLU with hand-set weights: unit 0 fires for x > 0, unit 1 for x > 2,
    unit 2 never (z = -1 for every x)."""
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [1.0], [0.0]]))
        model[0].bias.copy_(torch.tensor([0.0, -2.0, -1.0]))
    return model


def test_per_batch_count_equals_hand_count():
    model = _one_relu_layer()
    x = torch.tensor([[-1.0], [1.0], [3.0]])
    # whole set: only unit 2 is dead
    assert probes.dead_fraction(model, x) == pytest.approx([1 / 3])
    # one example at a time: x=-1 kills all 3, x=1 kills units 1 and 2, x=3 kills unit 2 only;
    # with enough random single-example batches the average tends to (3 + 2 + 1) / 9 = 2/3
    single = probes.dead_fraction_per_batch(model, x, 1, n_batches=3000, seed=0)
    assert single[0] == pytest.approx(2 / 3, abs=0.02)
    # a batch of the whole set is the whole-set count, whatever the order
    assert probes.dead_fraction_per_batch(model, x, 3, n_batches=5) == pytest.approx([1 / 3])


def test_per_batch_count_never_below_whole_set_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    x = torch.randn(200, 8)
    whole = probes.dead_fraction(model, x)
    for b in (1, 7, 50):
        per_batch = probes.dead_fraction_per_batch(model, x, b, n_batches=10, seed=1)
        assert len(per_batch) == 2
        assert all(p >= w - 1e-12 for p, w in zip(per_batch, whole))
    # seeded: the same batches give the same answer
    assert probes.dead_fraction_per_batch(model, x, 7, seed=3) == probes.dead_fraction_per_batch(
        model, x, 7, seed=3
    )


def test_per_batch_count_validates():
    model = _one_relu_layer()
    x = torch.zeros(4, 1)
    with pytest.raises(ValueError, match="batch_size"):
        probes.dead_fraction_per_batch(model, x, 5)
    with pytest.raises(ValueError, match="batch_size"):
        probes.dead_fraction_per_batch(model, x, 0)
    with pytest.raises(ValueError, match="n_batches"):
        probes.dead_fraction_per_batch(model, x, 2, n_batches=0)


def test_leaky_and_elu_units_are_never_dead():
    torch.manual_seed(0)
    x = torch.randn(100, 4)
    for act in (nn.LeakyReLU(0.01), nn.ELU()):
        model = nn.Sequential(nn.Linear(4, 16), act)
        with torch.no_grad():
            model[0].bias.fill_(-5.0)  # every z negative
        assert probes.dead_fraction(model, x) == [0.0]
        assert probes.dead_fraction_per_batch(model, x, 1, n_batches=5) == [0.0]


def test_activation_curves_draws_functions_and_derivatives():
    axes = plots.activation_curves(["relu", "elu"], z_range=(-2.0, 2.0), points=5)
    assert len(axes) == 2
    relu_line, elu_line = axes[0].get_lines()
    np.testing.assert_allclose(relu_line.get_ydata(), [0, 0, 0, 1, 2])
    np.testing.assert_allclose(elu_line.get_ydata()[:2], np.exp([-2.0, -1.0]) - 1, rtol=1e-6)
    relu_slope, elu_slope = axes[1].get_lines()
    np.testing.assert_allclose(relu_slope.get_ydata(), [0, 0, 0, 1, 1])
    np.testing.assert_allclose(elu_slope.get_ydata()[:2], np.exp([-2.0, -1.0]), rtol=1e-6)
    plt.close("all")


def test_activation_curves_validates():
    with pytest.raises(ValueError, match="at least one"):
        plots.activation_curves([])
    with pytest.raises(ValueError, match="z_range"):
        plots.activation_curves(["relu"], z_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="unknown activation"):
        plots.activation_curves(["swish2"])
    plt.close("all")


def test_draw_unit_slopes_reports_the_zero_slope_chance():
    ax = widgets.draw_unit_slopes("relu", mean=0.0, std=1.0, batch_size=2)
    title = ax.get_title()
    # z ~ N(0, 1): half the slopes are 0, E[relu'^2] = 1/2, P(zero on a batch of 2) = 1/4
    gain, p_zero, p_batch = (float(v) for v in re.findall(r"= ([0-9.e+-]+)", title))
    assert gain == pytest.approx(0.5, abs=0.005) and p_zero == pytest.approx(0.5, abs=0.005)
    assert p_batch == pytest.approx(0.25, abs=0.005)
    ax = widgets.draw_unit_slopes("elu", mean=-3.0, std=0.5)
    assert "P(slope 0) = 0.00" in ax.get_title()
    with pytest.raises(ValueError, match="std"):
        widgets.draw_unit_slopes("relu", std=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        widgets.draw_unit_slopes("relu", batch_size=0)
    plt.close("all")
