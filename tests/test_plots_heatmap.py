"""gradflow.plots.log_heatmap: one colour convention for every heat map of the book."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from gradflow import plots


def test_ratio_is_diverging_centred_blue_small_red_large():
    values = np.array([[-3.0, 0.0], [1.0, 2.0]])
    mesh = plots.log_heatmap(values, kind="ratio", label="gradient ratio")
    assert mesh.get_cmap().name == "RdBu_r"
    assert mesh.norm.vmin == -3.0 and mesh.norm.vmax == 3.0  # symmetric: 0 is the centre
    cmap = mesh.get_cmap()
    low, mid, high = cmap(mesh.norm(-3.0)), cmap(mesh.norm(0.0)), cmap(mesh.norm(3.0))
    assert low[2] > low[0]  # blue for a ratio below 1 (vanishing)
    assert high[0] > high[2]  # red above 1 (exploding)
    assert min(mid[:3]) > 0.9  # near white at a ratio of 1
    cbar = mesh.colorbar
    assert "log10 gradient ratio" in cbar.ax.get_ylabel()
    plt.close("all")


def test_ratio_limit_clips_and_says_so():
    mesh = plots.log_heatmap(np.array([[-20.0, 1.0]]), kind="ratio", limit=8, label="r")
    assert mesh.norm.vmin == -8 and mesh.norm.vmax == 8
    assert mesh.get_array().min() == -8
    assert "clipped" in mesh.colorbar.ax.get_ylabel()
    plt.close("all")


def test_magnitude_is_viridis_with_data_range_and_labelled_ticks():
    _fig, ax = plt.subplots()
    mesh = plots.log_heatmap(
        np.array([[-2.0, -1.0, 0.5]]),
        kind="magnitude",
        x=["a", "b", "c"],
        y=["row"],
        ax=ax,
        label="|g|",
        annotate=[["x", "y", "z"]],
    )
    assert mesh.get_cmap().name == "viridis"
    assert (mesh.norm.vmin, mesh.norm.vmax) == (-2.0, 0.5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.texts] == ["x", "y", "z"]
    plt.close("all")


def test_numeric_coordinates_and_no_colorbar():
    mesh = plots.log_heatmap(np.zeros((2, 3)), x=[0.5, 1.0, 1.5], y=[2, 5], colorbar=False)
    assert mesh.colorbar is None
    plt.close("all")


def test_validates_arguments():
    with pytest.raises(ValueError, match="kind"):
        plots.log_heatmap(np.zeros((2, 2)), kind="log")
    with pytest.raises(ValueError, match="2-D"):
        plots.log_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="limit"):
        plots.log_heatmap(np.zeros((2, 2)), limit=0)
    with pytest.raises(ValueError, match="x needs 2"):
        plots.log_heatmap(np.zeros((2, 2)), x=[1, 2, 3])
    with pytest.raises(ValueError, match="annotate"):
        plots.log_heatmap(np.zeros((2, 2)), annotate=[["a"]])
    plt.close("all")


def test_roundoff_floor_and_spectra_cut_below_it():
    import torch

    sv = torch.tensor([2.0, 1.0, 1e-3, 1e-17], dtype=torch.float64)
    floor = plots.roundoff_floor(sv)
    assert floor == pytest.approx(4 * torch.finfo(torch.float64).eps * 2.0)
    assert plots.roundoff_floor(sv.float()) == pytest.approx(4 * torch.finfo(torch.float32).eps * 2.0)
    ax = plots.singular_value_spectra({"a": sv})
    data_line = ax.get_lines()[0]
    assert list(data_line.get_ydata()) == [2.0, 1.0, 1e-3]  # 1e-17 is below the floor: cut
    assert ax.get_lines()[1].get_ydata()[0] == pytest.approx(floor)
    with pytest.raises(ValueError, match="1-D"):
        plots.roundoff_floor(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least one"):
        plots.singular_value_spectra({})
    plt.close("all")
