"""gradflow's sequence models (models.sequence_model, rnn, gru, lstm) and gradflow.recurrent,
against torch's own layers, autograd and analytic values."""

import math

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from gradflow import data, models, recurrent


def test_forget_bias_lands_in_the_forget_slice_of_bias_ih_only():
    torch.manual_seed(0)
    H = 5
    m = models.lstm(forget_bias=2.5, hidden_size=H)
    b_ih, b_hh = m.rnn.bias_ih_l0.detach(), m.rnn.bias_hh_l0.detach()
    assert torch.all(b_ih[H : 2 * H] == 2.5) and torch.all(b_hh[H : 2 * H] == 0.0)
    # the other gates keep PyTorch's default draw U[-1/sqrt(H), 1/sqrt(H)]
    others = torch.cat([b_ih[:H], b_ih[2 * H :], b_hh[:H], b_hh[2 * H :]])
    assert others.abs().max() <= 1 / math.sqrt(H) and others.abs().max() > 0


def test_forget_bias_is_the_forget_gate_behaviourally():
    # zero weights, input gate shut: c_1 = sigmoid(b_f) * c_0 exactly when the bias is in the
    # forget slice (a wrong slice would change the input, cell or output gate instead)
    H = 4
    m = models.lstm(forget_bias=1.7, hidden_size=H, input_size=3)
    with torch.no_grad():
        m.rnn.weight_ih_l0.zero_()
        m.rnn.weight_hh_l0.zero_()
        m.rnn.bias_ih_l0[:H] = -60.0  # input gate -> 0
    c0 = torch.full((1, 1, H), 2.0)
    _, (_, c1) = m.rnn(torch.zeros(1, 1, 3), (torch.zeros(1, 1, H), c0))
    assert torch.allclose(c1, 2.0 * torch.sigmoid(torch.tensor(1.7)).expand(1, 1, H), atol=1e-6)


def test_default_forget_bias_is_pytorch_default_and_validation():
    torch.manual_seed(1)
    m = models.lstm(hidden_size=8)
    total = (m.rnn.bias_ih_l0 + m.rnn.bias_hh_l0)[8:16].detach()
    assert total.abs().max() <= 2 / math.sqrt(8) and total.abs().max() > 0
    with pytest.raises(ValueError, match="forget_bias"):
        models.sequence_model("gru", forget_bias=1.0)
    with pytest.raises(TypeError, match="forget_bias"):
        models.lstm(forget_bias="1")
    with pytest.raises(ValueError, match="cell"):
        models.sequence_model("transformer")
    with pytest.raises(ValueError, match="init"):
        models.sequence_model("rnn_tanh", init="kaiming")
    with pytest.raises(ValueError, match="recurrent_gain"):
        models.rnn(recurrent_gain=0.0)
    with pytest.raises(ValueError, match="relu"):
        models.rnn(nonlinearity="tanh", irnn=True)
    with pytest.raises(ValueError, match="nonlinearity"):
        models.rnn(nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        models.gru(hidden_size=0)


def test_numpy_numbers_are_accepted():
    import numpy as np

    m = models.lstm(forget_bias=np.float32(1.5), hidden_size=np.int64(4), recurrent_gain=np.float64(0.5))
    assert m.rnn.hidden_size == 4 and torch.all(m.rnn.bias_ih_l0[4:8] == 1.5)
    with pytest.raises(TypeError, match="forget_bias"):
        models.lstm(forget_bias=float("nan"))


def test_irnn_identity_init_and_gain():
    torch.manual_seed(0)
    m = models.rnn(nonlinearity="relu", irnn=True, hidden_size=64, input_size=2)
    assert m.cell == "rnn_relu"
    assert torch.equal(m.rnn.weight_hh_l0.detach(), torch.eye(64))
    assert torch.all(m.rnn.bias_ih_l0 == 0) and torch.all(m.rnn.bias_hh_l0 == 0)
    assert m.rnn.weight_ih_l0.std().item() == pytest.approx(0.001, rel=0.25)
    g = models.rnn(nonlinearity="relu", irnn=True, hidden_size=4, recurrent_gain=0.9)
    assert torch.allclose(g.rnn.weight_hh_l0.detach(), 0.9 * torch.eye(4))


def test_orthogonal_init_is_orthogonal_per_gate_block():
    torch.manual_seed(0)
    H = 6
    m = models.gru(init="orthogonal", hidden_size=H)
    W = m.rnn.weight_hh_l0.detach()
    for g in range(3):
        block = W[g * H : (g + 1) * H]
        assert torch.allclose(block @ block.T, torch.eye(H), atol=1e-5)
    assert torch.all(m.rnn.bias_ih_l0 == 0)


def test_forward_shapes_and_last_step_readout():
    torch.manual_seed(0)
    m = models.gru(hidden_size=7, out_features=3)
    x = torch.randn(5, 9, 2)
    y, y_all = m(x), m.forward_all(x)
    assert y.shape == (5, 3) and y_all.shape == (5, 9, 3)
    assert torch.allclose(y, y_all[:, -1])
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(5, 2))


