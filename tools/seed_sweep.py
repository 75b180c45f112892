"""Seed spreads behind the chapters' check bounds.

Runs one chapter's code cells as plain Python, serially, once per seed (the ``parameters`` cell
becomes ``SEED = s``; live-widget cells are skipped), with ``gradflow.check`` replaced by a
recorder that never raises, and prints every check line with its seed: ``✓`` where the stored
bound holds, ``✗`` where it would fail. The measured values are in the check messages, so the
min-max over seeds of each quantity is read off the output.

    cd chapters && PYTHONPATH=../code OMP_NUM_THREADS=1 GRADFLOW_PROGRESS=0 MPLBACKEND=Agg \\
        python ../tools/seed_sweep.py 04_initialization.ipynb 0 1 2 3 4 5 6 7 8 9 > sweep04.txt

One process, one thread: on the shared 2-core machine run one sweep at a time.
"""

import contextlib
import io
import json
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import gradflow
import gradflow.core


def record(condition: bool, message: str) -> None:
    print(("✓ " if condition else "✗ ") + message)


def sweep(path: str, seeds: list[int]) -> None:
    nb = json.load(open(path))
    for seed in seeds:
        gradflow.check = gradflow.core.check = record
        ns = {"__name__": "__main__"}
        start = time.process_time()
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            tags = cell.get("metadata", {}).get("tags", [])
            if "nbval-ignore-output" in tags and "remove-output" in tags:
                continue  # a live widget
            src = f"SEED = {seed}" if "parameters" in tags else "".join(cell["source"])
            src = "\n".join(
                line[: len(line) - len(line.lstrip())] + "pass"
                if line.strip().startswith(("%", "!"))
                else line
                for line in src.splitlines()
            )
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(src, f"{path}:cell{i}", "exec"), ns)
                    ns["check"] = record
            except Exception as exc:  # report and go on: the other cells' spreads still count
                print(f"SEED {seed} cell {i} ERROR {type(exc).__name__}: {exc}", flush=True)
            plt.close("all")
            for line in out.getvalue().splitlines():
                if line.startswith(("✓", "✗")):
                    print(f"SEED {seed} cell {i} {line}", flush=True)
        print(f"SEED {seed} done in {time.process_time() - start:.1f} s CPU", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sweep(sys.argv[1], [int(s) for s in sys.argv[2:]])
