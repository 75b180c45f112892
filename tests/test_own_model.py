"""appendix/own_model.md: its code blocks run as written, and what it says the tools refuse holds."""

import pathlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

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
