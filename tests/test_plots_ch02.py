"""gradflow.plots.activation_histograms."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from gradflow import plots


def test_one_panel_per_layer_with_densities():
    before = [torch.rand(100, 4), torch.rand(100, 4)]
    after = [np.zeros((100, 4)) + 0.1, np.ones(400) * 0.9]
    axes = plots.activation_histograms({"init": before, "trained": after}, bins=10, value_range=(0.0, 1.0))
    assert len(axes) == 2
    assert axes[0].get_title() == "layer 1" and axes[1].get_title() == "layer 2"
    for ax in axes:
        assert len(ax.patches) == 2  # one filled histogram per label
    # densities: 400 values in one bin of width 0.1 make a bar of height 10
    assert axes[1].get_ylim()[1] >= 10
    plt.close("all")


def test_draws_on_given_axes_and_validates():
    _fig, axes = plt.subplots(1, 3)
    out = plots.activation_histograms({"a": [np.arange(5)] * 3}, axes=axes)
    assert list(out) == list(axes)
    with pytest.raises(ValueError, match="same, non-zero number of layers"):
        plots.activation_histograms({"a": [np.arange(3)], "b": [np.arange(3)] * 2})
    with pytest.raises(ValueError, match="at least one label"):
        plots.activation_histograms({})
    with pytest.raises(ValueError, match="need 3 axes"):
        plots.activation_histograms({"a": [np.arange(5)] * 3}, axes=axes[:2])
    plt.close("all")
