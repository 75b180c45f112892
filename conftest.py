"""Root pytest configuration: the same environment for every notebook kernel and unit test.

- The kernel nbval starts inherits this process's environment, so the thread count and the
  progress-bar switch are set here, before any kernel starts.
- The sanitize file is given as an absolute path (a relative one breaks when pytest runs from
  another folder), and the kernel is the one of this environment.
- pytest.ini runs two xdist workers with --dist loadfile: a notebook's cells share one kernel,
  so they must stay on one worker (loadgroup was seen to move a single cell to the other one).
"""

import os
import pathlib

ROOT = pathlib.Path(__file__).parent
os.environ["OMP_NUM_THREADS"] = "1"  # reproducible float sums, fast small models on 2 cores
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["GRADFLOW_PROGRESS"] = "0"  # no tqdm widget in stored or compared outputs
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"

collect_ignore_glob = ["_build/*", "code/*", ".ci/*"]


def pytest_configure(config):
    if getattr(config.option, "nbval", False):
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")
        config.option.nbval_current_env = True
