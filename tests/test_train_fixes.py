"""gradflow.train (issue 10, items 5 and 6): an overflowing gradient norm is "exploding", the
locating re-run leaves BatchNorm alone, on_nonfinite="record" evaluates the last finite state,
and every bad argument is named."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import gradflow
from gradflow import data, models, train


class Scale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return self.c * x


@pytest.fixture(scope="module")
def digits():
    return data.digits(device="cpu")


def _positive(ds):
    return data.Dataset(ds.X_train.abs() + 1, ds.y_train, ds.X_test.abs() + 1, ds.y_test)


def _overflowing():
    """Finite loss, finite gradient entries (~3e36), a gradient norm beyond float32's 3.4e38."""
    lin = nn.Linear(64, 10, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1e-37)
    return nn.Sequential(lin, Scale(1e37))


def test_an_overflowing_norm_of_a_finite_gradient_is_reported_as_exploding(digits):
    with pytest.raises(
        train.NonFiniteError,
        match=r"step 1: exploding gradient in layer 0: every "
        r"entry is finite .* overflows float32",
    ):
        train.fit(_overflowing(), _positive(digits), steps=3, device="cpu")


def test_a_nan_gradient_is_still_non_finite(digits):
    gradflow.set_seed(0)
    model = models.mlp(6, 64, activation="relu", init="normal", std=3.0)
    with pytest.raises(train.NonFiniteError, match=r"step \d+: "):
        train.fit(model, digits, steps=50, lr=10.0, device="cpu")


def test_locating_the_nonfinite_layer_leaves_batchnorm_statistics_alone(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 10), nn.BatchNorm1d(10), Scale(math.inf))
    one_forward = copy.deepcopy(model)
    n = len(digits.X_train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    one_forward(digits.X_train[order])  # what the failing step's own forward does to the stats
    with pytest.raises(train.NonFiniteError, match=r"step 1: .* at 2 \(output has"):
        train.fit(model, digits, steps=2, batch_size=n, device="cpu")
    torch.testing.assert_close(model[1].running_mean, one_forward[1].running_mean)
    torch.testing.assert_close(model[1].running_var, one_forward[1].running_var)
    assert model[1].num_batches_tracked.item() == 1


def test_record_evaluates_the_last_finite_state(digits):
    gradflow.set_seed(0)
    model = models.mlp(6, 64, activation="relu", init="normal", std=3.0)
    h = train.fit(model, digits, steps=50, lr=10.0, on_nonfinite="record", device="cpu", eval_every=1000)
    assert h.diverged and len(h.loss) < 50
    assert h.test_acc and 0.0 <= h.test_acc[-1] <= 1.0 and math.isfinite(h.test_loss[-1])
    assert h.eval_step[-1] <= len(h.loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    h = train.fit(_overflowing(), _positive(digits), steps=3, on_nonfinite="record", device="cpu")
    assert h.eval_step == [0] and len(h.test_acc) == 1  # the state before the failing step


def test_fit_accepts_numpy_numbers(digits):
    gradflow.set_seed(0)
    model = models.mlp(1, 8)
    h = train.fit(
        model,
        digits,
        steps=np.int64(3),
        lr=np.float32(0.1),
        batch_size=np.int32(16),
        eval_every=np.int64(3),
        seed=np.int64(1),
        clip_norm=np.float64(1.0),
        device="cpu",
    )
    assert h.eval_step == [3]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 5000}, ValueError, "batch_size"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"eval_every": 0}, ValueError, "eval_every"),
        ({"optimizer": "adam", "momentum": 0.9}, ValueError, "momentum"),
        ({"momentum": -0.1}, ValueError, "momentum"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"lr": math.nan}, ValueError, "lr"),
        ({"lr": math.inf}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"steps": 1.5}, TypeError, "steps"),
        ({"steps": True}, TypeError, "steps"),
        ({"clip_norm": math.nan}, ValueError, "clip_norm"),
        ({"clip_value": 0}, ValueError, "clip_value"),
        ({"seed": -1}, ValueError, "seed"),
        ({"loss": 5}, TypeError, "loss"),
        ({"device": "gpu0"}, ValueError, "device"),
        ({"device": 3}, TypeError, "device"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"on_nonfinite": "ignore"}, ValueError, "on_nonfinite"),
    ],
)
def test_fit_names_the_bad_argument(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        train.fit(models.mlp(1, 8), digits, steps=1, **{"device": "cpu", **kwargs})


def test_fit_rejects_bad_models_and_data(digits):
    with pytest.raises(TypeError, match="model"):
        train.fit("net", digits)
    with pytest.raises(TypeError, match="data"):
        train.fit(models.mlp(1, 8), (digits.X_train, digits.y_train))
    # an empty split is refused when the Dataset is built, and again by fit if one slips through
    with pytest.raises(ValueError, match="X_train"):
        data.Dataset(digits.X_train[:0], digits.y_train[:0], digits.X_test, digits.y_test)
    with pytest.raises(ValueError, match="X_test"):
        data.Dataset(digits.X_train, digits.y_train, digits.X_test[:0], digits.y_test[:0])
    empty = data.Dataset(digits.X_train, digits.y_train, digits.X_test, digits.y_test)
    empty.X_train, empty.y_train = digits.X_train[:0], digits.y_train[:0]
    with pytest.raises(ValueError, match="X_train"):
        train.fit(models.mlp(1, 8), empty, device="cpu")


def test_evaluate_names_the_bad_argument(digits):
    loss = nn.CrossEntropyLoss()
    model = models.mlp(1, 8)
    with pytest.raises(ValueError, match="X"):
        train.evaluate(model, digits.X_test[:0], digits.y_test[:0], loss)
    with pytest.raises(ValueError, match="same length"):
        train.evaluate(model, digits.X_test, digits.y_test[:5], loss)
    with pytest.raises(TypeError, match="loss_fn"):
        train.evaluate(model, digits.X_test, digits.y_test, "mse")
    with pytest.raises(ValueError, match="batch_size"):
        train.evaluate(model, digits.X_test, digits.y_test, loss, batch_size=0)
    assert train.evaluate(model, digits.X_test, digits.y_test, loss, batch_size=np.int64(7)) == pytest.approx(
        train.evaluate(model, digits.X_test, digits.y_test, loss)
    )
