"""Execute chapter notebooks the way CI does: fresh kernel of this environment, one thread, no
progress bars, working directory = the notebook's folder.

    python tests/nbtools.py chapters/01_chain_rule.ipynb      # re-run and store outputs in place
    python tests/nbtools.py --seed 7 chapters/*.ipynb         # run with another SEED, store nothing

The second form is what tests/test_seeds.py does for every chapter.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "GRADFLOW_PROGRESS": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    # the inline backend, whatever the shell says: with MPLBACKEND=Agg no figure would be stored
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The one code cell tagged ``parameters`` (it holds ``SEED = ...``)."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def execute(
    path: str | pathlib.Path,
    *,
    seed: int | None = None,
    timeout: int = 600,
    cwd: str | pathlib.Path | None = None,
) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in a fresh kernel; return it (with outputs) and the seconds.

    Args:
        path: the .ipynb file.
        seed: if given, the ``parameters`` cell becomes ``SEED = seed`` before running.
        timeout: per-cell limit in seconds.
        cwd: the kernel's working directory (default: the notebook's folder, as nbval does).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (e.g. a check's AssertionError).
    """
    path = pathlib.Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    if seed is not None:
        parameters_cell(nb).source = f"SEED = {seed}"
    os.environ.update(ENV)  # the kernel inherits this process's environment
    km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    folder = pathlib.Path(cwd).resolve() if cwd is not None else path.parent
    client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--seed", type=int, default=None, help="run with another SEED; store nothing")
    args = parser.parse_args(argv)
    for name in args.notebooks:
        nb, seconds = execute(name, seed=args.seed)
        if args.seed is None:
            # keep the stored notebook's kernelspec readable for Jupyter and Colab
            nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
            nbformat.write(nb, name)
        print(
            f"{name}: {seconds:.1f} s"
            + (f" (SEED={args.seed}, not stored)" if args.seed is not None else ", outputs stored")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
