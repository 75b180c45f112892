"""gradflow.core and gradflow.activations against analytic values and autograd."""

import pytest
import torch

import gradflow
from gradflow import activations


def test_check_prints_tick_and_raises_cross(capsys):
    gradflow.check(1 < 2, "one is less than two")
    assert capsys.readouterr().out == "✓ one is less than two\n"
    with pytest.raises(AssertionError, match="✗ two is less than one"):
        gradflow.check(2 < 1, "two is less than one")


def test_check_refuses_non_bools():
    with pytest.raises(TypeError, match="needs a bool"):
        gradflow.check(0.5, "a float is not a claim")
    with pytest.raises(TypeError, match="single truth value"):
        gradflow.check(torch.tensor([True, False]), "two claims")
    gradflow.check(torch.tensor(True), "a one-element tensor is fine")


def test_set_seed_reproduces_and_validates():
    gradflow.set_seed(3)
    a = torch.randn(5)
    gradflow.set_seed(3)
    assert torch.equal(a, torch.randn(5))
    assert torch.get_num_threads() == 1
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            gradflow.set_seed(bad)


@pytest.mark.parametrize("name", activations.NAMES)
def test_derivative_matches_autograd(name):
    z = torch.linspace(-6, 6, 1001, dtype=torch.float64, requires_grad=True)
    module = activations.get(name).double()
    (grad,) = torch.autograd.grad(module(z).sum(), z)
    z0 = z.detach()
    mask = z0.abs() > 1e-9  # the kink of ReLU-like functions at 0 is a convention
    assert torch.allclose(activations.derivative(name, z0)[mask], grad[mask], atol=1e-10)


@pytest.mark.parametrize("name", activations.NAMES)
def test_max_derivative_is_the_maximum(name):
    z = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    assert activations.derivative(name, z).max().item() == pytest.approx(
        activations.MAX_DERIVATIVE[name], abs=1e-4
    )


def test_sigmoid_derivative_facts():
    d = lambda v: activations.derivative("sigmoid", torch.tensor(v, dtype=torch.float64)).item()
    assert d(0.0) == 0.25
    assert d(5.0) == pytest.approx(0.0066480566707901, rel=1e-12)
    assert d(-5.0) == pytest.approx(d(5.0), rel=1e-12)
    # tanh(x) = 2 sigma(2x) - 1, hence tanh'(x) = 4 sigma'(2x)
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    assert torch.allclose(activations.derivative("tanh", x), 4 * activations.derivative("sigmoid", 2 * x))


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError) as e:
        activations.get("swish2")
    assert "swish2" in str(e.value) and "sigmoid" in str(e.value) and "gelu" in str(e.value)


def test_saturation_fraction():
    z = torch.tensor([-10.0, -1.0, 0.0, 1.0, 10.0])
    assert activations.saturation("sigmoid", z) == pytest.approx(0.4)
    assert activations.saturation("relu", z) == pytest.approx(0.6)
    assert activations.saturation("linear", z) == 0.0


def test_name_of_recognises_modules():
    for name in activations.NAMES:
        if name != "linear":
            assert activations.name_of(activations.get(name)) == name
    assert activations.name_of(torch.nn.Linear(2, 2)) is None
