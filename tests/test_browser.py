"""The built book as a reader sees it: every chapter page opened in headless Chromium (Playwright).

For each chapter listed in _toc.yml the page is loaded from the session's build (file://, no
network), MathJax is allowed to finish, and the test checks that

- math is typeset: MathJax (served from the book's own _static/mathjax/) ran, produced
  ``mjx-container`` elements and no ``mjx-merror``, and no raw ``\\(`` / ``\\[`` / ``$$`` is left
  in the page's visible text;
- every image loads: each ``<img>`` is complete with ``naturalWidth > 0`` in the browser, and each
  image file is a non-empty PNG/SVG on disk; every figure stored in the notebook is on the page;
- the launch buttons are there: "Colab" points at
  https://colab.research.google.com/github/ORG/REPO/blob/BRANCH/chapters/NAME.ipynb (built from
  _config.yml's repository.url and branch) and the download button offers NAME.ipynb;
- no error output: no "Traceback", no stderr or error output cell;
- every folded block (a cell tagged hide-input / hide-cell / hide-output, a ``<details>`` answer)
  starts closed with its content hidden, and opens, content visible, when its toggle is clicked.

Then the book as a whole: the theme button switches the page to the dark theme, which renders
(dark background, light text, dark code cells, math and figures still there), and the search page
finds each chapter from a word of its title.

A full-page screenshot of each chapter (and of one in the dark theme) is saved to
_build/screenshots/ (CI keeps them as artifacts). Chromium is driven by Playwright for Python
(pytest-playwright's fixtures) through the system's Chromium (``executable_path``): Playwright's
own browser download is never used (never run ``playwright install``). Without a Chromium the
test is skipped on a developer's machine and fails in CI (``CI=true``): .ci/run installs Debian's
``chromium`` package.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from book_build import ROOT, build_book, toc_chapters

# CHROMIUM may name another Chromium-based browser (the GitHub workflow uses google-chrome).
CHROMIUM = shutil.which(os.environ.get("CHROMIUM", "chromium")) or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHOTS = ROOT / "_build" / "screenshots"
VIEWPORT = {"width": 1280, "height": 1000}
TIMEOUT_MS = 60_000  # a busy 2-core machine: MathJax on a long chapter can take several seconds

# What the page reports once MathJax has finished typesetting and every image has settled.
INSPECT = r"""
async () => {
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
}
"""

# Relative luminance (0 = black, 1 = white) of an element's computed colour or background.
LUMINANCE = r"""
([selector, property]) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const m = getComputedStyle(el)[property].match(/[\d.]+/g);
  if (!m || (m.length > 3 && Number(m[3]) === 0)) return null;  // transparent
  const [r, g, b] = m.slice(0, 3).map(v => { v = Number(v) / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
"""

# The page's folded blocks: myst-nb's hidden cells and <details> answers in the article.
FOLDED = "article details:has(> summary)"

# JavaScript errors that every Jupyter Book 1.0.4 page raises, none of our making: the sphinx-thebe
# settings script is emitted twice (thebe itself stays off: no launch button uses it).
KNOWN_JS_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches the system's Chromium; missing, the test skips (fails in CI)."""
    if CHROMIUM is None:
        message = (
            "no Chromium found (set CHROMIUM, or `apt-get install chromium`; .ci/run installs it). "
            "Never `playwright install`: its download is not reachable."
        )
        if IN_CI:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT, "device_scale_factor": 1}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_book(tmp_path_factory)


@pytest.fixture
def tab(page):
    """pytest-playwright's page (a fresh browser context per test) with a timeout for a busy machine."""
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: None if str(exc) in KNOWN_JS_ERRORS else errors.append(str(exc)))
    page.js_errors = errors
    return page


