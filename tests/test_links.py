"""Every internal link of the built book resolves: each href/src of every built .html file names a
file that exists, and each #anchor an id on the page it points to. External links (http(s),
mailto, ...) are not fetched here (no network in tests): the scheduled GitHub workflow runs
Sphinx's linkcheck on them.
"""

from __future__ import annotations

import html.parser
import pathlib
import urllib.parse

import pytest

from book_build import build_book

EXTERNAL = ("http:", "https:", "mailto:", "javascript:", "data:", "tel:", "ftp:", "//")


class _Page(html.parser.HTMLParser):
    """Collects a page's ids/names and its internal href/src references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []  # (tag.attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src") and tag != "base":
                self.refs.append((f"{tag}.{name}", value.strip()))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    html_dir = build_book(tmp_path_factory)
    parsed = {}
    for path in sorted(html_dir.rglob("*.html")):
        if path.relative_to(html_dir).parts[0] == "_static":
            continue  # the themes' Jinja macro files copied as they are, not pages
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        parsed[path] = page
    return html_dir, parsed


def _broken_links(html_dir: pathlib.Path, parsed: dict) -> list[str]:
    broken = []
    for path, page in parsed.items():
        for where, ref in page.refs:
            if not ref or ref == "#" or ref.lower().startswith(EXTERNAL):
                continue
            parts = urllib.parse.urlsplit(ref)
            target = path if not parts.path else (path.parent / urllib.parse.unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            label = f"{path.relative_to(html_dir)}: {where}={ref!r}"
            if not target.is_file():
                broken.append(f"{label} -> missing file")
                continue
            try:
                target.relative_to(html_dir.resolve())
            except ValueError:
                broken.append(f"{label} -> points outside the book")
                continue
            anchor = urllib.parse.unquote(parts.fragment)
            if anchor and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _ids_of(target)
                if anchor not in ids:
                    broken.append(f"{label} -> no id {anchor!r} in {target.name}")
    return broken


def _ids_of(path: pathlib.Path) -> set[str]:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page.ids


def test_every_internal_link_and_anchor_resolves(pages):
    html_dir, parsed = pages
    html_dir = html_dir.resolve()
    parsed = {p.resolve(): v for p, v in parsed.items()}
    assert len(parsed) >= 3, f"only {len(parsed)} HTML files were built"
    n_refs = sum(len(p.refs) for p in parsed.values())
    broken = _broken_links(html_dir, parsed)
    assert not broken, f"{len(broken)} of {n_refs} internal links are broken:\n" + "\n".join(broken[:40])


def test_the_checker_sees_a_broken_link(tmp_path):
    """The checker itself: a missing file and a missing anchor are both reported."""
    (tmp_path / "a.html").write_text(
        '<p id="here"><a href="#here">ok</a><a href="b.html#gone">x</a>'
        '<img src="nope.png"><a href="https://example.org/">ext</a></p>'
    )
    (tmp_path / "b.html").write_text('<h1 id="there">b</h1>')
    parsed = {p: _Page() for p in sorted(tmp_path.glob("*.html"))}
    for p, page in parsed.items():
        page.feed(p.read_text())
    parsed = {p.resolve(): v for p, v in parsed.items()}
    broken = _broken_links(tmp_path.resolve(), parsed)
    assert len(broken) == 2 and "no id 'gone'" in broken[0] and "missing file" in broken[1], broken
