"""The built book as a reader sees it: every chapter page opened in headless Chromium.

For each chapter listed in _toc.yml the page is loaded from the session's build (file://, no
network), MathJax is allowed to finish, and the test checks that

- math is typeset: MathJax (served from the book's own _static/mathjax/) ran, produced
  ``mjx-container`` elements and no ``mjx-merror``, and no raw ``\\(`` / ``\\[`` / ``$$`` is left
  in the page's visible text;
- every image loads: each ``<img>`` is complete with ``naturalWidth > 0`` in the browser, and each
  image file is a non-empty PNG/SVG on disk;
- the launch buttons are there: "Colab" points at
  https://colab.research.google.com/github/ORG/REPO/blob/BRANCH/chapters/NAME.ipynb (built from
  _config.yml's repository.url and branch) and the download button offers NAME.ipynb;
- no error output: no "Traceback", no stderr or error output cell.

A full-page screenshot of each chapter is saved to _build/screenshots/ (CI keeps them as
artifacts). Chromium is driven over the DevTools protocol through a pipe (``--remote-debugging-pipe``),
so no driver package is needed. Without /usr/bin/chromium the test is skipped; .ci/run installs
Debian's ``chromium`` package so CI always runs it.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time

import pytest

from book_build import ROOT, build_book, toc_chapters

# CHROMIUM may name another Chromium-based browser (the GitHub workflow uses google-chrome).
CHROMIUM = shutil.which(os.environ.get("CHROMIUM", "chromium")) or shutil.which("chromium-browser")
SHOTS = ROOT / "_build" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it: "
                                "apt-get install chromium)")


class Browser:
    """A minimal DevTools-protocol client for one headless Chromium over fds 3 (in) and 4 (out)."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="gradflow-chromium-")
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()
        # Chromium reads the protocol on fd 3 and writes on fd 4: bash moves the pipe ends there
        # (no preexec_fn, which is unsafe in a threaded pytest-xdist worker). F_DUPFD puts them at
        # fds >= 10 first, so they never collide with 3 and 4.
        a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        wrapper = f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-'
        self.proc = subprocess.Popen(["bash", "-c", wrapper, CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(a, b))
        for fd in (to_child_r, from_child_w, a, b):
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait for its answer (events that arrive meanwhile are kept)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str):
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value."""
        result = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page reports once MathJax has finished typesetting and every image has settled.
INSPECT = r"""
(async () => {
  const until = Date.now() + 20000;
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() < until)
    await new Promise(r => setTimeout(r, 50));
  const mathjax = !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  if (mathjax) await MathJax.startup.promise;
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(r => { img.onload = img.onerror = r; })));
  const main = document.querySelector("main") || document.body;
  const a = [...document.querySelectorAll("a[href]")];
  return {
    mathjax: mathjax,
    mathjaxSrc: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
    containers: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror").length,
    text: main.innerText,
    images: [...document.images].map(img => ({src: img.getAttribute("src"), complete: img.complete,
                                              width: img.naturalWidth})),
    links: a.map(x => x.href),
    errorCells: document.querySelectorAll(".output.error, .output.traceback, .output.stderr").length,
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})()
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_book(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    b.page("Page.enable")
    b.page("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    yield b
    b.close()


def _repository() -> tuple[str, str]:
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", config, re.M).group(1).rstrip("/")
    branch = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+branch:\s*(\S+)", config, re.M)
    org_repo = re.match(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?$", url).group(1)
    return org_repo, branch.group(1) if branch else "main"


def _stored_figures(name: str) -> int:
    """PNG outputs of the notebook's cells that the book shows (not tagged remove-*)."""
    nb = json.loads((ROOT / "chapters" / f"{name}.ipynb").read_text())
    count = 0
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-cell", "remove-output"} & set(tags):
            continue
        count += sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    return count


def _open(browser: Browser, path) -> dict:
    browser.events.clear()
    browser.page("Page.navigate", url=path.as_uri())
    browser.wait_event("Page.loadEventFired")
    return browser.evaluate(INSPECT)


def _screenshot(browser: Browser, height: int, dest) -> None:
    height = max(1000, min(height, 16000))
    browser.page("Emulation.setDeviceMetricsOverride", width=1280, height=height, deviceScaleFactor=1, mobile=False)
    shot = browser.page("Page.captureScreenshot", format="png")
    browser.page("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("name", toc_chapters())
def test_chapter_page_in_chromium(name, site, browser):
    page = site / "chapters" / f"{name}.html"
    assert page.is_file(), f"{name}.html was not built"
    seen = _open(browser, page)
    _screenshot(browser, seen["height"], SHOTS / f"{name}.png")
    problems = []

    # MathJax: local, ran, typeset everything
    if not seen["mathjaxSrc"] or any(s.startswith("http") for s in seen["mathjaxSrc"]):
        problems.append(f"MathJax is not served by the book itself: {seen['mathjaxSrc']}")
    if not seen["mathjax"]:
        problems.append("MathJax did not start")
    if seen["containers"] == 0:
        problems.append("no mjx-container: no math was typeset")
    if seen["errors"]:
        problems.append(f"{seen['errors']} MathJax errors (mjx-merror)")
    for raw in ("\\(", "\\[", "$$", "\\begin{"):
        if raw in seen["text"]:
            i = seen["text"].index(raw)
            problems.append(f"raw TeX {raw!r} left in the page text: …{seen['text'][max(0, i - 60):i + 60]!r}…")

    # figures: every image loads in the browser and is a real file
    if not seen["images"]:
        problems.append("no image on the page")
    for img in seen["images"]:
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image does not load: {img['src']}")
        if img["src"] and not img["src"].startswith(("data:", "http")):
            file = (page.parent / img["src"].split("#")[0].split("?")[0]).resolve()
            head = file.read_bytes()[:8] if file.is_file() else b""
            if not (head.startswith(b"\x89PNG\r\n\x1a\n") or file.suffix == ".svg") or file.stat().st_size < 100:
                problems.append(f"image file missing, empty or not a PNG: {img['src']}")

    # every figure stored in the notebook (the explorers' static views included) is on the page
    shown = [i for i in seen["images"] if "_images/" in (i["src"] or "")]
    if len(shown) < _stored_figures(name):
        problems.append(f"{len(shown)} figures on the page, {_stored_figures(name)} stored in {name}.ipynb")

    # launch buttons: Colab and .ipynb download point at this notebook
    org_repo, branch = _repository()
    colab = f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/chapters/{name}.ipynb"
    if colab not in seen["links"]:
        found = [l for l in seen["links"] if "colab" in l]
        problems.append(f"no Colab button to {colab} (found {found})")
    if not any(l.endswith(f"/_sources/chapters/{name}.ipynb") for l in seen["links"]):
        problems.append(f"no .ipynb download button for {name}.ipynb")

    # no error output
    if "Traceback" in seen["text"]:
        problems.append("'Traceback' appears on the page")
    if seen["errorCells"]:
        problems.append(f"{seen['errorCells']} error/stderr output areas on the page")

    assert not problems, f"{name}.html (screenshot: {SHOTS / (name + '.png')}):\n- " + "\n- ".join(problems)