def _repository() -> tuple[str, str]:
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", config, re.M).group(1).rstrip("/")
    branch = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+branch:\s*(\S+)", config, re.M)
    org_repo = re.match(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?$", url).group(1)
    return org_repo, branch.group(1) if branch else "main"


def _notebook(name: str) -> dict:
    return json.loads((ROOT / "chapters" / f"{name}.ipynb").read_text())


def _stored_figures(name: str) -> int:
    """PNG outputs of the notebook's cells that the book shows (not tagged remove-*)."""
    count = 0
    for cell in _notebook(name)["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-cell", "remove-output"} & set(tags):
            continue
        count += sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    return count


def _open(page, path) -> dict:
    page.goto(path.as_uri(), wait_until="load")
    return page.evaluate(INSPECT)


def _screenshot(page, height: int, dest) -> None:
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(1000, min(height, 16000))})
    dest.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(dest))
    page.set_viewport_size(VIEWPORT)


def _folding_problems(page) -> tuple[int, list[str]]:
    """Open every folded block by clicking its toggle; what did not start closed or did not open."""
    problems = []
    folded = page.locator(FOLDED)
    n = folded.count()
    for i in range(n):
        block = folded.nth(i)
        summary = block.locator(":scope > summary")
        content = block.locator(":scope > :not(summary)").first
        label = (summary.inner_text().strip().splitlines() if summary.count() else None) or ["<details>"]
        label = label[0]
        if block.evaluate("d => d.open") or content.is_visible():
            problems.append(f"folded block {i} ({label!r}) is open before its toggle is clicked")
            continue
        summary.scroll_into_view_if_needed()
        summary.click()
        try:
            content.wait_for(state="visible", timeout=5000)
        except Exception:
            pass
        if not block.evaluate("d => d.open") or not content.is_visible():
            problems.append(f"folded block {i} ({label!r}) does not open when its toggle is clicked")
        elif not content.inner_text().strip() and not content.locator("img").count():
            problems.append(f"folded block {i} ({label!r}) opens onto nothing")
    return n, problems


@pytest.mark.parametrize("name", toc_chapters())
def test_chapter_page_in_chromium(name, site, tab):
    page = site / "chapters" / f"{name}.html"
    assert page.is_file(), f"{name}.html was not built"
    seen = _open(tab, page)
    _screenshot(tab, seen["height"], SHOTS / f"{name}.png")
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
            context = seen["text"][max(0, i - 60) : i + 60]
            problems.append(f"raw TeX {raw!r} left in the page text: …{context!r}…")

    # figures: every image loads in the browser and is a real file
    if not seen["images"]:
        problems.append("no image on the page")
    for img in seen["images"]:
        if not img["complete"] or img["width"] == 0:
            problems.append(f"image does not load: {img['src']}")
        if img["src"] and not img["src"].startswith(("data:", "http")):
            file = (page.parent / img["src"].split("#")[0].split("?")[0]).resolve()
            head = file.read_bytes()[:8] if file.is_file() else b""
            is_image = head.startswith(b"\x89PNG\r\n\x1a\n") or file.suffix == ".svg"
            if not is_image or file.stat().st_size < 100:
                problems.append(f"image file missing, empty or not a PNG: {img['src']}")

    # every figure stored in the notebook (the explorers' static views included) is on the page
    shown = [i for i in seen["images"] if "_images/" in (i["src"] or "")]
    if len(shown) < _stored_figures(name):
        problems.append(f"{len(shown)} figures on the page, {_stored_figures(name)} stored in {name}.ipynb")

    # launch buttons: Colab and .ipynb download point at this notebook
    org_repo, branch = _repository()
    colab = f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/chapters/{name}.ipynb"
    if colab not in seen["links"]:
        found = [link for link in seen["links"] if "colab" in link]
        problems.append(f"no Colab button to {colab} (found {found})")
    if not any(link.endswith(f"/_sources/chapters/{name}.ipynb") for link in seen["links"]):
        problems.append(f"no .ipynb download button for {name}.ipynb")

    # no error output
    if "Traceback" in seen["text"]:
        problems.append("'Traceback' appears on the page")
    if seen["errorCells"]:
        problems.append(f"{seen['errorCells']} error/stderr output areas on the page")

    # folded cells (hidden solutions, folded check code) open when their toggle is clicked
    folded, folding = _folding_problems(tab)
    if folded == 0:
        problems.append("no folded cell on the page (every chapter has hidden solutions)")
    problems += folding
    if tab.js_errors:
        problems.append(f"JavaScript errors on the page: {tab.js_errors[:3]}")

    assert not problems, f"{name}.html (screenshot: {SHOTS / (name + '.png')}):\n- " + "\n- ".join(problems)


