"""The evidence ledger (tools/ledger.py, appendix/claims.md): current, complete, correctly parsed."""

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("ledger", ROOT / "tools" / "ledger.py")
ledger = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("ledger", ledger)  # dataclasses look their module up there
_spec.loader.exec_module(ledger)

PAGE = ROOT / ledger.PAGE


def test_committed_page_is_current():
    assert PAGE.is_file(), "appendix/claims.md is missing: run python tools/ledger.py"
    assert PAGE.read_text(encoding="utf-8") == ledger.render(ledger.collect(ROOT)), (
        "appendix/claims.md is stale: run python tools/ledger.py and commit it"
    )


def test_no_chapter_lost_checks_and_every_chapter_is_listed():
    recorded = ledger.recorded_counts(PAGE.read_text(encoding="utf-8"))
    stored: dict[str, int] = {}
    for claim in ledger.collect(ROOT):
        stored[claim.chapter] = stored.get(claim.chapter, 0) + 1
    chapters = {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    assert set(recorded) == chapters, f"chapters on the page {sorted(recorded)} vs {sorted(chapters)}"
    lost = {c: (n, stored.get(c, 0)) for c, n in recorded.items() if stored.get(c, 0) < n}
    assert not lost, f"chapters whose stored ✓ count dropped below the ledger's (page, now): {lost}"
    assert all(n >= 4 for n in recorded.values())


def _notebook(tmp_path: pathlib.Path, name: str = "01_demo") -> pathlib.Path:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# 01 · Demo chapter\n", "text"]},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "x = 1",
            "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "✓ before any section\n"}],
        },
        {"cell_type": "markdown", "metadata": {}, "source": "## 1. First | part\n\nsome $x$"},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "",
            "execution_count": 2,
            "outputs": [
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": ["measured 3\n", "✓ ratio |a| 1.0e-03 < 1e-2 and $x$ *big*\n"],
                },
                {"output_type": "stream", "name": "stderr", "text": "✓ not a claim (stderr)\n"},
            ],
        },
        {"cell_type": "markdown", "metadata": {}, "source": "### 1.1 Sub\n"},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "",
            "execution_count": 3,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "✓ second\n"}],
        },
    ]
    folder = tmp_path / "chapters"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_claims_carry_chapter_section_and_text(tmp_path):
    claims = ledger.claims_of(_notebook(tmp_path))
    assert [(c.title, c.section, c.text) for c in claims] == [
        ("01 · Demo chapter", "", "before any section"),
        ("01 · Demo chapter", "1. First | part", "ratio |a| 1.0e-03 < 1e-2 and $x$ *big*"),
        ("01 · Demo chapter", "1.1 Sub", "second"),
    ]


def test_render_escapes_markdown_and_counts(tmp_path):
    _notebook(tmp_path)
    page = ledger.render(ledger.collect(tmp_path))
    assert r"ratio \|a\| 1.0e-03 \< 1e-2 and \$x\$ \*big\*" in page
    assert "| 1 | (top) | before any section |" in page
    assert ledger.recorded_counts(page) == {"01_demo": 3}
    assert "**3 checks in 1 chapters.**" in page


def test_write_and_check_detect_a_stale_page(tmp_path, capsys):
    path = _notebook(tmp_path)
    assert ledger.write(tmp_path) is True
    assert ledger.write(tmp_path) is False  # unchanged: not rewritten (no rebuild loop in Sphinx)
    assert ledger.main(["--check", "--root", str(tmp_path)]) == 0
    nb = json.loads(path.read_text())
    nb["cells"][-1]["outputs"] = []  # a chapter loses a check
    path.write_text(json.dumps(nb))
    assert ledger.main(["--check", "--root", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["a|b", "<x>", "`c`", "_u_", "[l](m)", "$m$", "\\"])
def test_escape_leaves_no_bare_special_character(text):
    escaped = ledger.escape(text)
    for i, ch in enumerate(escaped):
        if ch in "|<>`_[]$":
            assert escaped[i - 1] == "\\", (text, escaped)
