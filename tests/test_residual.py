"""gradflow.models' residual builders and gradflow.residual's measurements, against autograd,
torch's own layers and analytic values."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from gradflow import models, residual


def _block(**kw):
    torch.manual_seed(0)
    net = models.residual_mlp(1, 6, in_features=6, out_features=2, **kw)
    return net.blocks[0]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"norm": "layer", "placement": "pre"},
        {"activation": "tanh"},
        {"norm": "rms", "placement": "branch"},
    ],
)
def test_block_jacobian_is_identity_plus_branch_jacobian(kw):
    block = _block(**kw).double()
    x = torch.randn(1, 6, dtype=torch.float64)
    j_block = torch.autograd.functional.jacobian(block, x)[0, :, 0, :]
    j_branch = torch.autograd.functional.jacobian(block.branch, x)[0, :, 0, :]
    assert torch.allclose(j_block, torch.eye(6, dtype=torch.float64) + j_branch, atol=1e-12)
    assert j_branch.abs().max() > 0.01  # the branch is not trivially zero


def test_zero_branch_scale_and_zero_last_give_the_identity():
    x = torch.randn(5, 6)
    for kw in (
        {"branch_scale": True},
        {"zero_last": True},
        {"zero_last": True, "norm": "layer", "placement": "pre"},
    ):
        block = _block(**kw)
        assert torch.equal(block(x), x)
    skip = _block(branch_scale=True)
    assert skip.scale.requires_grad and skip.scale.item() == 0.0


def test_zero_last_zeroes_only_the_last_layer_of_each_branch():
    torch.manual_seed(0)
    net = models.residual_mlp(3, 8, in_features=4, out_features=2, zero_last=True)
    for block in net.blocks:
        assert block.linear2.weight.abs().sum() == 0 and block.linear2.bias.abs().sum() == 0
        assert block.linear1.weight.abs().sum() > 0
    assert net.head.weight.abs().sum() > 0 and net.stem.weight.abs().sum() > 0


def test_placements_match_hand_written_formulas():
    x = torch.randn(7, 6)
    pre = _block(norm="layer", placement="pre")
    ln = nn.LayerNorm(6)
    expect = x + pre.linear2(torch.relu(pre.linear1(ln(x))))
    assert torch.allclose(pre(x), expect, atol=1e-6)
    post = _block(norm="layer", placement="post")
    expect = ln(x + post.linear2(torch.relu(post.linear1(x))))
    assert torch.allclose(post(x), expect, atol=1e-6)
    branch = _block(norm="batch", placement="branch", final_activation="relu")
    bn1, bn2 = nn.BatchNorm1d(6), nn.BatchNorm1d(6)
    expect = torch.relu(x + bn2(branch.linear2(torch.relu(bn1(branch.linear1(x))))))
    assert torch.allclose(branch(x), expect, atol=1e-6)
    plain = _block(residual=False)
    assert torch.allclose(plain(x), plain.linear2(torch.relu(plain.linear1(x))))


def test_source_twenty_block_net_parameter_count():
    net = models.residual_mlp(20, 32, in_features=32, out_features=1, norm="batch", final_activation="relu")
    per_block = 2 * (32 * 32 + 32) + 2 * (2 * 32)  # two Linears, two BatchNorms (gamma, beta)
    assert sum(p.numel() for p in net.parameters()) == 20 * per_block + 32 + 1 == 44_833
    assert isinstance(net.stem, nn.Identity)  # in_features == width: no stem, as in the source


def test_builder_validates_and_accepts_numpy_ints():
    net = models.residual_mlp(np.int64(2), np.int32(8))
    assert len(net.blocks) == 2
    with pytest.raises(ValueError, match="placement"):
        models.residual_mlp(2, 8, placement="middle")
    with pytest.raises(ValueError, match="blocks"):
        models.residual_mlp(0, 8)
    with pytest.raises(TypeError, match="residual"):
        models.residual_mlp(2, 8, residual="yes")
    with pytest.raises(ValueError, match="norm"):
        models.residual_mlp(2, 8, norm="group-ish")
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(3, 5))


def test_block_gradients_match_autograd_on_the_states():
    torch.manual_seed(0)
    net = models.residual_mlp(3, 8, in_features=5, out_features=3)
    x = torch.randn(4, 5)
    got = residual.block_gradients(net, x, seed=3)
    states = net.states(x)
    v = torch.randn((4, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64).float()
    grads = torch.autograd.grad((net.head(states[-1]) * v).sum(), states)
    assert got == pytest.approx([g.pow(2).mean().sqrt().item() for g in grads], rel=1e-5)
    # the last state's gradient is W_head^T v
    assert got[-1] == pytest.approx((v @ net.head.weight).pow(2).mean().sqrt().item(), rel=1e-5)


def test_block_variances_grow_by_three_with_he_and_stay_flat_with_skipinit():
    torch.manual_seed(0)
    x = torch.randn(2048, 256)
    he = residual.block_variances(models.residual_mlp(4, 256, in_features=256), x)
    ratios = np.array(he[1:]) / np.array(he[:-1])  # 1 + 2 (He: Var F = 2 Var x)
    assert np.all(np.abs(ratios - 3) < 0.3)
    flat = residual.block_variances(models.residual_mlp(4, 256, in_features=256, branch_scale=True), x)
    assert flat == pytest.approx([x.double().var().item()] * 5)


def test_lesion_errors_equal_a_manual_deletion():
    torch.manual_seed(0)
    net = models.residual_mlp(3, 8, in_features=5, out_features=3, norm="batch")
    X, y = torch.randn(50, 5), torch.randint(0, 3, (50,))
    net.train()
    intact, per_block = residual.lesion_errors(net, X, y)
    assert net.training  # mode restored
    net.eval()
    with torch.no_grad():
        h = net.stem(X)
        for i in (0, 2):  # without block 1 (index 1)
            h = net.blocks[i](h)
        manual = (net.head(h).argmax(1) != y).float().mean().item()
        full = (net(X).argmax(1) != y).float().mean().item()
    assert per_block[1] == pytest.approx(manual) and intact == pytest.approx(full)
    assert len(per_block) == 3


def test_autocorrelation_known_answers():
    alternating = np.array([1.0, -1.0] * 50)
    assert residual.autocorrelation(alternating) == pytest.approx(-99 / 100)
    ramp = torch.arange(10.0)
    d = np.arange(10.0) - 4.5
    assert residual.autocorrelation(ramp, lag=2) == pytest.approx(float(d[:-2] @ d[2:] / (d @ d)))
    with pytest.raises(ValueError, match="constant"):
        residual.autocorrelation(np.ones(10))
    with pytest.raises(ValueError, match="lag"):
        residual.autocorrelation(np.arange(10.0), lag=0)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_input_gradients_1d_match_finite_differences_and_restore_bn(norm):
    torch.manual_seed(0)
    net = models.residual_mlp(3, 16, in_features=1, out_features=1, norm=norm).double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grid, g = residual.input_gradients_1d(net, n=64)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training
    # finite differences of the same function (BN frozen at the grid's batch statistics)
    x = torch.tensor(grid, dtype=torch.float64)[:, None]
    if norm:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = 1.0
        with torch.no_grad():
            net(x)
    net.eval()
    eps = 1e-6
    with torch.no_grad():
        fd = ((net(x + eps) - net(x - eps)) / (2 * eps))[:, 0].numpy()
    assert np.allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_shattering_shape_and_plain_is_rougher_than_residual():
    a = residual.shattering([1, 20], range(2), width=32, n=64, residual=False, norm="batch")
    b = residual.shattering([1, 20], range(2), width=32, n=64, norm="batch")
    assert a.shape == (2, 2) and np.all(np.abs(a) <= 1) and np.all(np.abs(b) <= 1)
    assert b[:, 1].mean() > a[:, 1].mean() + 0.2
    # zero biases, no norm: a ReLU net of one input is positively homogeneous, dy/dx two-valued
    grid, g = residual.input_gradients_1d(models.residual_mlp(3, 16, in_features=1, out_features=1))
    assert len(np.unique(np.round(g, 6))) == 2 and np.ptp(g[grid > 0]) < 1e-6


def test_draw_gradient_highway_draws_two_panels():
    axes = residual.draw_gradient_highway(depth=3, width=8)
    assert len(axes) == 2 and len(axes[1].lines) == 2
    with pytest.raises(ValueError, match="depth"):
        residual.draw_gradient_highway(depth=0)
    with pytest.raises(TypeError, match="model"):
        residual.block_variances(nn.Linear(3, 3), torch.randn(2, 3))