def test_dark_theme_renders(site, tab):
    name = toc_chapters()[-1]
    tab.emulate_media(color_scheme="light")
    seen = _open(tab, site / "chapters" / f"{name}.html")
    assert tab.evaluate("document.documentElement.dataset.theme") == "light"
    light_background = tab.evaluate(LUMINANCE, ["body", "backgroundColor"])

    # the theme button cycles the modes (light, dark, system): click until the page is dark
    button = tab.locator("button.theme-switch-button")
    for _ in range(3):
        if tab.evaluate("document.documentElement.dataset.theme") == "dark":
            break
        button.click()
    assert tab.evaluate("document.documentElement.dataset.theme") == "dark", (
        "the theme button never gives dark"
    )
    tab.wait_for_timeout(300)  # the theme's colour transitions
    _screenshot(tab, seen["height"], SHOTS / f"dark-{name}.png")

    background = tab.evaluate(LUMINANCE, ["body", "backgroundColor"])
    text = tab.evaluate(LUMINANCE, ["article p", "color"])
    code = tab.evaluate(LUMINANCE, [".cell_input .highlight", "backgroundColor"])
    problems = []
    if background is None or background > 0.05:
        problems.append(f"background is not dark: luminance {background} (light theme: {light_background})")
    if text is None or text < 0.4:
        problems.append(f"text is not light: luminance {text}")
    if code is None or code > 0.1:
        problems.append(f"code cells are not dark: luminance {code}")
    if tab.locator("mjx-container").count() != seen["containers"] or seen["containers"] == 0:
        problems.append("math is not typeset in the dark theme")
    broken = tab.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
    if broken or not seen["images"]:
        problems.append(f"{broken} images do not load in the dark theme")
    if tab.js_errors:
        problems.append(f"JavaScript errors on the page: {tab.js_errors[:3]}")
    # the choice is remembered: the next page opens dark
    tab.goto((site / "intro.html").as_uri())
    if tab.evaluate("document.documentElement.dataset.theme") != "dark":
        problems.append("the dark theme is not kept on the next page")
    assert not problems, f"dark theme ({SHOTS / ('dark-' + name + '.png')}):\n- " + "\n- ".join(problems)


def _title_word(name: str) -> str:
    """The longest word of the chapter's title (its first '# ' heading)."""
    for cell in _notebook(name)["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return max(re.findall(r"[A-Za-z]{4,}", line), key=len)
    raise AssertionError(f"{name}.ipynb has no '# ' title")


@pytest.mark.parametrize("name", toc_chapters())
def test_search_finds_a_chapter(name, site, tab):
    word = _title_word(name)
    tab.goto((site / "search.html").as_uri() + f"?q={word}")
    results = tab.locator("#search-results")
    try:
        results.get_by_text(re.compile(r"Search finished|did not match")).wait_for()
    except Exception:
        pytest.fail(
            f"the search page never finished searching for {word!r}: "
            f"{results.inner_text()[:300]!r}, JavaScript errors {tab.js_errors[:3]}"
        )
    found = results.locator("li a").evaluate_all("links => links.map(a => a.href)")
    assert any(link.split("#")[0].split("?")[0].endswith(f"/chapters/{name}.html") for link in found), (
        f"searching {word!r} (from {name}'s title) does not find {name}.html: {found}"
    )
