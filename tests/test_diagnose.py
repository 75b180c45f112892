"""gradflow.diagnose: findings from probe statistics, and activation_values."""

import math

import pytest
import torch
from torch import nn

from gradflow import diagnose, models, probes
from gradflow.data import random_classification
from gradflow.probes import LayerStats


def _stats(grads, saturation=None):
    saturation = saturation or [math.nan] * len(grads)
    return [
        LayerStats(name=f"l{i}", preact_grad_rms=g, weight_grad_norm=g, saturation=s)
        for i, (g, s) in enumerate(zip(grads, saturation))
    ]


def test_gradient_ratio_is_first_over_last():
    assert diagnose.gradient_ratio(_stats([2e-6, 1e-3, 1.0])) == pytest.approx(2e-6)
    assert diagnose.gradient_ratio(_stats([4.0, 2.0]), "weight_grad_norm") == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [dict(stat="act_mean"), dict(stat="nope")])
def test_gradient_ratio_rejects_non_gradient_stats(bad):
    with pytest.raises(ValueError, match="gradient statistic"):
        diagnose.gradient_ratio(_stats([1.0, 1.0]), **bad)


def test_gradient_ratio_needs_recorded_values():
    with pytest.raises(ValueError, match="at least 2 layers"):
        diagnose.gradient_ratio(_stats([1.0]))
    with pytest.raises(ValueError, match="not recorded"):
        diagnose.gradient_ratio([LayerStats("a"), LayerStats("b")])
    with pytest.raises(ValueError, match="is 0"):
        diagnose.gradient_ratio(_stats([1.0, 0.0]))


def test_findings_vanishing_exploding_healthy():
    (f,) = diagnose.findings(_stats([3e-6, 1.0]))
    assert f.kind == "vanishing" and f.value == pytest.approx(3e-6)
    assert "layer 1 (l0) gets 3.0e-06 of the output layer's gradient" in f.message
    assert "ReLU" in f.fix
    (f,) = diagnose.findings(_stats([5e4, 1.0]))
    assert f.kind == "exploding" and "clip" in f.fix
    (f,) = diagnose.findings(_stats([0.5, 1.0]))
    assert f.kind == "healthy"


def test_findings_saturated_and_dead():
    out = diagnose.findings(_stats([0.5, 0.5, 1.0], saturation=[0.1, 0.8, math.nan]), dead=[0.0, 0.3])
    kinds = [(f.kind, f.layer) for f in out]
    assert kinds == [("saturated", "l1"), ("dead", "activation 2")]
    assert "80%" in out[0].message and "30%" in out[1].message


def test_findings_validates_thresholds():
    with pytest.raises(ValueError, match="vanishing < 1 < exploding"):
        diagnose.findings(_stats([1.0, 1.0]), vanishing=2.0)
    with pytest.raises(ValueError, match="fractions"):
        diagnose.findings(_stats([1.0, 1.0]), saturated=1.5)


def test_findings_on_real_models():
    torch.manual_seed(0)
    x, y = random_classification(128, 64, 10, seed=0)
    deep = models.mlp(10, 64, in_features=64, activation="sigmoid", init="xavier")
    kinds = [f.kind for f in diagnose.findings(probes.measure(deep, x, y))]
    assert kinds == ["vanishing"]
    shallow = models.mlp(2, 64, in_features=64, activation="tanh", init="xavier")
    assert [f.kind for f in diagnose.findings(probes.measure(shallow, x, y))] == ["healthy"]
    text = diagnose.report(probes.measure(deep, x, y))
    assert text.startswith("vanishing: layer 1 (hidden.0.linear)") and "\n    fix: " in text


def test_activation_values_match_a_manual_forward():
    torch.manual_seed(0)
    model = models.mlp(3, 8, in_features=5, out_features=2, activation="tanh", init="xavier")
    x = torch.randn(7, 5)
    values = diagnose.activation_values(model, x)
    assert len(values) == 3
    h = x
    for layer, v in zip(model.hidden, values):
        h = torch.tanh(layer.linear(h))
        torch.testing.assert_close(v, h)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="no activation"):
        diagnose.activation_values(nn.Linear(3, 2), torch.randn(1, 3))
