"""gradflow.probes on any model (issue 10): recurrent, attention, conv and parametrised layers
against torch autograd; the edge cases (a module used twice, frozen weights, a first pass that
raises, nested `with`, hooks on outputs); data moved to the model's device; bad arguments."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from gradflow import core, diagnose, models, probes, train


def _hook_count(model):
    n = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return n + sum(len(p._backward_hooks or {}) for p in model.parameters())


class Seq(nn.Module):
    """A recurrent layer (2 stacked layers) read at the last time step, then a linear head."""

    def __init__(self, cell, batch_first=True):
        super().__init__()
        self.rnn = cell(3, 5, num_layers=2, batch_first=batch_first)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1] if self.rnn.batch_first else out[-1])


def _reference_hidden_grads(model, x, y):
    """|dL/dh_t| of both stacked layers, from a loop over nn.*Cell copies of the weights."""
    rnn = model.rnn
    kind = {nn.RNN: nn.RNNCell, nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell}[type(rnn)]
    cells = []
    for layer in range(rnn.num_layers):
        cell = kind(rnn.input_size if layer == 0 else rnn.hidden_size, rnn.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(rnn, f"{name}_l{layer}"))
        cells.append(cell)
    seq = list(x.unbind(1))
    hs = []
    for cell in cells:
        h = torch.zeros(x.shape[0], rnn.hidden_size)
        c = torch.zeros_like(h)
        out = []
        for xt in seq:
            if isinstance(cell, nn.LSTMCell):
                h, c = cell(xt, (h, c))
            else:
                h = cell(xt, h)
            h.retain_grad()
            out.append(h)
        hs.append(out)
        seq = out
    nn.functional.cross_entropy(model.head(seq[-1]), y).backward()
    return [torch.stack([h.grad.norm() for h in layer]) for layer in hs]


@pytest.mark.parametrize("cell", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_weights_and_hidden_gradients_match_autograd(cell):
    torch.manual_seed(0)
    model = Seq(cell)
    x, y = torch.randn(4, 7, 3), torch.randint(0, 2, (4,))
    plain_out = model(x)
    model.zero_grad()
    nn.functional.cross_entropy(plain_out, y).backward()
    expected = {n: p.grad.norm().item() for n, p in model.named_parameters()}
    model.zero_grad()
    with probes.Probe(model) as probe:
        out = model(x)
        nn.functional.cross_entropy(out, y).backward()
    torch.testing.assert_close(out, plain_out)  # the unrolled recurrence computes the same thing
    assert probe.names == [
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.weight_ih_l1",
        "rnn.weight_hh_l1",
        "head",
    ]
    for s in probe.stats():
        key = s.name if "weight_" in s.name else s.name + ".weight"
        assert s.weight_grad_norm == pytest.approx(expected[key], rel=1e-5)
    assert probe.recurrent_names == ["rnn"]
    ref = _reference_hidden_grads(model, x, y)
    measured = [probe.hidden_grad_norms("rnn", stack=0), probe.hidden_grad_norms("rnn")]
    assert measured[1].shape == (7,)
    for got, want in zip(measured, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)
    # the last time step gets the most gradient: it is nearest the loss
    assert measured[1][-1] > measured[1][0]
    with pytest.raises(ValueError, match="recurrent module"):
        probe.hidden_grad_norms("head")
    with pytest.raises(ValueError, match="stack"):
        probe.hidden_grad_norms("rnn", stack=2)


def test_recurrent_time_major_and_hidden_grads_off():
    torch.manual_seed(0)
    model = Seq(nn.GRU, batch_first=False)
    x, y = torch.randn(6, 4, 3), torch.randint(0, 2, (4,))
    with probes.Probe(model) as probe:
        nn.functional.cross_entropy(model(x), y).backward()
    assert probe.hidden_grad_norms("rnn").shape == (6,)
    with probes.Probe(model, hidden_grads=False) as probe:
        nn.functional.cross_entropy(model(x), y).backward()
    assert probe.recurrent_names == [] and len(probe.names) == 5


def test_transformer_layer_in_forward_order_against_autograd():
    torch.manual_seed(0)
    enc = nn.Sequential(
        nn.Linear(4, 8), nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), nn.Flatten(), nn.Linear(40, 3)
    )
    x, y = torch.randn(2, 5, 4).transpose(0, 1).contiguous().transpose(0, 1), torch.tensor([0, 2])
    nn.functional.cross_entropy(enc(x), y).backward()
    expected = {n: p.grad.norm().item() for n, p in enc.named_parameters()}
    enc.zero_grad()
    stats = probes.measure(enc, x, y)
    names = [s.name for s in stats]
    assert names == ["0", "1.self_attn.in_proj_weight", "1.self_attn.out_proj", "1.linear1", "1.linear2", "3"]
    for s in stats:
        key = s.name if s.name.endswith("_weight") else s.name + ".weight"
        assert s.weight_grad_norm == pytest.approx(expected[key], rel=1e-5)


def test_conv_layers_against_autograd():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 2, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 6 * 6, 3),
    )
    x, y = torch.randn(5, 1, 8, 8), torch.randint(0, 3, (5,))
    zs = []

    def keep(module, inputs, z):  # returns None: the output stays as it is
        z.retain_grad()
        zs.append(z)

    hooks = [model[i].register_forward_hook(keep) for i in (0, 2, 5)]
    nn.functional.cross_entropy(model(x), y).backward()
    for h in hooks:
        h.remove()
    expected_w = [model[i].weight.grad.norm().item() for i in (0, 2, 5)]
    expected_z = [z.grad.pow(2).mean().sqrt().item() for z in zs]
    stats = probes.measure(model, x, y)
    assert [s.name for s in stats] == ["0", "2", "5"]
    assert [s.weight_grad_norm for s in stats] == pytest.approx(expected_w, rel=1e-5)
    assert [s.preact_grad_rms for s in stats] == pytest.approx(expected_z, rel=1e-5)
    assert stats[0].act_mean == pytest.approx(torch.tanh(zs[0]).mean().item(), rel=1e-5)
    assert [s.activation for s in stats] == ["tanh", "relu", None]


def test_parametrised_weights_report_the_weight_the_layer_multiplies_by():
    torch.manual_seed(0)
    model = nn.Sequential(
        parametrizations.weight_norm(nn.Linear(4, 6)),
        nn.Tanh(),
        parametrizations.spectral_norm(nn.Linear(6, 3)),
    )
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    w0, w2 = (model[i].weight.detach().requires_grad_() for i in (0, 2))
    z0 = nn.functional.linear(x, w0, model[0].bias)
    z0.retain_grad()
    out = nn.functional.linear(torch.tanh(z0), w2, model[2].bias)
    nn.functional.cross_entropy(out, y).backward()
    stats = probes.measure(model, x, y)
    assert [s.name for s in stats] == ["0", "2"]
    assert [s.weight_grad_norm for s in stats] == pytest.approx(
        [w0.grad.norm().item(), w2.grad.norm().item()], rel=1e-5
    )
    assert stats[0].preact_grad_rms == pytest.approx(z0.grad.pow(2).mean().sqrt().item(), rel=1e-5)


def test_frozen_weights_are_skipped_not_a_crash():
    model = models.mlp(3, 8, in_features=4, activation="tanh")
    model.hidden[0].linear.weight.requires_grad_(False)
    with probes.Probe(model) as probe:
        model(torch.randn(2, 4)).sum().backward()
    assert probe.names == ["hidden.1.linear", "hidden.2.linear", "head"]
    assert all(np.isfinite(probe.column("weight_grad_norm")))
    assert _hook_count(model) == 0


def test_a_module_used_twice_is_refused_by_name_and_hooks_go():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Linear(4, 4)

        def forward(self, x):
            return self.shared(torch.tanh(self.shared(x)))

    model = Twice()
    with pytest.raises(RuntimeError, match="'shared' ran twice in one forward pass"):
        with probes.Probe(model):
            model(torch.randn(2, 4))
    assert _hook_count(model) == 0
    model(torch.randn(2, 4))  # the model itself still works


def test_a_first_pass_that_raises_does_not_fix_the_order():
    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.a, self.b = nn.Linear(4, 2), nn.Linear(3, 4), nn.Linear(4, 4)
            self.fail = True

        def forward(self, x):
            h = self.a(x)
            if self.fail:
                self.fail = False
                raise RuntimeError("first call fails")
            return self.c(torch.tanh(self.b(h)))

    model = Flaky()
    with probes.Probe(model) as probe:
        with pytest.raises(RuntimeError, match="first call"):
            model(torch.randn(2, 3))
        model(torch.randn(2, 3)).sum().backward()
    assert probe.names == ["a", "b", "c"]


def test_nested_with_keeps_the_outer_hooks_until_the_outer_exit():
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=4, activation="tanh")
    probe = probes.Probe(model)
    with probe:
        with probe:
            pass
        model(torch.randn(3, 4)).sum().backward()  # after the inner exit: still recorded
        assert np.isfinite(probe.column("weight_grad_norm")).all()
    assert _hook_count(model) == 0


def test_hooks_on_outputs_do_not_outlive_the_with_block():
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=4, activation="tanh")
    x = torch.randn(3, 4)
    with probes.Probe(model) as probe:
        model(x).sum().backward()
        before = probe.column("preact_grad_rms")
        out = model(2 * x)  # forward inside, backward after the exit
    out.sum().backward()
    assert probe.column("preact_grad_rms") == before


def test_every_k_skips_passes_and_records_the_first():
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=4, activation="tanh")
    with probes.Probe(model, every=3) as probe:
        for scale in (1.0, 2.0, 3.0):
            model(scale * torch.randn(5, 4)).sum().backward()
            if scale == 1.0:
                first = probe.stats()
    assert probe.stats() == first  # passes 2 and 3 were not recorded


def test_functions_that_run_a_model_move_the_data_to_its_device(monkeypatch):
    """On a CPU-only machine: every function that runs a model on data must call
    gradflow.core.to_model_device (the bug class that broke Colab's GPU runtime)."""
    calls = []
    real = core.to_model_device

    def spy(model, *tensors):
        calls.append(type(model).__name__)
        return real(model, *tensors)

    for module in (probes, diagnose, train):
        monkeypatch.setattr(module, "to_model_device", spy)
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=4, activation="relu")
    x, y = torch.randn(10, 4), torch.randint(0, 10, (10,))
    checks = [
        lambda: probes.measure(model, x, y),
        lambda: probes.dead_fraction(model, x),
        lambda: probes.dead_fraction_per_batch(model, x, 5, n_batches=2),
        lambda: diagnose.activation_values(model, x),
        lambda: train.evaluate(model, x, y, nn.CrossEntropyLoss()),
    ]
    for run in checks:
        calls.clear()
        run()
        assert "MLP" in calls


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: probes.Probe("net"), TypeError, "model"),
        (lambda: probes.Probe(nn.Linear(2, 2), every=0), ValueError, "every"),
        (lambda: probes.Probe(nn.Linear(2, 2), every=1.5), TypeError, "every"),
        (lambda: probes.Probe(nn.Linear(2, 2), activations="yes"), TypeError, "activations"),
        (lambda: probes.Probe(nn.Linear(2, 2)).table(["nope"]), ValueError, "stats"),
        (lambda: probes.Probe(nn.Linear(2, 2)).table("act_mean"), TypeError, "stats"),
        (lambda: probes.measure(nn.Linear(2, 2), torch.zeros(0, 2), torch.zeros(0)), ValueError, "x"),
        (lambda: probes.measure(nn.Linear(2, 2), [[1.0, 2.0]], torch.zeros(1)), TypeError, "x"),
        (
            lambda: probes.measure(
                nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), loss_fn="mse"
            ),
            TypeError,
            "loss_fn",
        ),
        (
            lambda: probes.dead_fraction(models.mlp(1, 4, in_features=2), torch.zeros(3, 2), batch_size=0),
            ValueError,
            "batch_size",
        ),
        (
            lambda: probes.dead_fraction(models.mlp(1, 4, in_features=2), torch.zeros(3, 2), batch_size=-1),
            ValueError,
            "batch_size",
        ),
        (lambda: probes.dead_fraction(models.mlp(1, 4, in_features=2), torch.zeros(0, 2)), ValueError, "x"),
        (lambda: probes.dead_fraction(nn.Linear(2, 2), torch.zeros(3, 2)), ValueError, "activation"),
        (
            lambda: probes.dead_fraction_per_batch(
                models.mlp(1, 4, in_features=2), torch.zeros(3, 2), 2, seed=-1
            ),
            ValueError,
            "seed",
        ),
        (lambda: probes.update_ratios(nn.Linear(2, 2), {"other": torch.zeros(2, 2)}), ValueError, "other"),
        (lambda: probes.update_ratios(nn.Linear(2, 2), [1]), TypeError, "before"),
        (lambda: probes.snapshot(nn.ReLU()), ValueError, "no trainable weight"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_numbers_are_accepted():
    model = models.mlp(1, 4, in_features=2, activation="relu")
    x = torch.randn(6, 2)
    assert probes.dead_fraction(model, x, batch_size=np.int64(4)) == probes.dead_fraction(model, x)
    assert (
        len(probes.dead_fraction_per_batch(model, x, np.int32(3), n_batches=np.int64(2), seed=np.int64(1)))
        == 1
    )
    probes.Probe(model, every=np.int64(2))
