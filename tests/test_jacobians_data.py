"""gradflow.jacobians against exact products; synthetic data sets' contracts."""

import pytest
import torch

from gradflow import data, jacobians, models


def test_orthogonal_products_keep_every_singular_value():
    mats = jacobians.random_matrices(20, 32, scale=1.1, kind="orthogonal", seed=1)
    sv = torch.linalg.svdvals(jacobians.product(mats))
    assert torch.allclose(sv, torch.full_like(sv, 1.1**20), rtol=1e-9)


def test_norm_growth_is_the_product_applied_to_a_vector():
    mats = jacobians.random_matrices(5, 8, scale=0.7, seed=2)
    growth = jacobians.log10_norm_growth(mats, seed=3)
    g = torch.Generator().manual_seed(3)
    v = torch.randn(8, generator=g, dtype=torch.float64)
    expected = torch.log10((jacobians.product(mats) @ v).norm() / v.norm())
    assert growth[-1].item() == pytest.approx(expected.item(), rel=1e-12)


def test_input_output_jacobian_of_a_linear_net_is_the_weight_product():
    model = models.mlp(3, 6, in_features=5, out_features=4, activation="linear").double()
    J = jacobians.input_output_jacobian(model, torch.randn(5, dtype=torch.float64))
    W = [model.hidden[i].linear.weight for i in range(3)] + [model.head.weight]
    assert torch.allclose(J, jacobians.product(W).detach())


def test_matrix_arguments_are_validated():
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        jacobians.random_matrices(0, 4)
    with pytest.raises(ValueError, match="orthogonal"):
        jacobians.random_matrices(2, 4, kind="unitary")


def test_synthetic_tasks():
    x, y = data.adding_problem(100, 20, seed=0)
    assert x.shape == (100, 20, 2) and y.shape == (100, 1)
    assert torch.all(x[..., 1].sum(1) == 2)
    assert torch.allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(1))
    ds = data.teacher_regression(100, 8, seed=0)
    assert ds.X_train.shape == (75, 8) and ds.y_test.shape == (25, 1)
    with pytest.raises(ValueError):
        data.random_classification(4, 8, classes=1)


def test_gradient_profile_uses_the_schemes_own_gain_by_default():
    from gradflow import widgets

    he = widgets.gradient_profile(6, "relu", "kaiming_normal", seed=0)
    explicit = widgets.gradient_profile(6, "relu", "kaiming_normal", 2**0.5, seed=0)
    assert he == explicit  # not LeCun's gain 1
