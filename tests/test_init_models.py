"""gradflow.init variances against their formulas and torch; gradflow.models' contract."""

import math

import pytest
import torch
from torch import nn

from gradflow import init, models


def _var(scheme, shape=(400, 600), **kw):
    w = torch.empty(*shape)
    init.init_weight_(w, scheme, **kw)
    return w.var().item()


@pytest.mark.parametrize(
    "scheme, expected",
    [
        ("xavier_uniform", 2 / (600 + 400)),
        ("xavier_normal", 2 / (600 + 400)),
        ("kaiming_normal", 2 / 600),
        ("kaiming_uniform", 2 / 600),
        ("lecun", 1 / 600),
        ("default", 1 / (3 * 600)),
        ("orthogonal", 1 / 600),  # rows orthonormal: each of 400 rows has unit norm over 600 entries
    ],
)
def test_scheme_variance(scheme, expected):
    torch.manual_seed(0)
    assert _var(scheme) == pytest.approx(expected, rel=0.03)


def test_kaiming_fan_out_and_normal_std():
    torch.manual_seed(0)
    assert _var("kaiming_normal", mode="fan_out") == pytest.approx(2 / 400, rel=0.03)
    assert _var("normal", std=0.5) == pytest.approx(0.25, rel=0.03)


def test_matches_torch_own_initialisers():
    torch.manual_seed(0)
    w = torch.empty(300, 500)
    nn.init.xavier_uniform_(w)
    assert _var("xavier_uniform", (300, 500)) == pytest.approx(w.var().item(), rel=0.03)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert _var("he", (300, 500)) == pytest.approx(w.var().item(), rel=0.03)
    layer = nn.Linear(500, 300)  # PyTorch's default init: U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    bound = 1 / math.sqrt(500)
    assert layer.weight.abs().max().item() <= bound
    assert _var("default", (300, 500)) == pytest.approx(layer.weight.var().item(), rel=0.03)


def test_orthogonal_is_orthogonal_and_zeros_are_zero():
    w = init.init_weight_(torch.empty(64, 64), "orthogonal", gain=2.0)
    assert torch.allclose(w @ w.T, 4 * torch.eye(64), atol=1e-4)
    assert init.init_weight_(torch.empty(3, 3), "zeros").abs().sum() == 0


def test_apply_init_touches_every_layer_and_bias():
    model = models.mlp(3, 16, in_features=8, out_features=2, init="default")
    init.apply_init(model, "constant", value=0.5, bias=0.1)
    for _, layer in init.weighted_layers(model):
        assert torch.all(layer.weight == 0.5) and torch.all(layer.bias == 0.1)


def test_unknown_scheme_lists_valid_names():
    with pytest.raises(ValueError, match="xavier_uniform.*kaiming_normal"):
        init.resolve("glorot_magic")
    with pytest.raises(ValueError, match="mode"):
        init.init_weight_(torch.empty(3, 3), "he", mode="fan_sideways")


def test_mlp_structure_and_validation():
    model = models.mlp(5, 32, in_features=64, out_features=10, activation="tanh")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 6 and linears[0].in_features == 64 and linears[-1].out_features == 10
    assert model(torch.randn(7, 64)).shape == (7, 10)
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="depth must be an integer >= 1"):
            models.mlp(bad, 32)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        models.mlp(3, 0)
    with pytest.raises(ValueError, match="valid names: .*relu"):
        models.mlp(3, 8, activation="rleu")
    with pytest.raises(ValueError, match="valid names: batch"):
        models.mlp(3, 8, norm="group")


def test_wrong_input_width_names_both_widths():
    model = models.mlp(2, 8, in_features=64)
    with pytest.raises(ValueError, match="width 64.*width 32"):
        model(torch.randn(4, 32))


def test_no_inplace_ops_and_residual_identity():
    model = models.mlp(4, 16, in_features=16, out_features=16, activation="relu", residual=True)
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    # With every weight and bias zero, residual layers pass their input through unchanged.
    init.apply_init(model, "zeros")
    x = torch.randn(3, 16)
    h = model.hidden[0](x)
    assert torch.equal(model.hidden[3](model.hidden[2](model.hidden[1](h))), h)


@pytest.mark.parametrize("norm", ["batch", "layer", "rms"])
def test_norm_layers_sit_between_linear_and_activation(norm):
    model = models.mlp(2, 8, in_features=4, norm=norm)
    assert not isinstance(model.hidden[0].norm, nn.Identity)
    assert model(torch.randn(5, 4)).shape == (5, 10)
