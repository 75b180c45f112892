"""gradflow.dashboard against known answers: torch.histc, one SGD step, hook bookkeeping."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import gradflow
from gradflow import dashboard


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))


def test_histogram_equals_histc_inside_the_range_and_clamps_outside():
    values = torch.linspace(0.0, 1.0, 101)
    assert torch.equal(dashboard.histogram(values, 10, 0.0, 1.0), torch.histc(values, 10, 0.0, 1.0))
    outside = torch.tensor([-5.0, 0.05, 0.5, 7.0])
    counts = dashboard.histogram(outside, 4, 0.0, 1.0)
    assert counts.tolist() == [2.0, 0.0, 1.0, 1.0]  # -5 into the first bin, 7 into the last
    assert counts.sum().item() == outside.numel()


def test_recorder_activation_histograms_are_histc_of_abs_outputs():
    net = _net()
    x = torch.randn(16, 5)
    with dashboard.Recorder(net, bins=8, act_range=(0.0, 2.0)) as rec:
        net(x).sum().backward()
    expected = torch.histc(torch.relu(net[0](x)).detach().clamp(0.0, 2.0), 8, 0.0, 2.0)
    assert rec.act_names == ["1"]
    assert rec.act_hist.shape == (1, 1, 8)
    np.testing.assert_array_equal(rec.act_hist[0, 0], expected.numpy())
    zeros = (torch.relu(net[0](x)) < 0.25).float().mean().item()
    assert rec.dead_fraction()[0, 0] == pytest.approx(zeros)


def test_recorder_gradient_histograms_count_every_weight():
    net = _net()
    x = torch.randn(16, 5)
    with dashboard.Recorder(net, bins=20) as rec:
        net(x).pow(2).sum().backward()
    assert rec.grad_hist.shape == (1, 2, 20)
    assert rec.grad_hist[0].sum(axis=1).tolist() == [35.0, 21.0]
    logs = torch.log10(net[2].weight.grad.abs().clamp_min(1e-30))
    expected = torch.histc(logs.clamp(-12.0, 2.0), 20, -12.0, 2.0)
    np.testing.assert_array_equal(rec.grad_hist[0, 1], expected.numpy())


def test_update_ratio_of_one_sgd_step_is_lr_times_grad_over_weight():
    net = _net()
    lr = 0.05
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    w0 = [net[0].weight.detach().clone(), net[2].weight.detach().clone()]
    with dashboard.Recorder(net) as rec:
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        grads = [net[0].weight.grad.clone(), net[2].weight.grad.clone()]
        opt.step()
    expected = [lr * g.norm().item() / w.norm().item() for g, w in zip(grads, w0)]
    assert rec.update_steps.tolist() == [1]
    np.testing.assert_allclose(rec.update_ratio[0], expected, rtol=1e-5)


def test_round_off_floor_is_the_weights_eps_and_an_update_below_it_is_lost():
    rec = dashboard.Recorder(_net())
    assert rec.weight_eps == torch.finfo(torch.float32).eps
    assert dashboard.Recorder(_net().double()).weight_eps == torch.finfo(torch.float64).eps
    # the reason for the floor: a relative step well below eps leaves a float32 weight unchanged
    w = torch.tensor([0.3, -0.7, 1.1])
    assert torch.equal(w + w * (rec.weight_eps / 10), w)
    # the band is drawn where a ratio falls below the floor (a tiny learning rate), not otherwise
    for lr, shaded in ((1e-12, True), (0.1, False)):
        ax = dashboard.plot_update_ratios(_recorded_run(lr))
        assert any(p.get_label().startswith("round-off") for p in ax.patches) == shaded
        plt.close("all")


def _recorded_run(lr: float) -> dashboard.Recorder:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    with dashboard.Recorder(net) as rec:
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return rec


def test_update_ratios_follow_training_and_skip_evaluation():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    with dashboard.Recorder(net, every=2) as rec:
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            with torch.no_grad():
                net(x)  # an evaluation pass: not recorded, not a step
    assert rec.act_steps.tolist() == [1, 3, 5]
    assert rec.update_steps.tolist() == [1, 3, 5]
    assert (rec.update_ratio > 0).all()


def test_hooks_are_removed_on_exit_even_after_an_error():
    net = _net()
    count = lambda: (
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())
        + sum(len(p._backward_hooks or {}) for p in net.parameters())
    )
    before = count()
    with pytest.raises(RuntimeError):
        with dashboard.Recorder(net):
            assert count() > before
            raise RuntimeError("boom")
    assert count() == before
    # after exit nothing more is recorded
    rec = dashboard.Recorder(net)
    with rec:
        net(torch.randn(2, 5)).sum().backward()
    net(torch.randn(2, 5)).sum().backward()
    assert rec.act_hist.shape[0] == 1 and count() == before


def test_recorder_works_with_train_fit_and_a_conv_net():
    gradflow.set_seed(0)
    net = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(256, 10)
    )
    data = gradflow.data.digits(device="cpu")
    with dashboard.Recorder(net, act_range=(0.0, 1.0), every=3) as rec:
        gradflow.train.fit(net, data, steps=7, lr=0.1, eval_every=3, device="cpu")
    assert rec.act_steps.tolist() == [1, 4, 7] and rec.update_steps.tolist() == [1, 4, 7]
    assert rec.layer_names == ["1", "4"]
    assert rec.grad_hist.shape == (3, 2, 40)
    fig = dashboard.show(rec, title="test")
    assert len(fig.axes) == 4  # one activation image (a single module), dead, gradients, updates
    plt.close("all")


def test_bad_arguments_are_refused_with_their_name():
    net = _net()
    with pytest.raises(TypeError, match="model"):
        dashboard.Recorder("not a model")
    with pytest.raises(ValueError, match="bins"):
        dashboard.Recorder(net, bins=1)
    with pytest.raises(ValueError, match="every"):
        dashboard.Recorder(net, every=0)
    with pytest.raises(ValueError, match="act_range"):
        dashboard.Recorder(net, act_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="modules"):
        dashboard.Recorder(net, modules=[nn.ReLU()])
    with pytest.raises(ValueError, match="no layer"):
        dashboard.Recorder(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="rec"):
        dashboard.plot_dead(object())
    assert dashboard.Recorder(net, bins=np.int64(10), act_range=(np.float32(0), 1)).bins == 10


def test_draw_dashboard_reports_the_sick_net():
    fig = dashboard.draw_dashboard(depth=4, steps=5)
    assert "sigmoid" in fig._suptitle.get_text() and len(fig.axes) == 6
    plt.close("all")
    with pytest.raises(ValueError, match="steps"):
        dashboard.draw_dashboard(steps=0)
    with pytest.raises(ValueError, match="steps"):
        dashboard.draw_dashboard(steps="100")
    assert math.isclose(dashboard.HEALTHY_UPDATE_RATIO, 1e-3)
