"""Sphinx extension: serve MathJax 3 from the built book itself, so the book reads offline.

MathJax comes from the PyPI package ``django-static-mathjax`` (pinned in requirements.txt), a
plain copy of the MathJax 3.2.2 distribution with no dependencies (its import name is
``mathjax``; nothing of Django is used). ``_config.yml`` sets ``mathjax_path`` to a path relative
to ``_static/`` (e.g. ``mathjax/tex-mml-chtml.js``); once the HTML pages are written, this
extension copies the combined component ``es5/tex-mml-chtml.js`` there, with what it loads on
demand: the CHTML web fonts, the TeX extensions that ``autoload`` fetches, the menu and the
accessibility components (about 2.9 MB). MathJax's speech maps (``sre/``, 4 MB) are left out: only
the menu's speech option needs them.

The files are copied at ``build-finished``, not placed in a source ``_static/`` folder, where
Jupyter Book would give every ``.js`` file a script tag. A ``mathjax_path`` that is a URL
(``https://...``) is left alone and nothing is copied.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

#: Parts of MathJax's ``es5/`` folder the book serves (files or folders).
PARTS = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y")


def mathjax_es5() -> pathlib.Path:
    """The ``es5/`` folder of the installed MathJax 3 distribution."""
    try:
        import mathjax  # the package django-static-mathjax
    except ImportError as exc:  # pragma: no cover - a clear message for a fresh machine
        raise ExtensionError(
            "MathJax for offline reading is missing: pip install -r requirements.txt (django-static-mathjax)"
        ) from exc
    es5 = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise ExtensionError(f"no es5/tex-mml-chtml.js under {es5.parent}")
    return es5


def mathjax_version() -> str:
    """MathJax's own version string (from the distribution's package.json)."""
    return json.loads((mathjax_es5().parent / "package.json").read_text())["version"]


def _is_local(path: str) -> bool:
    return bool(path) and "://" not in path and not path.startswith("//")


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    """After a successful HTML build, put MathJax where ``mathjax_path`` points."""
    path = app.config.mathjax_path
    if exc is not None or app.builder.format != "html" or not _is_local(path):
        return
    script = pathlib.Path(app.outdir) / "_static" / path
    dest = script.parent
    es5 = mathjax_es5()
    for part in PARTS:
        src = es5 / part
        target = dest / part
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    if script.name != "tex-mml-chtml.js":  # mathjax_path names another file name for the component
        shutil.copy2(es5 / "tex-mml-chtml.js", script)


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
