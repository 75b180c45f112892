"""Time the course on this machine and write the table the book's appendix shows.

    python tools/benchmark.py                 # everything; rewrites appendix/benchmark.md
    python tools/benchmark.py --skip-pytest   # chapters and probe overhead only
    python tools/benchmark.py --no-write      # print, change no file

It measures
1. every chapter in _toc.yml run top to bottom in a fresh kernel, the way CI runs it
   (tests/nbtools.py's ``execute``: one thread, no progress bars): the median of ``--repeats`` runs;
2. the README's test command, ``pytest --nbval`` (unit tests, nbval, other seeds, the book's
   build, link and browser tests), once, wall-clock;
3. the cost of ``gradflow.probes.Probe``: a training step (forward, backward, SGD step) with a
   probe attached versus without, on the same model in the same process, interleaved in blocks so
   that a change in machine load hits both alike; the ratio of the medians. Target: <= 1.25x.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TARGET = 1.25
# (label, depth, width, activation, batch): the course's typical digits MLP, and a wider one
PROBE_MODELS = [("MLP 10×64 tanh, batch 64", 10, 64, "tanh", 64),
                ("MLP 10×256 relu, batch 256", 10, 256, "relu", 256)]


def toc_chapters() -> list[str]:
    return re.findall(r"file:\s*chapters/(\S+)", (ROOT / "_toc.yml").read_text())


def time_chapters(names: list[str], repeats: int) -> list[tuple[str, float, list[float]]]:
    """(name, median seconds, all runs) per chapter, each run in a fresh kernel."""
    from nbtools import execute  # tests/nbtools.py: the same runner CI and the seed tests use
    rows = []
    for name in names:
        runs = []
        for _ in range(repeats):
            _, seconds = execute(ROOT / "chapters" / f"{name}.ipynb")
            runs.append(seconds)
        rows.append((name, statistics.median(runs), runs))
        print(f"  {name}: median {statistics.median(runs):.1f} s  (runs: {', '.join(f'{r:.1f}' for r in runs)})",
              flush=True)
    return rows


def time_pytest() -> tuple[float, str]:
    """Wall-clock seconds of ``pytest --nbval`` from the repository root, and its summary line."""
    env = dict(os.environ, GRADFLOW_PROGRESS="0")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [l for l in result.stdout.strip().splitlines() if l.strip()]
    summary = lines[-1].strip("= ") if lines else f"exit code {result.returncode}"
    return seconds, summary


def probe_overhead(depth: int, width: int, activation: str, batch: int, *, blocks: int = 30,
                   steps: int = 10, read_every_step: bool = False,
                   **probe_options: bool) -> tuple[float, float]:
    """Median seconds per training step without and with a Probe attached (interleaved blocks).

    The probe's statistics are read once per block (what a dashboard sampling every 10 steps
    does), or after every step with ``read_every_step``.
    """
    import torch

    from gradflow import data, models, probes, set_seed

    torch.set_num_threads(1)
    set_seed(0)
    ds = data.digits(device="cpu")
    idx = torch.randint(0, len(ds.X_train), (batch,))
    x, y = ds.X_train[idx], ds.y_train[idx]
    model = models.mlp(depth, width, activation=activation, init="he" if activation == "relu" else "xavier")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    def block(probe=None) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
            if probe is not None and read_every_step:
                probe.stats()
        return (time.perf_counter() - start) / steps

    for _ in range(steps):  # warm up both paths
        step()
    with probes.Probe(model, **probe_options) as probe:
        block(probe)
    plain, probed = [], []
    for _ in range(blocks):
        plain.append(block())
        with probes.Probe(model, **probe_options) as probe:
            probed.append(block(probe))
        probe.stats()  # read once per block (outside the timing; with read_every_step, inside too)
    return statistics.median(plain), statistics.median(probed)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", pathlib.Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    import torch
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, CPU only, one intra-op thread")


def write_page(path: pathlib.Path, when: str, where: str, chapters, pytest_row, probe_rows, repeats: int) -> None:
    lines = [
        "# Benchmark",
        "",
        "How long the course takes on the machine CI runs on. Written by `python tools/benchmark.py`",
        "(see the README's *Benchmark* section); re-run it after a change that may cost time.",
        "",
        f"**Last run:** {when}, on {where}.",
        "The machine may have been shared with other work: treat the numbers as an order of magnitude,",
        "not a specification.",
        "",
        "## Chapters",
        "",
        f"Each chapter run top to bottom in a fresh kernel, the way CI runs it; median of {repeats} runs.",
        "",
        "| chapter | seconds (median) | runs |",
        "|---|---:|---|",
    ]
    for name, median, runs in chapters:
        lines.append(f"| `{name}` | {median:.1f} | {', '.join(f'{r:.1f}' for r in runs)} |")
    if chapters:
        lines.append(f"| **all chapters** | **{sum(m for _, m, _ in chapters):.1f}** | |")
    lines += ["", "## The test suite", ""]
    if pytest_row:
        seconds, summary = pytest_row
        lines.append(f"`pytest --nbval` (the README's test command: unit tests, every chapter against its stored "
                     f"outputs, every chapter with two other seeds, the book's build, links and browser "
                     f"test; 2 workers): **{seconds:.0f} s** ({summary}).")
    else:
        lines.append("Not measured in the last run (`--skip-pytest`).")
    lines += ["", "## What a probe costs", "",
              "A training step (forward, backward, SGD step) with a `gradflow.probes.Probe` attached, "
              "divided by the same step without one: the same model in the same process, in interleaved "
              f"blocks of 10 steps (median of 30 blocks each). Target: ≤ {TARGET:.2f}×.",
              "",
              "Three ways of using it: the full probe with its statistics read once per 10 steps, the same "
              "read after every step, and gradient statistics only (`Probe(model, activations=False)`, "
              "read once per 10 steps).",
              "",
              "| model | step without | full probe | ratio | read every step | ratio | gradients only | ratio |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, plain, full, every, grads in probe_rows:
        lines.append(f"| {label} | {plain * 1e3:.2f} ms | {full * 1e3:.2f} ms | {full / plain:.2f}× | "
                     f"{every * 1e3:.2f} ms | {every / plain:.2f}× | {grads * 1e3:.2f} ms | {grads / plain:.2f}× |")
    lines += ["",
              "During a step a probe runs four Python hooks per layer and keeps the layer's activation, a "
              "copy of its weight gradient and the norm of its pre-activation gradient; the other "
              "statistics (about ten small reductions per layer) are computed when they are read. On narrow "
              "layers with small batches each of these costs about as much as the layer's own matrix "
              "product, so the ratio is largest there and falls as layers and batches grow. Read a probe "
              "every few steps, not after every step of a long run.",
              ""]
    path.write_text("\n".join(lines))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per chapter (median)")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter names (default: all in _toc.yml)")
    parser.add_argument("--skip-pytest", action="store_true", help="do not time pytest --nbval")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite appendix/benchmark.md")
    args = parser.parse_args(argv)

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    print(f"{when} — {where}")
    print("Chapters (fresh kernel, top to bottom):")
    chapters = time_chapters(args.chapters if args.chapters is not None else toc_chapters(), args.repeats)
    print("Probe overhead (training step with / without a Probe):")
    probe_rows = []
    for label, depth, width, act, batch in PROBE_MODELS:
        plain, full = probe_overhead(depth, width, act, batch)
        plain2, every = probe_overhead(depth, width, act, batch, read_every_step=True)
        every = every * plain / plain2  # every ratio against the same baseline
        plain3, grads = probe_overhead(depth, width, act, batch, activations=False)
        grads = grads * plain / plain3
        probe_rows.append((label, plain, full, every, grads))
        flag = "ok" if full / plain <= TARGET else f"above the {TARGET:.2f}x target"
        print(f"  {label}: {plain * 1e3:.2f} ms -> full probe {full * 1e3:.2f} ms ({full / plain:.2f}x, {flag}); "
              f"read every step {every / plain:.2f}x; gradients only {grads / plain:.2f}x", flush=True)
    pytest_row = None
    if not args.skip_pytest:
        print("pytest --nbval ...", flush=True)
        pytest_row = time_pytest()
        print(f"  pytest --nbval: {pytest_row[0]:.0f} s ({pytest_row[1]})")
    if not args.no_write:
        page = ROOT / "appendix" / "benchmark.md"
        write_page(page, when, where, chapters, pytest_row, probe_rows, args.repeats)
        print(f"wrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
