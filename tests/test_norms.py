"""gradflow.norms' from-scratch layers against torch's: forward, gradients, running statistics,
train and eval mode, several shapes."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from gradflow import models, norms


def _pair_check(ours, theirs, shape, *, steps=3, train=True, atol=1e-5):
    """Run both layers on the same inputs; compare outputs, input and parameter gradients."""
    torch.manual_seed(0)
    ours.train(train)
    theirs.train(train)
    # give the affine parameters non-trivial values, the same in both
    with torch.no_grad():
        for (n1, p1), (n2, p2) in zip(sorted(ours.named_parameters()), sorted(theirs.named_parameters())):
            assert n1 == n2 and p1.shape == p2.shape
            p1.copy_(torch.randn_like(p1))
            p2.copy_(p1)
    for _ in range(steps):
        x = (3 * torch.randn(*shape) + 2).double().requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        y1, y2 = ours.double()(x), theirs.double()(x2)
        torch.testing.assert_close(y1, y2, atol=atol, rtol=1e-5)
        w = torch.randn_like(y1)
        (y1 * w).sum().backward()
        (y2 * w).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad, atol=atol, rtol=1e-5)
        for (n1, p1), (_, p2) in zip(sorted(ours.named_parameters()), sorted(theirs.named_parameters())):
            torch.testing.assert_close(p1.grad, p2.grad, atol=atol, rtol=1e-5, msg=n1)
    for (n1, b1), (_, b2) in zip(sorted(ours.named_buffers()), sorted(theirs.named_buffers())):
        torch.testing.assert_close(b1.to(b2.dtype), b2, atol=atol, rtol=1e-5, msg=n1)


@pytest.mark.parametrize(
    "shape, torch_cls",
    [
        ((16, 5), nn.BatchNorm1d),
        ((8, 4, 7), nn.BatchNorm1d),
        ((6, 3, 4, 5), nn.BatchNorm2d),
        ((2, 3), nn.BatchNorm1d),
    ],
)
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_train_matches_torch(shape, torch_cls, momentum, affine):
    c = shape[1]
    _pair_check(
        norms.BatchNorm(c, momentum=momentum, affine=affine),
        torch_cls(c, momentum=momentum, affine=affine),
        shape,
        train=True,
    )


@pytest.mark.parametrize("shape, torch_cls", [((16, 5), nn.BatchNorm1d), ((6, 3, 4, 5), nn.BatchNorm2d)])
def test_batchnorm_eval_uses_running_stats_like_torch(shape, torch_cls):
    ours, theirs = norms.BatchNorm(shape[1]).double(), torch_cls(shape[1]).double()
    torch.manual_seed(1)
    for _ in range(4):  # build up running statistics in training mode
        x = 2 * torch.randn(*shape, dtype=torch.float64) + 1
        ours(x), theirs(x)
    torch.testing.assert_close(ours.running_var, theirs.running_var)
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 4
    _pair_check(ours, theirs, shape, train=False)
    # eval mode: a single example works and does not change the running statistics
    before = ours.running_mean.clone()
    x1 = torch.randn(1, *shape[1:], dtype=torch.float64)
    torch.testing.assert_close(ours(x1), theirs(x1))
    assert torch.equal(before, ours.running_mean)


def test_batchnorm_running_var_is_unbiased_and_momentum_weights_new_batch():
    bn = norms.BatchNorm(1, momentum=0.1)
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    y = bn(x)
    # normalized with the biased variance (divide by n = 4)
    assert torch.allclose(y, (x - 3.0) / torch.sqrt(torch.tensor(3.5 + 1e-5)))
    assert bn.running_mean.item() == pytest.approx(0.9 * 0 + 0.1 * 3.0)
    assert bn.running_var.item() == pytest.approx(0.9 * 1 + 0.1 * 14 / 3)  # unbiased: 14 / 3


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    _pair_check(
        norms.BatchNorm(4, track_running_stats=False),
        nn.BatchNorm1d(4, track_running_stats=False),
        (10, 4),
        train=False,
    )


@pytest.mark.parametrize("shape, normalized", [((8, 6), 6), ((4, 5, 6), (5, 6)), ((3, 2, 4, 5), 5)])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_matches_torch(shape, normalized, train, affine):
    _pair_check(
        norms.LayerNorm(normalized, elementwise_affine=affine),
        nn.LayerNorm(normalized, elementwise_affine=affine),
        shape,
        train=train,
    )


@pytest.mark.parametrize(
    "shape, torch_cls", [((4, 3, 10), nn.InstanceNorm1d), ((2, 3, 5, 6), nn.InstanceNorm2d)]
)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_instancenorm_matches_torch(shape, torch_cls, train, affine):
    _pair_check(
        norms.InstanceNorm(shape[1], affine=affine), torch_cls(shape[1], affine=affine), shape, train=train
    )


@pytest.mark.parametrize("groups, shape", [(2, (5, 6)), (3, (4, 6, 7)), (1, (3, 4, 2, 2)), (4, (3, 4, 2, 2))])
@pytest.mark.parametrize("train", [True, False])
def test_groupnorm_matches_torch(groups, shape, train):
    _pair_check(norms.GroupNorm(groups, shape[1]), nn.GroupNorm(groups, shape[1]), shape, train=train)


@pytest.mark.parametrize("shape, normalized", [((8, 6), 6), ((4, 5, 6), (5, 6))])
@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("train", [True, False])
def test_rmsnorm_matches_torch(shape, normalized, eps, train):
    _pair_check(norms.RMSNorm(normalized, eps=eps), nn.RMSNorm(normalized, eps=eps), shape, train=train)


def test_rmsnorm_default_eps_in_float32_matches_torch():
    x = torch.randn(5, 7) * 1e-3
    torch.testing.assert_close(norms.RMSNorm(7)(x), nn.RMSNorm(7)(x))


def test_groupnorm_extremes_are_layernorm_and_instancenorm():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    ln = nn.LayerNorm((4, 5), elementwise_affine=False).double()
    torch.testing.assert_close(norms.GroupNorm(1, 4, affine=False)(x), ln(x))
    torch.testing.assert_close(norms.GroupNorm(4, 4, affine=False)(x), norms.InstanceNorm(4)(x))


@pytest.mark.parametrize("name", norms.NAMES)
def test_get_scratch_equals_torch_default(name):
    torch.manual_seed(0)
    x = torch.randn(16, 12)
    ours, theirs = norms.get(name, 12, scratch=True), norms.get(name, 12)
    assert not isinstance(ours, type(theirs))
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_default_groups():
    assert norms.default_groups(128) == 32 and norms.default_groups(12) == 12
    assert norms.default_groups(50) == 25 and norms.default_groups(np.int64(7)) == 7
    with pytest.raises(ValueError):
        norms.default_groups(0)


@pytest.mark.parametrize("name", norms.NAMES)
def test_scratch_layers_work_inside_an_mlp(name):
    torch.manual_seed(0)
    net = models.mlp(2, 16, norm=name)
    ref = copy.deepcopy(net)
    for layer in net.hidden:
        layer.norm = norms.get(name, 16, scratch=True)
    x = torch.randn(8, 64)
    torch.testing.assert_close(net(x), ref(x), atol=1e-5, rtol=1e-5)


def test_torch_layers_remain_the_default():
    assert type(norms.get("batch", 4)) is nn.BatchNorm1d
    assert type(norms.get("layer", 4)) is nn.LayerNorm
    assert type(norms.get("rms", 4)) is nn.RMSNorm


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda: norms.get("weird", 4), ValueError),
        (lambda: norms.get("batch", 0), ValueError),
        (lambda: norms.BatchNorm(4, momentum=1.5), ValueError),
        (lambda: norms.BatchNorm(4, eps=-1), ValueError),
        (lambda: norms.GroupNorm(3, 4), ValueError),
        (lambda: norms.LayerNorm([]), ValueError),
        (lambda: norms.LayerNorm("a"), TypeError),
        (lambda: norms.BatchNorm(3)(torch.randn(4, 5)), ValueError),
        (lambda: norms.BatchNorm(3)(torch.randn(1, 3)), ValueError),
        (lambda: norms.InstanceNorm(3)(torch.randn(4, 3)), ValueError),
        (lambda: norms.RMSNorm(3)(torch.randn(4, 5)), ValueError),
        (lambda: norms.CovariateShift(shift=-1), ValueError),
    ],
)
def test_bad_arguments_are_refused(call, exc):
    with pytest.raises(exc):
        call()


def test_numpy_ints_are_accepted():
    assert norms.BatchNorm(np.int64(3)).num_features == 3
    assert norms.LayerNorm(np.int32(4)).normalized_shape == (4,)


def test_covariate_shift_changes_every_step_in_train_and_is_identity_in_eval():
    layer = norms.CovariateShift(shift=1.0, scale=1.0)
    x = torch.randn(8, 5)
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, b)
    # an affine map per unit: the per-unit standardized values are unchanged
    z = lambda t: (t - t.mean(0)) / t.std(0)
    torch.testing.assert_close(z(a), z(x), atol=1e-5, rtol=1e-5)
    layer.eval()
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize(
    "name, size, count",
    [
        ("BatchNorm", 4 * 3, 6),
        ("LayerNorm", 6 * 3, 4),
        ("InstanceNorm", 3, 24),
        ("GroupNorm", 3 * 3, 8),
        ("RMSNorm", 6 * 3, 4),
    ],
)
def test_normalization_groups_read_off_the_jacobian(name, size, count):
    ids = norms.normalization_groups(name, batch=4, channels=6, spatial=3, groups=2)
    assert ids.shape == (4, 6, 3) and ids.max() + 1 == count
    assert all((ids == g).sum() == size for g in range(count))
    if name == "BatchNorm":  # one group per channel, across examples and positions
        assert (ids == ids[:1, :, :1]).all()
    if name == "GroupNorm":  # channels 1-3 and 4-6 of one example
        assert ids[0, 0, 0] == ids[0, 2, 2] != ids[0, 3, 0] and ids[0, 0, 0] != ids[1, 0, 0]


def test_normalization_groups_refuses_bad_arguments():
    with pytest.raises(ValueError):
        norms.normalization_groups("BatchNorm2d")
    with pytest.raises(ValueError):
        norms.normalization_groups("BatchNorm", batch=1)


def test_norm_gradient_profile_matches_a_hand_computation():
    from gradflow import data

    prof = norms.norm_gradient_profile(3, "tanh", "batch", init="default", width=8, batch_size=16, seed=3)
    torch.manual_seed(3)
    model = models.mlp(3, 8, in_features=8, out_features=10, activation="tanh", init="default", norm="batch")
    x, y = data.random_classification(16, 8, 10, seed=3)
    zs = []
    h = x
    for layer in model.hidden:
        z = layer.linear(h)
        z.retain_grad()
        zs.append(z)
        h = layer.act(layer.norm(z))
    nn.functional.cross_entropy(model.head(h), y).backward()
    expected = [z.grad.pow(2).mean().sqrt().item() for z in zs]
    assert prof == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        norms.norm_gradient_profile(3, "tanh", "batch", batch_size=1)


def test_draw_norm_flow_and_axes_draw(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    ax = norms.draw_norm_flow(depth=4, width=8, batch_size=8)
    assert len(ax.get_lines()) == 2
    fig = norms.draw_norm_axes()
    assert len(fig.axes) == 5
    with pytest.raises(ValueError):
        norms.draw_norm_flow(norm="group")


def test_elements_moved_counts_reads_and_writes():
    # one element-wise pass over 10 elements: 10 read + 10 written
    assert norms.elements_moved(lambda t: t * 2, torch.ones(10)) == 20
    # a row mean of a (4, 5) tensor: 20 read + 4 written
    assert norms.elements_moved(lambda t: t.mean(-1, keepdim=True), torch.ones(4, 5)) == 24
    # two ops: (x - 1) then exp: 2 * (n + n)
    assert norms.elements_moved(lambda t: (t - 1).exp(), torch.ones(3, 7)) == 4 * 21
    # a fused library layer counts as one op: read n, write n
    x = torch.randn(8, 16)
    assert norms.elements_moved(nn.LayerNorm(16, elementwise_affine=False), x) == 2 * x.numel()

    # hand-written RMSNorm moves 5/8 of what hand-written LayerNorm does (up to the row statistics)
    def ln(t):
        d = t - t.mean(-1, keepdim=True)
        return d * torch.rsqrt(d.pow(2).mean(-1, keepdim=True) + 1e-5)

    def rms(t):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5)

    x = torch.randn(64, 256)
    assert norms.elements_moved(ln, x) == 8 * x.numel() + 8 * 64
    assert norms.elements_moved(rms, x) == 5 * x.numel() + 6 * 64


@pytest.mark.parametrize("fn, x, exc", [(None, torch.ones(2), TypeError), (abs, [1.0, 2.0], TypeError)])
def test_elements_moved_refuses_bad_arguments(fn, x, exc):
    with pytest.raises(exc):
        norms.elements_moved(fn, x)
