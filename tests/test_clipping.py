"""gradflow.clipping against known answers: torch autograd, torch's own clipping, the bound."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradflow import clipping, data, models


def _autograd_pascanu(w, b, steps=50, x0=0.5, target=0.7):
    w = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    x = torch.tensor(x0, dtype=torch.float64)
    for _ in range(steps):
        x = w * torch.sigmoid(x) + b
    loss = (torch.sigmoid(x) - target) ** 2
    loss.backward()
    return loss.item(), w.grad.item(), b.grad.item()


@pytest.mark.parametrize("w,b", [(5.5, -3.0), (5.62, -3.0), (3.0, -1.5), (-2.0, 1.0), (8.0, -5.0)])
def test_pascanu_gradient_matches_autograd(w, b):
    loss, g_w, g_b = clipping.pascanu_loss_and_grad(w, b)
    ref = _autograd_pascanu(w, b)
    np.testing.assert_allclose([float(loss), float(g_w), float(g_b)], ref, rtol=1e-9, atol=1e-15)


def test_pascanu_grid_is_vectorised_and_float64():
    W, B = np.meshgrid(np.linspace(4, 7, 5), np.linspace(-4, -2, 3))
    loss, g_w, g_b = clipping.pascanu_loss_and_grad(W, B, steps=20)
    assert loss.shape == g_w.shape == g_b.shape == (3, 5) and loss.dtype == np.float64
    for i in range(3):
        for j in range(5):
            ref = _autograd_pascanu(W[i, j], B[i, j], steps=20)
            np.testing.assert_allclose([loss[i, j], g_w[i, j], g_b[i, j]], ref, rtol=1e-9, atol=1e-15)


def test_pascanu_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        clipping.pascanu_loss_and_grad(1.0, 0.0, target=1.5)
    with pytest.raises(ValueError, match="steps"):
        clipping.pascanu_loss_and_grad(1.0, 0.0, steps=0)
    with pytest.raises(ValueError, match="finite"):
        clipping.pascanu_loss_and_grad(np.nan, 0.0)
    with pytest.raises(TypeError, match="x0"):
        clipping.pascanu_loss_and_grad(1.0, 0.0, x0="a")


def test_descent_clipping_bounds_every_step_and_matches_a_manual_step():
    d = clipping.pascanu_descent(5.5, -3.0, lr=0.5, steps=50, clip_norm=1.0)
    assert d.path.shape == (51, 2) and d.loss.shape == (51,) and d.grad_norm.shape == (50,)
    assert d.step_length.max() <= 0.5 + 1e-12
    _, g_w, g_b = clipping.pascanu_loss_and_grad(5.5, -3.0)
    n = math.hypot(g_w, g_b)
    s = min(1.0, 1.0 / n)
    np.testing.assert_allclose(d.path[1], [5.5 - 0.5 * s * g_w, -3.0 - 0.5 * s * g_b], rtol=1e-12)
    # warm-up: the first step uses lr / warmup_steps
    w = clipping.pascanu_descent(5.5, -3.0, lr=0.5, steps=1, warmup_steps=10)
    np.testing.assert_allclose(w.path[1], [5.5 - 0.05 * g_w, -3.0 - 0.05 * g_b], rtol=1e-12)
    with pytest.raises(ValueError, match="clip_norm"):
        clipping.pascanu_descent(5.5, -3.0, clip_norm=0.0)
    with pytest.raises(ValueError, match="lr"):
        clipping.pascanu_descent(5.5, -3.0, lr=-1)


def _net_with_grad(seed=0):
    torch.manual_seed(seed)
    net = models.mlp(3, 16, in_features=8, out_features=4, init="kaiming_normal", gain=2.0)
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    nn.functional.cross_entropy(net(x), y).backward()
    return net


def _clone(net):
    other = _net_with_grad()
    for p, q in zip(net.parameters(), other.parameters()):
        q.grad = p.grad.clone()
    return other


@pytest.mark.parametrize("max_norm", [1e-3, 0.1, 1.0, 1e6])
def test_clip_by_norm_equals_torch(max_norm):
    a = _net_with_grad()
    b = _clone(a)
    ours = clipping.clip_by_norm_(a.parameters(), max_norm)
    theirs = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    assert torch.allclose(ours, theirs, rtol=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-6, atol=0)


@pytest.mark.parametrize("value", [1e-4, 0.01, 10.0])
def test_clip_by_value_equals_torch(value):
    a = _net_with_grad()
    b = _clone(a)
    clipping.clip_by_value_(a.parameters(), value)
    torch.nn.utils.clip_grad_value_(b.parameters(), value)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_clipping_validates_and_accepts_numpy_numbers():
    net = _net_with_grad()
    with pytest.raises(ValueError, match="max_norm"):
        clipping.clip_by_norm_(net.parameters(), 0.0)
    with pytest.raises(TypeError, match="clip_value"):
        clipping.clip_by_value_(net.parameters(), "1")
    clipping.clip_by_norm_(net.parameters(), np.float32(0.5))
    assert abs(clipping.flat_grad(net).norm().item() - 0.5) < 1e-4


def test_flat_grad_concatenates_in_parameter_order():
    net = _net_with_grad()
    flat = clipping.flat_grad(net)
    assert torch.equal(flat, torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    with pytest.raises(TypeError):
        clipping.flat_grad("not a model")


def test_recurrent_jacobian_matches_autograd_and_respects_the_bound():
    # autograd reference for the same W, x_0 and inputs (same generator draws)
    lam, units, steps = 1.7, 6, 12
    ours = clipping.recurrent_jacobian_log10_norms(lam, "tanh", steps=steps, units=units, seed=3)
    rng = np.random.default_rng(3)
    W = rng.standard_normal((units, units))
    W *= lam / np.linalg.norm(W, 2)
    x0 = torch.tensor(rng.standard_normal(units), dtype=torch.float64)
    inputs = [torch.tensor(rng.standard_normal(units), dtype=torch.float64) for _ in range(steps)]
    Wt = torch.tensor(W)

    def run(x):
        for u in inputs:
            x = Wt @ torch.tanh(x) + u
        return x

    J = torch.autograd.functional.jacobian(run, x0)
    assert abs(ours[-1] - math.log10(torch.linalg.matrix_norm(J, 2).item())) < 1e-9
    for act, gamma in (("tanh", 1.0), ("sigmoid", 0.25)):
        lam = 0.8 / gamma
        v = clipping.recurrent_jacobian_log10_norms(lam, act, steps=30, seed=1)
        assert np.all(v <= np.arange(1, 31) * math.log10(lam * gamma) + 1e-9)
    with pytest.raises(ValueError, match="activation"):
        clipping.recurrent_jacobian_log10_norms(1.0, "relu")
    with pytest.raises(ValueError, match="spectral_norm"):
        clipping.recurrent_jacobian_log10_norms(-1.0)


def test_sgd_run_warms_up_clips_and_stops_at_nonfinite():
    digits = data.digits(device="cpu")
    torch.manual_seed(0)
    net = models.mlp(2, 16, init="kaiming_normal")
    run = clipping.sgd_run(net, digits, steps=30, lr=0.1, warmup_steps=10, clip_norm=0.5, seed=0)
    assert run.diverged_at is None and len(run.loss) == len(run.grad_norm) == 30
    assert np.mean(run.loss[-5:]) < run.loss[0]
    torch.manual_seed(0)
    bad = models.mlp(2, 16, init="kaiming_normal")
    with torch.no_grad():
        bad.head.weight.fill_(float("inf"))
    assert clipping.sgd_run(bad, digits, steps=5, seed=0).diverged_at == 1
    with pytest.raises(ValueError, match="warmup_steps"):
        clipping.sgd_run(net, digits, warmup_steps=-1)


def test_sgd_run_clip_bounds_the_update():
    digits = data.digits(device="cpu")
    torch.manual_seed(1)
    net = models.mlp(2, 16, init="kaiming_normal", gain=3.0)
    before = torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone()
    run = clipping.sgd_run(net, digits, steps=1, lr=0.1, clip_norm=0.01, seed=0)
    step = torch.nn.utils.parameters_to_vector(net.parameters()).detach() - before
    assert run.grad_norm[0] > 0.01 and abs(step.norm().item() - 0.1 * 0.01) < 1e-6


def test_draw_cliff_draws_and_validates():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = clipping.draw_cliff(lr=0.5, threshold=1.0, steps=20)
    assert ax.get_xlabel() == "recurrent weight w" and len(ax.get_lines()) >= 3
    plt.close("all")
    with pytest.raises(ValueError, match="start"):
        clipping.draw_cliff(w0=20.0)
    with pytest.raises(ValueError, match="threshold"):
        clipping.draw_cliff(threshold=0)
