"""Every chapter's checks must hold for other seeds too, not only for the stored run.

The two seeds live in two files (this one and test_seeds_2.py) so that pytest-xdist's
``--dist loadfile`` can run them on different workers.
"""

import pathlib

import pytest

from nbtools import execute

CHAPTERS = sorted((pathlib.Path(__file__).parent.parent / "chapters").glob("*.ipynb"))


def run_with_seed(notebook: pathlib.Path, seed: int) -> None:
    """Execute ``notebook`` with ``SEED = seed``; a failing check raises, no check at all fails."""
    nb, _ = execute(notebook, seed=seed)
    checks = [
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
        for line in out.get("text", "").splitlines()
        if line.startswith("✓")
    ]
    assert checks, f"{notebook.name} printed no ✓ check with SEED={seed}"


@pytest.mark.seeds
@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_checks_hold_for_seed_1(notebook):
    run_with_seed(notebook, 1)
