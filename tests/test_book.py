"""Book-level checks: the table of contents, the stored outputs, the Colab setup cell."""

import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _config_url() -> str:
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M)
    assert match, "_config.yml has no repository.url"
    return match.group(1).rstrip("/")


def setup_cell_source() -> str:
    """The exact first code cell of every chapter."""
    return (
        "# Setup: on Colab, install the course package `gradflow` (elsewhere this cell does nothing).\n"
        "import sys\n\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "gradflow @ git+{_config_url()}.git@main#subdirectory=code"'
    )


def _nb(path):
    return json.loads(path.read_text())


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_chapters():
    assert CHAPTERS, "no notebook in chapters/"


def test_toc_lists_exactly_the_chapters():
    toc = (ROOT / "_toc.yml").read_text()
    listed = re.findall(r"file:\s*chapters/(\S+)", toc)
    assert listed == [p.stem for p in CHAPTERS], "_toc.yml and chapters/ disagree (order included)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_outputs_come_from_one_clean_run(path):
    cells = _code_cells(_nb(path))
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts {counts} are not 1..N: re-run with `python tests/nbtools.py {path.relative_to(ROOT)}`"
    )
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"stored error outputs: {errors}"
    stderr = [
        o["text"]
        for c in cells
        for o in c.get("outputs", [])
        if o["output_type"] == "stream" and o["name"] == "stderr"
    ]
    assert not stderr, f"stored stderr output (a warning a reader would see): {stderr[0][:200]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_figures_checks_and_exercises(path):
    nb = _nb(path)
    cells = _code_cells(nb)
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2, "fewer than 2 figures"
    checks = [
        l
        for o in outputs
        if o["output_type"] == "stream"
        for l in "".join(o["text"]).splitlines()
        if l.startswith("✓")
    ]
    assert len(checks) >= 4, f"only {len(checks)} ✓ checks"
    solutions = [c for c in cells if "".join(c["source"]).startswith("# @title Solution")]
    assert all("hide-cell" in c["metadata"].get("tags", []) for c in solutions), "a solution is not hidden"
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert len(solutions) + text.count("<details>") >= 2, "fewer than 2 exercises with hidden solutions"
    assert "import gradflow" in "".join("".join(c["source"]) for c in cells)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_live_widgets_are_hidden_from_the_book_and_from_nbval(path):
    # A widget's stored text fallback reads "interactive(children=...)": the static book would show
    # it, and its model id changes every run. The static figure above it is what readers see.
    for cell in _code_cells(_nb(path)):
        if any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.get("outputs", [])
        ):
            tags = cell["metadata"].get("tags", [])
            assert "remove-output" in tags and "nbval-ignore-output" in tags, "".join(cell["source"])[:80]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_colab_setup(path):
    first = _code_cells(_nb(path))[0]
    assert "".join(first["source"]) == setup_cell_source(), (
        "the first code cell must be exactly tests/test_book.py:setup_cell_source()"
    )
    assert "remove-cell" in first["metadata"].get("tags", [])
    assert first.get("outputs", []) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_seed_lives_in_a_parameters_cell(path):
    params = [c for c in _code_cells(_nb(path)) if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and re.fullmatch(
        r"SEED = \d+", "".join(params[0]["source"]).strip().split("\n")[0]
    )


@pytest.mark.parametrize("folder", ["chapters", "."])
def test_import_code_is_still_the_standard_library_in_a_kernel(folder, tmp_path):
    # The package folder is called code/; it must never shadow `import code`, which IPython uses.
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from nbtools import execute

    nb_path = tmp_path / "probe.ipynb"
    nbformat.write(
        new_notebook(cells=[new_code_cell("import code, gradflow\nprint(code.__file__)")]), nb_path
    )
    nb, _ = execute(nb_path, cwd=ROOT / folder)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert printed.endswith("/code.py") and "/lib/python" in printed, printed


def test_no_gradflow_module_shadows_the_standard_library():
    # A module named like a stdlib one (signal.py, code/...) breaks `import torch` for anyone whose
    # working directory is code/gradflow: Python would import ours instead of the standard one.
    ours = {p.stem for p in (ROOT / "code" / "gradflow").glob("*.py")} - {"__init__"}
    assert not ours & set(sys.stdlib_module_names), sorted(ours & set(sys.stdlib_module_names))