def test_gradient_vs_distance_matches_per_sample_autograd():
    torch.manual_seed(0)
    m = models.sequence_model("rnn_tanh", hidden_size=8)
    x, _ = data.adding_problem(3, 12, seed=0)
    ratio = recurrent.gradient_vs_distance(m, x)
    assert ratio.shape == (3, 12) and torch.all(ratio[:, -1] == 1)
    md = m.double()
    for i in range(3):
        xi = x[i : i + 1].double().requires_grad_(True)
        md(xi).sum().backward()
        n = xi.grad[0].norm(dim=-1)
        assert torch.allclose(ratio[i], n / n[-1], rtol=1e-10)


def test_gradient_map_entries_and_causality():
    torch.manual_seed(0)
    m = models.lstm(forget_bias=1.0, hidden_size=6)
    x, _ = data.adding_problem(2, 10, seed=1)
    grid = recurrent.gradient_map(m, x)
    assert grid.shape == (10, 10)
    assert torch.all(torch.triu(grid, diagonal=1) == 0) and torch.all(torch.diagonal(grid) > 0)
    md = m.double()
    xd = x.double().requires_grad_(True)
    md.forward_all(xd)[:, 6].sum().backward()
    assert torch.allclose(grid[6], xd.grad.norm(dim=-1).mean(dim=0), rtol=1e-10)


def _positive_relu_rnn(H=4, T=7):
    m = models.sequence_model("rnn_relu", hidden_size=H)
    with torch.no_grad():  # every pre-activation > 0: the ReLU RNN is linear
        m.rnn.weight_hh_l0.copy_(torch.rand(H, H) * 0.6 / H + 0.05)
        m.rnn.weight_ih_l0.uniform_(0.1, 0.5)
        m.rnn.bias_ih_l0.fill_(0.1)
        m.rnn.bias_hh_l0.fill_(0.1)
    return m, torch.rand(T, 2) + 0.1


def test_linear_rnn_jacobians_are_powers_of_w_hh():
    torch.manual_seed(0)
    m, x = _positive_relu_rnn()
    J = recurrent.state_jacobians(m, x)
    W = m.rnn.weight_hh_l0.detach().double()
    assert J.shape == (7, 4, 4)
    assert torch.allclose(J, W.expand(7, 4, 4), atol=1e-12)
    norms = recurrent.jacobian_product_norms(J)
    expected = [torch.linalg.matrix_norm(torch.linalg.matrix_power(W, k), ord=2).item() for k in range(8)]
    assert torch.allclose(norms, torch.tensor(expected, dtype=torch.float64), rtol=1e-10)


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_jacobian_product_equals_autograd_of_the_unrolled_net(cell):
    torch.manual_seed(0)
    H, T = 5, 6
    m = models.sequence_model(cell, hidden_size=H).double()
    x = torch.randn(T, 2, dtype=torch.float64)
    J = recurrent.state_jacobians(m, x)
    product = torch.eye(J.shape[1], dtype=torch.float64)
    for t in range(T):
        product = J[t] @ product  # ds_T/ds_0

    def unroll(s0):
        if cell == "lstm":
            _, (h, c) = m.rnn(x.unsqueeze(0), (s0[:H].view(1, 1, H), s0[H:].view(1, 1, H)))
            return torch.cat([h.view(H), c.view(H)])
        _, h = m.rnn(x.unsqueeze(0), s0.view(1, 1, H))
        return h.view(H)

    s0 = torch.zeros(J.shape[1], dtype=torch.float64)
    assert torch.allclose(product, torch.autograd.functional.jacobian(unroll, s0), atol=1e-12)


