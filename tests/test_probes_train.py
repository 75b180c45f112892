"""gradflow.probes against autograd; gradflow.train's history, clipping and NaN reports."""

import math

import pytest
import torch
from torch import nn

import gradflow
from gradflow import data, models, probes, train


def _batch(n=32, d=16, k=4, seed=0):
    return data.random_classification(n, d, k, seed=seed)


def test_probe_matches_autograd():
    torch.manual_seed(0)
    model = models.mlp(4, 12, in_features=16, out_features=4, activation="sigmoid", init="xavier")
    x, y = _batch()
    # Autograd's answer: keep the gradient of every pre-activation z = Wx + b.
    zs = []

    def keep(module, inputs, z):  # returns None, so the output is left as it is
        z.retain_grad()
        zs.append(z)

    hooks = [layer.register_forward_hook(keep) for layer in [*[d.linear for d in model.hidden], model.head]]
    nn.functional.cross_entropy(model(x), y).backward()
    for h in hooks:
        h.remove()
    expected_w = [l.weight.grad.norm().item() for l in [*[d.linear for d in model.hidden], model.head]]
    expected_z = [z.grad.pow(2).mean().sqrt().item() for z in zs]

    model.zero_grad()
    stats = probes.measure(model, x, y)
    assert [s.name for s in stats] == [f"hidden.{i}.linear" for i in range(4)] + ["head"]
    assert [s.weight_grad_norm for s in stats] == pytest.approx(expected_w, rel=1e-5)
    assert [s.preact_grad_rms for s in stats] == pytest.approx(expected_z, rel=1e-5)
    # activation statistics are those of sigmoid(z); the head has no activation
    assert 0.3 < stats[0].act_mean < 0.7 and math.isnan(stats[-1].saturation)


def test_probe_orders_layers_by_execution_not_registration():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.last = nn.Linear(8, 2)
            self.first = nn.Linear(4, 8)

        def forward(self, x):
            return self.last(torch.tanh(self.first(x)))

    model = Backwards()
    with probes.Probe(model) as p:
        nn.functional.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 0, 1, 1])).backward()
    assert p.names == ["first", "last"]


def test_probe_leaves_no_hook_behind_even_after_an_error():
    model = models.mlp(3, 8, in_features=4, activation="tanh")

    def count():
        n = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
        return n + sum(len(p._backward_hooks or {}) for p in model.parameters())

    with pytest.raises(RuntimeError):
        with probes.Probe(model):
            model(torch.randn(2, 4)).sum().backward()
            raise RuntimeError("boom")
    assert count() == 0


def test_saturation_and_dead_units():
    torch.manual_seed(0)
    model = models.mlp(2, 64, in_features=16, activation="sigmoid", init="normal", std=5.0)
    stats = probes.measure(model, *_batch(k=10))
    assert stats[1].saturation > 0.6  # huge weights push sigmoid into its flat tails
    relu = models.mlp(2, 32, in_features=16, activation="relu", init="he", bias=True)
    with torch.no_grad():
        relu.hidden[1].linear.bias.fill_(-100.0)  # every unit of layer 2 negative for every input
    assert probes.dead_fraction(relu, torch.randn(500, 16)) == [0.0, 1.0]
    leaky = models.mlp(2, 32, in_features=16, activation="leaky_relu", init="he")
    with torch.no_grad():
        leaky.hidden[1].linear.bias.fill_(-100.0)
    assert probes.dead_fraction(leaky, torch.randn(500, 16)) == [0.0, 0.0]


def test_probe_rejects_what_it_cannot_watch():
    with pytest.raises(ValueError, match="no layer"):
        probes.Probe(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="valid: weight_grad_norm"):
        probes.Probe(nn.Linear(2, 2)).column("grad")


def test_update_ratios_measure_the_applied_step():
    model = nn.Sequential(nn.Linear(4, 4))
    before = probes.snapshot(model)
    with torch.no_grad():
        model[0].weight.mul_(1.01)
    assert probes.update_ratios(model, before)["0"] == pytest.approx(0.01, rel=1e-4)


@pytest.fixture(scope="module")
def digits():
    return data.digits(device="cpu")


def test_digits_split_and_standardisation(digits):
    assert digits.X_train.shape == (1347, 64) and digits.X_test.shape == (450, 64)
    assert digits.X_train.mean(0).abs().max() < 1e-5
    assert sorted(digits.y_train.unique().tolist()) == list(range(10))


def test_fit_learns_and_is_reproducible(digits):
    runs = []
    for _ in range(2):
        gradflow.set_seed(0)
        model = models.mlp(2, 32, activation="relu", init="he")
        runs.append(train.fit(model, digits, steps=200, lr=0.1, eval_every=100, device="cpu"))
    a, b = runs
    assert a.loss == b.loss
    assert a.test_acc[-1] > 0.9 and a.loss[-1] < a.loss[0] / 3
    assert len(a.grad_norms) == 200 and len(a.grad_norms[0]) == 3 and a.eval_step == [100, 200]


def test_clip_norm_records_the_pre_clip_norm(digits):
    gradflow.set_seed(0)
    model = models.mlp(2, 32, activation="relu", init="he")
    h = train.fit(model, digits, steps=20, lr=0.01, clip_norm=1e-3, device="cpu")
    assert min(h.total_grad_norm) > 1e-3  # recorded before clipping


def test_nonfinite_stops_with_step_and_layer(digits):
    gradflow.set_seed(0)
    model = models.mlp(6, 64, activation="relu", init="normal", std=3.0)
    with pytest.raises(train.NonFiniteError, match=r"step \d+: .*(hidden\.\d\.|head)"):
        train.fit(model, digits, steps=50, lr=10.0, device="cpu")
    gradflow.set_seed(0)
    model = models.mlp(6, 64, activation="relu", init="normal", std=3.0)
    h = train.fit(model, digits, steps=50, lr=10.0, on_nonfinite="record", device="cpu")
    assert h.diverged and h.nonfinite.startswith("step ") and len(h.loss) < 50


def test_fit_validates_arguments(digits):
    model = models.mlp(1, 8)
    for kwargs, msg in [
        ({"steps": 0}, "steps"),
        ({"lr": 0}, "lr"),
        ({"optimizer": "lbfgs"}, "sgd, adam"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"loss": "hinge"}, "cross_entropy"),
        ({"on_nonfinite": "ignore"}, "record"),
    ]:
        with pytest.raises(ValueError, match=msg):
            train.fit(model, digits, **kwargs)
