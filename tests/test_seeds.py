"""Every chapter's checks must hold for other seeds too, not only for the stored run."""
import pathlib

import pytest

from nbtools import execute

CHAPTERS = sorted((pathlib.Path(__file__).parent.parent / "chapters").glob("*.ipynb"))


@pytest.mark.seeds
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_checks_hold_for_another_seed(notebook, seed):
    nb, _ = execute(notebook, seed=seed)
    checks = [line for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "stream"
              for line in out.get("text", "").splitlines() if line.startswith("✓")]
    assert checks, f"{notebook.name} printed no ✓ check with SEED={seed}"
