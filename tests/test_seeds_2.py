"""The second other seed (see test_seeds.py)."""

import pytest
from test_seeds import CHAPTERS, run_with_seed


@pytest.mark.seeds
@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_checks_hold_for_seed_2(notebook):
    run_with_seed(notebook, 2)
