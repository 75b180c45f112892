"""gradflow.propagation: quadrature against Monte Carlo and closed forms, critical scales, measured ratios."""

import math

import numpy as np
import pytest
import torch

from gradflow import models, propagation


def test_gaussian_expectation_closed_forms():
    assert propagation.gaussian_expectation(lambda h: h**2, 2.5) == pytest.approx(2.5, rel=1e-10)
    assert propagation.gaussian_expectation(lambda h: h**4, 2.0) == pytest.approx(3 * 2.0**2, rel=1e-10)
    # ReLU keeps half the second moment, and its slope is 1 half the time: exact (no node at 0)
    assert propagation.gaussian_expectation(lambda h: np.maximum(h, 0) ** 2, 3.0) == pytest.approx(
        1.5, abs=1e-12
    )
    assert propagation.gaussian_expectation(lambda h: (h > 0) * 1.0, 0.7) == pytest.approx(0.5, abs=1e-12)
    assert propagation.gaussian_expectation(np.cos, 0.0) == pytest.approx(1.0)


def test_gaussian_expectation_rejects_negative_variance():
    with pytest.raises(ValueError, match="variance"):
        propagation.gaussian_expectation(np.cos, -1.0)


@pytest.mark.parametrize("q", [0.1, 1.0, 4.0])
def test_tanh_derivative_moment_matches_monte_carlo(q):
    g = torch.Generator().manual_seed(0)
    h = math.sqrt(q) * torch.randn(400_000, generator=g, dtype=torch.float64)
    mc = ((1 - torch.tanh(h) ** 2) ** 2).mean().item()
    assert propagation.chi("tanh", 1.0, q) == pytest.approx(mc, abs=3e-3)
    mc_fwd = (torch.tanh(h) ** 2).mean().item()
    assert propagation.next_q("tanh", 1.0, q) == pytest.approx(mc_fwd, abs=3e-3)


def test_relu_chi_is_half_sigma_squared_for_any_q():
    for q in (0.01, 1.0, 50.0):
        assert propagation.chi("relu", 1.7, q) == pytest.approx(1.7**2 / 2, rel=1e-12)


def test_critical_scales():
    assert propagation.critical_sigma_w("relu") == pytest.approx(math.sqrt(2), abs=1e-3)
    a = 0.25  # PReLU's initial slope: chi = sigma^2 (1 + a^2) / 2
    assert propagation.critical_sigma_w("prelu") == pytest.approx(math.sqrt(2 / (1 + a**2)), abs=1e-3)
    assert propagation.critical_sigma_w("tanh") == pytest.approx(1.0, abs=0.01)
    assert propagation.critical_sigma_w("tanh", sigma_b=0.3) > 1.2  # a bias moves the edge up


def test_critical_sigma_w_needs_a_bracket():
    with pytest.raises(ValueError, match="change sign"):
        propagation.critical_sigma_w("relu", low=2.0, high=3.0)


def test_fixed_point_q_tanh_phases():
    assert propagation.fixed_point_q("tanh", 0.8) < 1e-12  # ordered: q* = 0
    q = propagation.fixed_point_q("tanh", 1.5)
    assert q > 0.5 and propagation.next_q("tanh", 1.5, q) == pytest.approx(q, rel=1e-6)
    assert propagation.fixed_point_q("relu", 2.0) == math.inf  # sigma_w^2 / 2 = 2 > 1 per layer


def test_forward_rms_matches_manual_forward():
    torch.manual_seed(0)
    net = models.mlp(3, 16, in_features=8, activation="relu", init="kaiming_normal")
    x = torch.randn(32, 8)
    rms = propagation.forward_rms(net, x)
    h = x
    for layer, value in zip(net.hidden, rms):
        h = torch.relu(layer.linear(h))
        assert value == pytest.approx(h.pow(2).mean().sqrt().item(), rel=1e-6)
    with pytest.raises(TypeError, match="hidden"):
        propagation.forward_rms(torch.nn.Linear(3, 3), x)


def test_gradient_ratio_follows_mean_field_for_relu():
    measured = propagation.gradient_ratio(30, "relu", 1.0, width=64, batch=64, seed=0)
    predicted = propagation.predicted_log10_ratio("relu", 1.0, [30])[0]
    assert predicted == pytest.approx(29 * 0.5 * math.log10(0.5))
    assert measured == pytest.approx(predicted, abs=1.0)
    with pytest.raises(ValueError, match="depth"):
        propagation.gradient_ratio(1, "relu", 1.0)


def test_gradient_ratio_grid_shape_and_sign():
    grid = propagation.gradient_ratio_grid("relu", [5, 20], [1.0, 2.0], width=16, batch=16)
    assert grid.shape == (2, 2)
    assert grid[1, 0] < 0 < grid[1, 1]
    with pytest.raises(ValueError):
        propagation.gradient_ratio_grid("relu", [], [1.0])