def test_lstm_cell_state_jacobian_block_is_the_forget_gate():
    # dc_t/dc_(t-1) = diag(f_t): with zero recurrent weights f_t = sigmoid(W_if x_t + b_f)
    torch.manual_seed(0)
    H = 3
    m = models.lstm(forget_bias=2.0, hidden_size=H).double()
    with torch.no_grad():
        m.rnn.weight_hh_l0.zero_()
    x = torch.randn(4, 2, dtype=torch.float64)
    J = recurrent.state_jacobians(m, x)
    f = torch.sigmoid(x @ m.rnn.weight_ih_l0[H : 2 * H].T.detach() + 2.0)  # (4, H)
    for t in range(4):
        assert torch.allclose(J[t][H:, H:], torch.diag(f[t]), atol=1e-12)


def test_hidden_gradient_norms_against_a_hand_unrolled_cell():
    torch.manual_seed(0)
    H, T = 6, 8
    m = models.sequence_model("rnn_tanh", hidden_size=H)
    x, y = data.adding_problem(4, T, seed=2)
    norms = recurrent.hidden_gradient_norms(m, x, y)
    r = m.rnn
    h = torch.zeros(4, H)
    hs = []
    for t in range(T):
        h = torch.tanh(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
        h.retain_grad()
        hs.append(h)
    nn.functional.mse_loss(m.readout(h), y).backward()
    expected = torch.stack([v.grad.norm() for v in hs]).double()
    assert torch.allclose(norms, expected, rtol=1e-5)
    assert norms.shape == (T,)


def test_helpers_validate_arguments():
    m = models.gru(hidden_size=4)
    with pytest.raises(TypeError, match="sequence model"):
        recurrent.gradient_vs_distance(nn.Linear(2, 1), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="shape"):
        recurrent.gradient_map(m, torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="one sequence"):
        recurrent.state_jacobians(m, torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="dtype"):
        recurrent.gradient_vs_distance(m, torch.zeros(1, 3, 2), dtype=torch.int64)
    with pytest.raises(ValueError, match="length"):
        recurrent.draw_gradient_distance(length=1)
    with pytest.raises(ValueError, match="cell"):
        recurrent.build("lstm2")
    with pytest.raises(TypeError, match="jacobians"):
        recurrent.jacobian_product_norms([[1.0]])
    with pytest.raises(ValueError, match="y must"):
        recurrent.hidden_gradient_norms(m, torch.zeros(3, 4, 2), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="loss_fn"):
        recurrent.hidden_gradient_norms(m, torch.zeros(3, 4, 2), torch.zeros(3, 1), loss_fn="mse")
    with pytest.raises(ValueError, match="seed"):
        recurrent.draw_gradient_distance(length=5, seed=-1)
    with pytest.raises(ValueError, match="hidden_size"):
        recurrent.draw_gradient_distance(length=5, hidden_size=1.5)
    with pytest.raises(ValueError, match="cell"):
        recurrent.gradient_distance_explorer(cell="rnn")
    with pytest.raises(ValueError, match="forget_bias"):
        recurrent.gradient_distance_explorer(forget_bias=9.0)


def test_draw_gradient_distance_and_map():
    import matplotlib.pyplot as plt

    axes = recurrent.draw_gradient_distance(length=12, cell="gru")
    assert len(axes) == 2 and axes[0].get_yscale() == "log"
    grid = torch.tril(torch.rand(5, 5)) + torch.eye(5)
    ax = recurrent.draw_map(grid)
    assert ax.get_xlabel() == "input step s"
    image = recurrent.draw_map(grid, top=10.0, floor=1e-4).images[0]
    assert image.get_clim() == pytest.approx((-3.0, 1.0))  # log10(10 * 1e-4) .. log10(10)
    with pytest.raises(ValueError, match="top"):
        recurrent.draw_map(grid, top=0.0)
    with pytest.raises(ValueError, match="floor"):
        recurrent.draw_map(grid, floor=2.0)
    plt.close("all")


def test_explorer_builds_its_widget():
    from unittest import mock

    import matplotlib.pyplot as plt

    with mock.patch("IPython.display.display") as shown:
        assert recurrent.gradient_distance_explorer(length=10, cell="gru") is None
    widget = shown.call_args.args[0]
    names = {child.description for child in widget.children if hasattr(child, "description")}
    assert {"length T", "cell", "forget bias"} <= names
    # the forget bias acts on the LSTM only, so it is moved before the cell drop-down
    order = [child.description for child in widget.children if hasattr(child, "description")]
    assert order.index("forget bias") < order.index("cell")
    plt.close("all")
