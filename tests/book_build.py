"""One build of the book per pytest session, shared by tests/test_links.py and tests/test_browser.py.

The book is built with ``jupyter-book build . -W`` into a temporary folder (never into the
repository's own ``_build/``, which a person may be building at the same time). Under
pytest-xdist every worker asks for the build; the first one builds it while holding a file lock,
the others wait and reuse it.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build_book(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Build the book once per session (``-W``: warnings fail it); return its ``html`` folder."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this session
    out = base / "book"
    html = out / "_build" / "html"
    with open(base / "book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        failed = base / "book.failed"
        if failed.exists():
            pytest.fail(failed.read_text(), pytrace=False)
        if not (html / "index.html").exists():
            exe = pathlib.Path(sys.executable).with_name("jupyter-book")
            result = subprocess.run(
                [str(exe), "build", str(ROOT), "-W", "--path-output", str(out)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if result.returncode != 0 or not (html / "index.html").exists():
                failed.write_text(
                    "jupyter-book build . -W failed:\n" + (result.stdout + result.stderr)[-4000:]
                )
                pytest.fail(failed.read_text(), pytrace=False)
    return html


def toc_chapters() -> list[str]:
    """Names of the chapters _toc.yml lists, in order (tests/test_book.py keeps it equal to chapters/)."""
    return re.findall(r"file:\s*chapters/(\S+)", (ROOT / "_toc.yml").read_text())
