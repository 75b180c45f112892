"""appendix/own_model.md: its code blocks run as written, and what it says the tools refuse holds."""

import pathlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gradflow import probes

ROOT = pathlib.Path(__file__).parent.parent
PAGE = (ROOT / "appendix" / "own_model.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE, re.M | re.S)


def test_the_pages_python_blocks_run_in_order(capsys):
    blocks = _blocks("python")
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "own_model_page"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"own_model.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "vanishing" in out and "refused: Probe found no layer" in out
    assert "saturation: nan" in out
    assert namespace["rec"].update_ratio.shape == (20, 9)
    assert namespace["fig"] is not None
    plt.close("all")


def test_install_line_uses_the_books_repository():
    url = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M)
    (install,) = _blocks("bash")
    assert f"git+{url.group(1).rstrip('/')}.git@main#subdirectory=code" in install


def test_recurrent_weights_are_not_probed_yet_and_frozen_weights_are_refused():
    # The page's last two bullets: if gradflow.probes learns either, update the page.
    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.head = nn.GRU(4, 8, batch_first=True), nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.gru(x)[0][:, -1])

    x, y = torch.randn(5, 6, 4), torch.randint(0, 3, (5,))
    assert [s.name for s in probes.measure(GRUNet(), x, y)] == ["head"]
    frozen = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 3))
    frozen[0].weight.requires_grad_(False)
    with pytest.raises(RuntimeError):
        probes.measure(frozen, torch.randn(5, 4), y)
