"""A hostile table of bad arguments for the public functions of gradflow's building blocks
(core, activations, init, models.mlp, data, jacobians, propagation, plots, widgets).

Each bad call must fail at once with ValueError or TypeError whose message names the argument; each
NumPy number must be accepted wherever a Python one is (sweeps hand over np.int64 and np.float64).
probes, train and diagnose have their own tables next to their tests.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradflow import activations, core, data, init, jacobians, models, plots, propagation, widgets

NAN, INF = float("nan"), float("inf")
W = torch.empty(4, 3)
MATS = jacobians.random_matrices(2, 3)

BAD = {
    # core
    "set_seed float": (lambda: core.set_seed(1.5), "seed"),
    "set_seed negative": (lambda: core.set_seed(-1), "seed"),
    "set_seed bool": (lambda: core.set_seed(True), "seed"),
    "set_seed threads 0": (lambda: core.set_seed(0, threads=0), "threads"),
    "set_seed threads float": (lambda: core.set_seed(0, threads=1.5), "threads"),
    "check message not str": (lambda: core.check(True, 3), "message"),
    "check tensor of many": (lambda: core.check(torch.ones(2) > 0, "x"), "single truth value"),
    "model_device not a module": (lambda: core.model_device("cpu"), "model"),
    "to_model_device not a tensor": (lambda: core.to_model_device(nn.Linear(2, 2), [1.0]), "tensors"),
    # activations
    "get unknown": (lambda: activations.get("relu6"), "activation"),
    "get not a str": (lambda: activations.get(nn.ReLU), "activation"),
    "derivative not a tensor": (lambda: activations.derivative("relu", [0.0, 1.0]), "z"),
    "name_of not a module": (lambda: activations.name_of("relu"), "module"),
    "saturation threshold 0": (lambda: activations.saturation("tanh", torch.ones(3), 0.0), "threshold"),
    "saturation threshold > 1": (lambda: activations.saturation("tanh", torch.ones(3), 1.5), "threshold"),
    "saturation threshold nan": (lambda: activations.saturation("tanh", torch.ones(3), NAN), "threshold"),
    "saturation empty z": (lambda: activations.saturation("tanh", torch.ones(0)), "z"),
    # init
    "resolve not a str": (lambda: init.resolve(None), "scheme"),
    "resolve unknown": (lambda: init.resolve("glorot_uniform"), "scheme"),
    "fans not a tensor": (lambda: init.fans([[1.0]]), "weight"),
    "fans 1-D": (lambda: init.fans(torch.ones(3)), "weight"),
    "init_weight_ 1-D": (lambda: init.init_weight_(torch.ones(3), "xavier"), "weight"),
    "init_weight_ gain 0": (lambda: init.init_weight_(W, "xavier", gain=0), "gain"),
    "init_weight_ gain inf": (lambda: init.init_weight_(W, "xavier", gain=INF), "gain"),
    "init_weight_ gain nan": (lambda: init.init_weight_(W, "xavier", gain=NAN), "gain"),
    "init_weight_ gain str": (lambda: init.init_weight_(W, "xavier", gain="2"), "gain"),
    "init_weight_ typo option": (lambda: init.init_weight_(W, "normal", stdd=1.0), "stdd"),
    "init_weight_ option of another scheme": (lambda: init.init_weight_(W, "xavier", std=1.0), "std"),
    "init_weight_ std negative": (lambda: init.init_weight_(W, "normal", std=-1.0), "std"),
    "init_weight_ std nan": (lambda: init.init_weight_(W, "normal", std=NAN), "std"),
    "init_weight_ std inf": (lambda: init.init_weight_(W, "normal", std=INF), "std"),
    "init_weight_ value nan": (lambda: init.init_weight_(W, "constant", value=NAN), "value"),
    "init_weight_ mode typo": (lambda: init.init_weight_(W, "he", mode="fanin"), "mode"),
    "apply_init not a module": (lambda: init.apply_init("net", "he"), "model"),
    "apply_init bias nan": (lambda: init.apply_init(nn.Linear(2, 2), "he", bias=NAN), "bias"),
    "apply_init no layer": (lambda: init.apply_init(nn.ReLU(), "he"), "Linear"),
    "weighted_layers not a module": (lambda: init.weighted_layers([nn.Linear(2, 2)]), "model"),
    # models.mlp
    "mlp depth 0": (lambda: models.mlp(0, 8), "depth"),
    "mlp depth float": (lambda: models.mlp(2.0, 8), "depth"),
    "mlp width bool": (lambda: models.mlp(2, True), "width"),
    "mlp in_features 0": (lambda: models.mlp(2, 8, in_features=0), "in_features"),
    "mlp gain inf": (lambda: models.mlp(2, 8, init="he", gain=INF), "gain"),
    "mlp gain negative": (lambda: models.mlp(2, 8, init="he", gain=-1.0), "gain"),
    "mlp bias_init nan": (lambda: models.mlp(2, 8, bias_init=NAN), "bias_init"),
    "mlp bias_init str": (lambda: models.mlp(2, 8, bias_init="0"), "bias_init"),
    "mlp residual str": (lambda: models.mlp(2, 8, residual="yes"), "residual"),
    "mlp residual int": (lambda: models.mlp(2, 8, residual=1), "residual"),
    "mlp bias int": (lambda: models.mlp(2, 8, bias=1), "bias"),
    "mlp unknown init option": (lambda: models.mlp(2, 8, init="normal", stdd=1.0), "stdd"),
    "mlp unknown activation": (lambda: models.mlp(2, 8, activation="swish"), "activation"),
    "mlp norm not a str": (lambda: models.mlp(2, 8, norm=nn.LayerNorm), "norm"),
    "mlp norm unknown": (lambda: models.mlp(2, 8, norm="weight"), "norm"),
    # data
    "digits test_size 0": (lambda: data.digits(test_size=0, device="cpu"), "test_size"),
    "digits test_size too large": (lambda: data.digits(test_size=1795, device="cpu"), "test_size"),
    "digits test_size float": (lambda: data.digits(test_size=0.25, device="cpu"), "test_size"),
    "digits split_seed negative": (lambda: data.digits(split_seed=-1, device="cpu"), "split_seed"),
    "digits device typo": (lambda: data.digits(device="gpu"), "device"),
    "Dataset empty train": (
        lambda: data.Dataset(torch.ones(0, 3), torch.ones(0), torch.ones(2, 3), torch.ones(2)),
        "X_train",
    ),
    "Dataset empty test": (
        lambda: data.Dataset(torch.ones(2, 3), torch.ones(2), torch.ones(0, 3), torch.ones(0)),
        "X_test",
    ),
    "Dataset length mismatch": (
        lambda: data.Dataset(torch.ones(3, 3), torch.ones(2), torch.ones(2, 3), torch.ones(2)),
        "y_train",
    ),
    "Dataset width mismatch": (
        lambda: data.Dataset(torch.ones(2, 3), torch.ones(2), torch.ones(2, 4), torch.ones(2)),
        "same shape",
    ),
    "Dataset not tensors": (lambda: data.Dataset([[1.0]], [0], [[1.0]], [0]), "X_train"),
    "Dataset.to typo": (lambda: data.teacher_regression(8).to("gpu0"), "device"),
    "random_classification n 0": (lambda: data.random_classification(0), "n"),
    "random_classification classes 1": (lambda: data.random_classification(4, classes=1), "classes"),
    "random_classification float n": (lambda: data.random_classification(4.0), "n"),
    "teacher_regression noise negative": (lambda: data.teacher_regression(8, noise=-0.1), "noise"),
    "teacher_regression noise nan": (lambda: data.teacher_regression(8, noise=NAN), "noise"),
    "teacher_regression empty test": (
        lambda: data.teacher_regression(8, test_fraction=0.01),
        "test_fraction",
    ),
    "teacher_regression fraction 1": (lambda: data.teacher_regression(8, test_fraction=1.0), "test_fraction"),
    "teacher_regression hidden 0": (lambda: data.teacher_regression(8, hidden=0), "hidden"),
    "adding_problem length 1": (lambda: data.adding_problem(4, 1), "length"),
    "adding_problem n float": (lambda: data.adding_problem(4.5, 10), "n"),
    # jacobians
    "random_matrices depth 0": (lambda: jacobians.random_matrices(0, 3), "depth"),
    "random_matrices scale nan": (lambda: jacobians.random_matrices(2, 3, scale=NAN), "scale"),
    "random_matrices scale negative": (lambda: jacobians.random_matrices(2, 3, scale=-1.0), "scale"),
    "random_matrices kind typo": (lambda: jacobians.random_matrices(2, 3, kind="haar"), "kind"),
    "product empty": (lambda: jacobians.product([]), "matrices"),
    "product shapes do not chain": (
        lambda: jacobians.product([torch.ones(2, 3), torch.ones(2, 3)]),
        "matrices[1]",
    ),
    "product 1-D": (lambda: jacobians.product([torch.ones(3)]), "matrices[0]"),
    "log10_norm_growth empty": (lambda: jacobians.log10_norm_growth([]), "matrices"),
    "input_output_jacobian batch": (
        lambda: jacobians.input_output_jacobian(nn.Linear(3, 2), torch.ones(2, 3)),
        "x",
    ),
    "input_output_jacobian not a module": (
        lambda: jacobians.input_output_jacobian(None, torch.ones(3)),
        "model",
    ),
    # propagation
    "gaussian_expectation q nan": (lambda: propagation.gaussian_expectation(np.square, NAN), "q"),
    "gaussian_expectation f not callable": (lambda: propagation.gaussian_expectation(2.0, 1.0), "f"),
    "next_q sigma_w 0": (lambda: propagation.next_q("tanh", 0.0, 1.0), "sigma_w"),
    "next_q sigma_b negative": (lambda: propagation.next_q("tanh", 1.0, 1.0, -1.0), "sigma_b"),
    "chi q negative": (lambda: propagation.chi("tanh", 1.0, -1.0), "q"),
    "chi unknown activation": (lambda: propagation.chi("softplus", 1.0, 1.0), "activation"),
    "fixed_point_q iterations 0": (
        lambda: propagation.fixed_point_q("tanh", 1.0, iterations=0),
        "iterations",
    ),
    "fixed_point_q q0 0": (lambda: propagation.fixed_point_q("tanh", 1.0, q0=0.0), "q0"),
    "critical_sigma_w tol 0 (used to hang)": (lambda: propagation.critical_sigma_w("tanh", tol=0), "tol"),
    "critical_sigma_w tol nan": (lambda: propagation.critical_sigma_w("tanh", tol=NAN), "tol"),
    "critical_sigma_w low > high": (
        lambda: propagation.critical_sigma_w("tanh", low=3.0, high=1.0),
        "low < high",
    ),
    "critical_sigma_w bracket without a root": (
        lambda: propagation.critical_sigma_w("relu", low=0.3, high=0.5),
        "change sign",
    ),
    "forward_rms not an MLP": (lambda: propagation.forward_rms(nn.Linear(2, 2), torch.ones(1, 2)), "MLP"),
    "gradient_profile depth 0": (lambda: propagation.gradient_profile(0, "relu", "he"), "depth"),
    "gradient_profile batch 0": (lambda: propagation.gradient_profile(2, "relu", "he", batch=0), "batch"),
    "gradient_ratio depth 1": (lambda: propagation.gradient_ratio(1, "relu", 1.4), "depth"),
    "gradient_ratio sigma_w inf": (lambda: propagation.gradient_ratio(3, "relu", INF), "sigma_w"),
    "gradient_ratio_grid empty": (lambda: propagation.gradient_ratio_grid("relu", [], [1.0]), "non-empty"),
    "gradient_ratio_grid depth 1": (lambda: propagation.gradient_ratio_grid("relu", [1], [1.0]), "depths[0]"),
    "predicted_log10_ratio depth 0": (
        lambda: propagation.predicted_log10_ratio("tanh", 1.0, [0]),
        "depths[0]",
    ),
    "draw_signal_profile gain 0": (lambda: propagation.draw_signal_profile(gain=0.0), "gain"),
    # plots
    "layer_profile empty": (lambda: plots.layer_profile({}), "series"),
    "layer_profile a list": (lambda: plots.layer_profile([1.0, 2.0]), "series"),
    "curves unequal": (lambda: plots.curves({"a": ([1, 2], [1.0])}), "series['a']"),
    "grid 0 columns": (lambda: plots.grid(0), "ncols"),
    "grid negative width": (lambda: plots.grid(1, width=-1.0), "width"),
    "activation_histograms bins 0": (
        lambda: plots.activation_histograms({"a": [np.ones(3)]}, bins=0),
        "bins",
    ),
    "activation_curves a str": (lambda: plots.activation_curves("relu"), "names"),
    "activation_curves unknown": (lambda: plots.activation_curves(["relu", "mish"]), "activation"),
    "activation_curves points 1": (lambda: plots.activation_curves(["relu"], points=1), "points"),
    # widgets
    "explore draw not callable": (lambda: widgets.explore("draw"), "draw"),
    "draw_unit_slopes std 0": (lambda: widgets.draw_unit_slopes(std=0.0), "std"),
    "draw_unit_slopes mean nan": (lambda: widgets.draw_unit_slopes(mean=NAN), "mean"),
    "draw_unit_slopes batch float": (lambda: widgets.draw_unit_slopes(batch_size=64.0), "batch_size"),
    "draw_unit_slopes unknown activation": (lambda: widgets.draw_unit_slopes("mish"), "activation"),
    "draw_gradient_flow depth 0": (lambda: widgets.draw_gradient_flow(depth=0), "depth"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_argument_fails_fast_and_names_it(name):
    call, named = BAD[name]
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert named in str(info.value), f"{name}: the message {str(info.value)!r} does not name {named!r}"


def test_a_type_error_is_also_a_value_error():
    # callers that catch ValueError for every bad argument keep working
    with pytest.raises(ValueError):
        models.mlp(2.0, 8)
    with pytest.raises(TypeError):
        models.mlp(2.0, 8)


def test_numpy_numbers_are_accepted_where_python_ones_are():
    net = models.mlp(
        np.int64(3),
        np.int32(8),
        init="he",
        gain=np.float64(1.0),
        bias_init=np.float32(0.0),
        residual=np.bool_(True),
    )
    assert len(net.hidden) == 3 and net.hidden[1].linear.out_features == 8
    assert isinstance(len(net.hidden), int)
    core.set_seed(np.int64(3), threads=np.int64(1))
    x, y = data.random_classification(np.int64(5), np.int64(4), np.int64(3), seed=np.int64(1))
    assert x.shape == (5, 4) and int(y.max()) < 3
    assert data.adding_problem(np.int64(2), np.int64(6))[0].shape == (2, 6, 2)
    assert len(jacobians.random_matrices(np.int64(2), np.int64(3), scale=np.float32(0.5))) == 2
    assert math.isclose(propagation.chi("relu", np.float64(math.sqrt(2)), np.float64(1.0)), 1.0, rel_tol=1e-9)
    assert propagation.predicted_log10_ratio("relu", math.sqrt(2), np.array([2, 3])).shape == (2,)
    w = init.init_weight_(torch.empty(4, 3), "normal", std=np.float64(0.5))
    assert 0.1 < w.std().item() < 2
    assert init.init_weight_(torch.empty(4, 3), "constant", value=np.float32(0.25)).eq(0.25).all()
    assert activations.saturation("tanh", torch.zeros(4), np.float64(0.05)) == 0.0


def test_gain_multiplies_every_scheme_instead_of_being_ignored():
    torch.manual_seed(0)
    assert init.init_weight_(torch.empty(3, 3), "constant", value=0.5, gain=2.0).eq(1.0).all()
    big = init.init_weight_(torch.empty(500, 500), "normal", std=0.1, gain=3.0).std().item()
    assert abs(big / 0.3 - 1) < 0.01
    bound = init.init_weight_(torch.empty(50, 400), "default", gain=2.0).abs().max().item()
    assert 0.95 * 2 / 20 < bound <= 2 / 20


def test_critical_sigma_w_still_finds_the_edge_of_chaos():
    assert abs(propagation.critical_sigma_w("relu") - math.sqrt(2)) < 1e-3


def test_input_output_jacobian_moves_the_input_to_the_model():
    # a float64 model given a float64 input on the model's device gives the weight matrix back
    lin = nn.Linear(3, 2).double()
    J = jacobians.input_output_jacobian(lin, torch.ones(3, dtype=torch.float64))
    assert torch.allclose(J, lin.weight)
