"""The built book, looked at the way a reader sees it: served locally, opened in headless Chromium.

The book is built by ``make book`` (the chapters executed under nbval + ``jupyter-book build
-W``); the fixture runs it, which is a no-op when the build is up to date. Set
``XFR_BOOK_HTML`` to check another build folder instead (and ``XFR_BOOK_NOTEBOOKS`` for the
executed notebooks it was built from, ``XFR_NOTEBOOKS`` for their chapters' sources).

Every chapter page is opened at the window sizes of :data:`WINDOWS`. At the default one,
1280 x 800 (a laptop screen; the theme shows its left side bar and the page's contents on the
right), every table must fit the article's content box: it is readable in full without
scrolling. At 800 x 600 (headless Chromium's own default) and 500 x 800 (its narrowest window,
a phone's width) a table that cannot fit must sit in a horizontally scrollable box that itself
fits the column. At every size no cell may be cut off by an ancestor, overflow its own box or
be kept on one line (``white-space: nowrap``). Screenshots are kept in ``build/screenshots/``:
chapter 1, and each chapter scrolled to its widest table at 1280 x 800 and 500 x 800.

Solutions of exercises are folded until the reader opens them: the probe notes the page's
text as first shown, then opens every solution and measures the rest (tables, figures, text)
with them open.

Widgets (ipywidgets): a chapter that shows some is drawn by the vendored HTML manager from the
widget state its run saved (``tests/notebooks/nbval_record.py``); every widget a cell showed
must appear in the page, with no script error and nothing fetched that is not there. A chapter
without widgets loads none of that JavaScript. Whether or not any chapter has widgets yet, a
small chapter with a slider, a dropdown, a text box and an HTML widget is executed and built
into a book of its own with the book's configuration and checked the same way.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import MYST_HEADER
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import site_archive
import workshop_page

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("XFR_BOOK_HTML") or ROOT / "build" / "book" / "_build" / "html")
NOTEBOOKS = Path(os.environ.get("XFR_BOOK_NOTEBOOKS") or ROOT / "build" / "notebooks")
SCREENSHOTS = ROOT / "build" / "screenshots"
CH1 = "01_face_recognition"
# The chapters' sources: those of $XFR_NOTEBOOKS when set (as for tests/notebooks/run_nbval.py),
# to check with XFR_BOOK_HTML and XFR_BOOK_NOTEBOOKS a book built from other chapters.
CHAPTERS = sorted(p.stem for p in Path(os.environ.get("XFR_NOTEBOOKS") or ROOT / "notebooks")
                  .glob("[0-9][0-9]_*.md"))
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# (width, height) of the browser window. The default of these checks is a laptop screen, where
# every table must fit the article column; 800 x 600 is headless Chromium's own default and
# 500 x 800 its narrowest window (a phone), where a table may instead scroll in its own box.
DEFAULT_WINDOW = (1280, 800)
WINDOWS = [DEFAULT_WINDOW, (800, 600), (500, 800)]
SCREENSHOT_WINDOWS = [DEFAULT_WINDOW, (500, 800)]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars", "--mute-audio"]

# Put first in the <head> of a copy of a page: what went wrong in its scripts, as
# {kind, message, source}: uncaught errors, elements that could not load, unhandled promise
# rejections, and what was written to the console (the HTML manager reports there, e.g. when it
# falls back to a CDN). :func:`_widget_errors` picks those that concern widgets.
ERRORS = """
<script>
window.__xfrErrors = [];
window.addEventListener("error", e => window.__xfrErrors.push(e.message
  ? {kind: "error", message: String(e.message), source: `${e.filename}:${e.lineno}`}
  : {kind: "load", message: "could not load", source: e.target.src || e.target.href || ""}),
  true);
window.addEventListener("unhandledrejection", e => window.__xfrErrors.push(
  {kind: "rejection", message: String(e.reason && e.reason.stack || e.reason), source: ""}));
for (const level of ["error", "warn", "log"]) {
  const original = console[level];
  console[level] = (...args) => {
    window.__xfrErrors.push({kind: `console.${level}`, message: args.map(String).join(" "),
                             source: ""});
    original.apply(console, args);
  };
}
</script>
"""
# Words of the errors that concern widgets (not, e.g., the theme's own console messages).
WIDGET_WORDS = re.compile(r"widget|jupyter|require|module|model|cdn|fall(?:ing)? back",
                          re.IGNORECASE)

# Appended to a copy of a page: once the page (MathJax and widgets, if any) has finished, it
# writes what the browser actually loaded into a <pre> that --dump-dom then returns.
PROBE = """
<script>
window.addEventListener("load", () => {
  const report = () => {
    // What the reader sees first; then every folded solution is opened, as a reader may, and
    // the rest (tables, figures, the text with the solutions) is measured with them open.
    const text = (document.querySelector("article") || document.body).innerText;
    document.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
    const textOpen = (document.querySelector("article") || document.body).innerText;
    const imgs = [...document.querySelectorAll("article img")].map(i => ({
      src: i.currentSrc || i.src, w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}));
    const tables = [...document.querySelectorAll("article table")].map(t => ({
      id: t.id, rows: t.rows.length, caption: t.caption ? t.caption.textContent.trim() : ""}));
    const figures = [...document.querySelectorAll("article figure")].map(f => ({
      id: f.id, caption: (f.querySelector("figcaption") || {textContent: ""}).textContent.trim(),
      imgs: f.querySelectorAll("img").length}));
    const resources = performance.getEntriesByType("resource").map(r => r.name);
    const math = {version: window.MathJax && window.MathJax.version || null,
                  rendered: document.querySelectorAll("mjx-container").length};
    const layout = tableLayout();
    const widgets = widgetReport();
    const failed = performance.getEntriesByType("resource")
      .filter(r => r.responseStatus >= 400).map(r => `${r.responseStatus} ${r.name}`);
    const errors = window.__xfrErrors || [];
    const pre = document.createElement("pre");
    pre.id = "xfr-probe";
    pre.textContent = JSON.stringify({imgs, tables, figures, resources, math, layout, text,
                                      textOpen, widgets, failed, errors});
    document.body.appendChild(pre);
  };
  const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  Promise.all([mj || Promise.resolve(), widgetsDrawn()]).then(report, report);
});

// The widget views of the page (myst-nb's <script type="...widget-view+json">) and what the
// HTML manager drew for each: a div.widget-subarea put just before it, holding the widget.
const VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
const drawn = v => {
  const area = v.previousElementSibling;
  return area && area.classList.contains("widget-subarea") && area.querySelector(".jupyter-widgets")
    ? area : null;
};
function widgetsDrawn(limit = 20000) {  // resolves once every view is drawn, or after `limit` ms
  const views = [...document.querySelectorAll(VIEW)];
  const start = Date.now();
  return new Promise(resolve => {
    const poll = () => views.every(drawn) || Date.now() - start > limit
      ? resolve() : setTimeout(poll, 100);
    poll();
  });
}
function widgetReport() {
  const views = [...document.querySelectorAll(VIEW)];
  const areas = views.map(drawn).filter(Boolean);
  const article = document.querySelector("article.bd-article") || document.querySelector("article");
  let column = null;
  if (article) {  // the article's content box, as in tableLayout()
    const st = getComputedStyle(article), a = article.getBoundingClientRect();
    column = {left: Math.round(a.left + parseFloat(st.paddingLeft) + parseFloat(st.borderLeftWidth)),
              right: Math.round(a.right - parseFloat(st.paddingRight)
                                - parseFloat(st.borderRightWidth))};
  }
  const classes = [...new Set(areas.flatMap(area => [...area.querySelectorAll(".jupyter-widgets")]
    .flatMap(e => [...e.classList].filter(c => c.startsWith("widget-")))))].sort();
  return {
    views: views.map(v => { try { return JSON.parse(v.textContent).model_id; }
                            catch (e) { return null; } }),
    state: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')
      .length,
    drawn: areas.length,
    classes,
    boxes: areas.map(area => {  // the widget's box; left and right: of all it draws
      const r = area.firstElementChild.getBoundingClientRect();
      const parts = [r, ...[...area.querySelectorAll("*")].map(e => e.getBoundingClientRect())
        .filter(q => q.width > 0 && q.height > 0)];
      return {left: Math.round(Math.min(...parts.map(q => q.left))),
              right: Math.round(Math.max(...parts.map(q => q.right))),
              width: Math.round(r.width), height: Math.round(r.height)};
    }),
    column,
    texts: areas.map(area => area.innerText.trim()),
    inputs: areas.flatMap(area => [...area.querySelectorAll("input, select, textarea")]
      .map(i => i.value)),
  };
}

// Where every table of the article sits: the article's content box, each table's box, the
// horizontally scrollable box around it (if any), and its cells that a reader cannot see in
// full: cut off by an ancestor that hides overflow, wider than their own box, or nowrap.
function tableLayout() {
  const article = document.querySelector("article.bd-article") || document.querySelector("article");
  if (!article) return null;
  const st = getComputedStyle(article), a = article.getBoundingClientRect();
  const content = {left: a.left + parseFloat(st.paddingLeft) + parseFloat(st.borderLeftWidth),
                   right: a.right - parseFloat(st.paddingRight) - parseFloat(st.borderRightWidth)};
  const round = v => Math.round(v * 10) / 10;
  const box = r => ({left: round(r.left), right: round(r.right), width: round(r.width),
                     top: round(r.top + window.scrollY), bottom: round(r.bottom + window.scrollY)});
  const scroller = el => {
    for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      const ox = getComputedStyle(e).overflowX;
      if (ox === "auto" || ox === "scroll") return e;
      if (e === article) return null;
    }
    return null;
  };
  const clippers = (el, stop) => {  // ancestors below `stop` that cut off what overflows them
    const out = [];
    for (let e = el.parentElement; e && e !== stop && e !== document.documentElement;
         e = e.parentElement) {
      const ox = getComputedStyle(e).overflowX;
      if (ox === "hidden" || ox === "clip") out.push(e);
    }
    return out;
  };
  const label = c => (c.innerText || "").trim().slice(0, 40);
  const tables = [...article.querySelectorAll("table")].map(t => {
    const sc = scroller(t);
    const cells = [...t.querySelectorAll("th, td")];
    const hidden = [], overflowing = [], nowrap = [];
    for (const c of cells) {
      const r = c.getBoundingClientRect();
      for (const e of clippers(c, sc)) {
        const q = e.getBoundingClientRect();
        if (r.right > q.right + 1 || r.left < q.left - 1) { hidden.push(label(c)); break; }
      }
      if (c.scrollWidth > c.clientWidth + 1) overflowing.push(label(c));
      const ws = getComputedStyle(c).whiteSpace;
      if (ws.startsWith("nowrap") || ws === "pre") nowrap.push(label(c));
    }
    return {
      id: t.id || (t.closest("[id]") || {}).id || "",
      caption: t.caption ? t.caption.textContent.trim().slice(0, 60) : "",
      columns: t.rows.length ? t.rows[0].cells.length : 0,
      folded: Boolean(t.closest(".solution")),  // in a solution, shown when it is opened
      fontSize: getComputedStyle(t).fontSize,
      box: box(t.getBoundingClientRect()),
      captionBox: t.caption ? box(t.caption.getBoundingClientRect()) : null,
      scroller: sc ? {...box(sc.getBoundingClientRect()), clientWidth: sc.clientWidth,
                      scrollWidth: sc.scrollWidth, clipped: clippers(sc, null).some(e => {
                        const q = e.getBoundingClientRect(), r = sc.getBoundingClientRect();
                        return r.right > q.right + 1 || r.left < q.left - 1; })} : null,
      hidden, overflowing, nowrap,
    };
  });
  return {window: [window.innerWidth, window.innerHeight], content: box(content), tables};
}
</script>
"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium not found: run 'make setup' (installs Debian's chromium as root) "
                    "or 'apt-get install -y chromium'")
    return exe


@pytest.fixture(scope="module")
def book() -> Path:
    """The built site, (re)built by ``make book`` unless XFR_BOOK_HTML points at one."""
    if "XFR_BOOK_HTML" not in os.environ:
        proc = subprocess.run(["make", "--no-print-directory", "book"], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"make book failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (HTML_DIR / "index.html").is_file(), f"no built book in {HTML_DIR}"
    return HTML_DIR


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the book; ``/__probe__/<page>`` is the page with :data:`PROBE` appended."""

    def do_GET(self):
        if self.path.startswith("/__probe__/") and not self.path.split("?")[0].endswith(".html"):
            # A file that a script asks for relative to the page's own address (not <base>),
            # as the widget manager asks for its fonts: served from where it is.
            self.path = self.path.removeprefix("/__probe__")
        elif self.path.startswith("/__probe__/"):
            page = Path(self.directory) / self.path.removeprefix("/__probe__/").split("?")[0]
            text = page.read_text(encoding="utf-8")
            text = text.replace("<head>", '<head><base href="/">' + ERRORS, 1).replace(
                "</body>", PROBE + "</body>", 1)
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` (see :class:`_Handler`) on a free local port; yields its URL."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(book):
    with _serve(book) as url:
        yield url


def _run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
           "--virtual-time-budget=30000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _probe(server: str, page: str, tmp_path: Path,
           window: tuple[int, int] = DEFAULT_WINDOW) -> dict:
    proc = _run_chromium([f"--window-size={window[0]},{window[1]}", "--dump-dom",
                          f"{server}/__probe__/{page}"], tmp_path)
    match = re.search(r'<pre id="xfr-probe"[^>]*>(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, (f"the page {page} did not finish loading in Chromium (rc {proc.returncode}, "
                   f"{len(proc.stdout)} chars):\n{proc.stdout[-500:]}\n{proc.stderr[-1500:]}")
    return json.loads(html.unescape(match.group(1)))


# --- structure of the build (no browser) --------------------------------------------------------

def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
    assert [f for f in files if re.match(r"\d\d_", f)] == chapters
    for name in files:
        assert (re.match(r"\d\d_", name) or (ROOT / "book" / f"{name}.md").is_file()
                or (ROOT / "book" / f"{name}.md.jinja").is_file()), name  # made by make book


def test_no_page_loads_scripts_or_styles_from_the_internet(book):
    external = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"')
    offenders = {}
    for page in book.rglob("*.html"):
        for url in external.findall(page.read_text(encoding="utf-8")):
            offenders.setdefault(url, page.name)
    assert not offenders, f"external scripts/styles: {offenders}"
    for css in (book / "_static").rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:", text), css


def test_mathjax_and_widget_js_are_vendored(book):
    intro = (book / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]*src="_static/mathjax/es5/tex-mml-chtml\.js', intro)
    assert (book / "_static" / "mathjax" / "es5" / "output" / "chtml" / "fonts").is_dir()
    assert (book / "_static" / "html-manager" / "embed-amd.js").is_file()
    assert (book / "_static" / "requirejs" / "require.js").is_file()


# --- in the browser -----------------------------------------------------------------------------

def test_chapter_1_shows_its_figures_and_tables(server, tmp_path):
    seen = _probe(server, f"{CH1}.html", tmp_path)
    figures = {f["id"]: f for f in seen["figures"]}
    for label in ("fig-chips", "fig-scores", "fig-roc", "fig-folds", "fig-cmc"):
        assert label in figures, f"figure {label} missing; figures: {sorted(figures)}"
        assert figures[label]["imgs"] >= 1
        assert re.match(r"Fig(ure)?\.? 1\.\d+", figures[label]["caption"]), figures[label]
    assert len(seen["imgs"]) >= 5
    broken = [i["src"] for i in seen["imgs"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    tables = {t["caption"].split(" ", 2)[1].rstrip("."): t for t in seen["tables"]
              if t["caption"].startswith("Table")}
    assert len(tables) >= 3, seen["tables"]
    assert all(t["rows"] >= 3 for t in tables.values()), tables
    assert all(url.startswith(server) for url in seen["resources"]), (
        [u for u in seen["resources"] if not u.startswith(server)])


def test_formulas_are_typeset_by_the_local_mathjax(server, tmp_path):
    seen = _probe(server, "intro.html", tmp_path)
    assert seen["math"]["version"] and seen["math"]["version"].startswith("3.")
    assert seen["math"]["rendered"] >= 1
    assert any(u.startswith(f"{server}/_static/mathjax/") for u in seen["resources"])
    assert all(url.startswith(server) for url in seen["resources"])


def test_screenshot_of_chapter_1_is_not_blank(server, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{CH1}.png"
    shot.unlink(missing_ok=True)
    _run_chromium([f"--screenshot={shot}", "--window-size=1280,2000",
                   f"{server}/{CH1}.html"], tmp_path)
    assert shot.is_file(), "Chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 10  # text and figures, not an empty or error page


@pytest.fixture(scope="module")
def probe(server, tmp_path_factory):
    """``probe(page, window)``: what :data:`PROBE` saw, each page and window loaded once."""
    profile = tmp_path_factory.mktemp("chromium")
    seen: dict[tuple[str, tuple[int, int]], dict] = {}

    def load(page: str, window: tuple[int, int] = DEFAULT_WINDOW) -> dict:
        if (page, window) not in seen:
            seen[page, window] = _probe(server, page, profile, window)
        return seen[page, window]

    return load


def _table_problems(chapter: str, layout: dict, must_fit: bool) -> list[str]:
    """What keeps a reader from reading each table of a page in full (see the module docstring)."""
    problems = []
    left, right = layout["content"]["left"], layout["content"]["right"]
    for t in layout["tables"]:
        number = re.match(r"Table \S+\d", t["caption"])
        name = f"{chapter}: {number.group(0) if number else 'a table'} ({t['id'] or 'no id'})"
        b, sc = t["box"], t["scroller"]
        fits = b["left"] >= left - 1 and b["right"] <= right + 1
        if must_fit and not fits:
            problems.append(f"{name}: {b['width']} px wide in a {right - left:.0f} px column")
        elif not fits and sc is None:
            problems.append(f"{name}: {b['width']} px wide in a {right - left:.0f} px column, "
                            f"and not in a horizontally scrollable box")
        elif not fits and (sc["left"] < left - 1 or sc["right"] > right + 1 or sc["clipped"]):
            problems.append(f"{name}: its scrollable box ({sc['left']}-{sc['right']} px) spills "
                            f"out of the column ({left:.0f}-{right:.0f} px)")
        elif not fits and sc["scrollWidth"] < b["width"] - 1:
            problems.append(f"{name}: its box scrolls over {sc['scrollWidth']} px of a "
                            f"{b['width']} px table")
        cap, view = t.get("captionBox"), sc if sc is not None else {"left": left, "right": right}
        if cap and (cap["left"] < max(left, view["left"]) - 1
                    or cap["right"] > min(right, view["right"]) + 1):
            problems.append(f"{name}: its caption ({cap['left']}-{cap['right']} px) is not "
                            f"all in view")
        for kind, what in (("hidden", "cut off by an ancestor"),
                           ("overflowing", "wider than their column"),
                           ("nowrap", "kept on one line (nowrap)")):
            if t[kind]:
                problems.append(f"{name}: cells {what}: {t[kind][:5]}")
    return problems


@pytest.mark.parametrize("window", WINDOWS, ids=[f"{w}x{h}" for w, h in WINDOWS])
def test_every_table_is_readable_in_full(probe, server, tmp_path, window):
    """At the default window every table fits the column; in narrower ones it may scroll."""
    problems, count = [], 0
    for chapter in CHAPTERS:
        layout = probe(f"{chapter}.html", window)["layout"]
        assert layout is not None, f"{chapter}: no article in the page"
        assert layout["window"][0] == window[0], layout["window"]
        count += len(layout["tables"])
        problems += _table_problems(chapter, layout, must_fit=window == DEFAULT_WINDOW)
        if window in SCREENSHOT_WINDOWS:
            _screenshot_widest_table(server, tmp_path, chapter, layout, window)
    assert count >= len(CHAPTERS), f"only {count} tables in {len(CHAPTERS)} chapters"
    assert not problems, (f"tables not readable in full at {window[0]}x{window[1]}:\n"
                          + "\n".join(problems))


def test_the_table_check_sees_a_table_that_does_not_fit():
    """The checks above on made-up layouts: the one the theme gave Table 2.1 before xfr.css."""
    layout = {"content": {"left": 288, "right": 976}, "tables": [{
        "id": "tab-wide", "caption": "Table 2.1 Wide", "box": {"left": 288, "right": 1163,
                                                                "width": 875},
        "captionBox": {"left": 288, "right": 976, "width": 688},
        "scroller": {"left": 288, "right": 976, "width": 688, "clientWidth": 688,
                     "scrollWidth": 875, "clipped": False},
        "hidden": [], "overflowing": [], "nowrap": []}]}
    assert _table_problems("02", layout, must_fit=False) == []  # it scrolls in its box
    assert "875 px wide in a 688 px column" in _table_problems("02", layout, must_fit=True)[0]
    layout["tables"][0]["scroller"] = None
    assert "not in a horizontally scrollable box" in _table_problems("02", layout, False)[0]
    layout["tables"][0].update(scroller={"left": 288, "right": 1163, "width": 875,
                                         "clientWidth": 875, "scrollWidth": 875,
                                         "clipped": True}, nowrap=["pair"])
    found = _table_problems("02", layout, False)
    assert "spills out of the column" in found[0] and "nowrap" in found[1]
    layout["tables"][0].update(captionBox={"left": 288, "right": 1163, "width": 875},
                               scroller={"left": 288, "right": 976, "width": 688,
                                         "clientWidth": 688, "scrollWidth": 875,
                                         "clipped": False}, nowrap=[])
    assert ["caption" in p for p in _table_problems("02", layout, False)] == [True]


def test_the_book_css_is_linked_from_every_page_and_mathjax_only_once(book):
    for page in sorted(book.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        if "<article" not in text:
            continue
        assert re.search(r'<link[^>]+href="_static/xfr\.css', text), f"{page.name}: no xfr.css"
        scripts = re.findall(r'<script[^>]*src="_static/mathjax/[^"]*"', text)
        assert len(scripts) <= 1, f"{page.name} loads {len(scripts)} MathJax scripts"


def _screenshot_widest_table(server, tmp_path, chapter, layout, window) -> None:
    """``build/screenshots/<chapter>-table-<w>x<h>.png``: the page around its widest table.

    Headless Chromium paints nothing when it is asked to scroll before a screenshot, so the
    window is made as tall as the page down to the table (its width, hence the layout, stays
    that of ``window``) and the picture is cropped around the table.
    """
    tables = [t for t in layout["tables"] if t["id"] and not t["folded"]]  # as first shown
    if not tables:
        return
    widest = max(tables, key=lambda t: (t["columns"], t["box"]["width"]))
    top, bottom = int(widest["box"]["top"]) - 80, int(widest["box"]["bottom"]) + 40
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{chapter}-table-{window[0]}x{window[1]}.png"
    shot.unlink(missing_ok=True)
    height = max(bottom, window[1])
    _run_chromium([f"--screenshot={shot}", f"--window-size={window[0]},{height}",
                   f"{server}/{chapter}.html"], tmp_path)
    assert shot.is_file(), f"Chromium wrote no screenshot of {chapter}"
    image = Image.open(shot)
    image.crop((0, max(0, top), window[0], min(bottom, image.height))).save(shot)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10, f"the screenshot of {chapter}'s table {widest['id']} is blank"


# --- what the executed notebooks hold reaches the page ----------------------------------------

def _executed(chapter: str) -> dict:
    """The executed notebook the book page was built from (build/notebooks/<chapter>/)."""
    return json.loads((NOTEBOOKS / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8"))


def _tokens(text: str) -> str:
    """Letters and digits only, one space apart: what survives Markdown and HTML alike."""
    return " ".join(re.findall(r"[^\W_]+", text))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_glued_values_markdown_outputs_and_figures_reach_the_page(probe, chapter):
    """What the chapter's run computed (glue, Markdown it displayed, figures) is on its page."""
    nb = _executed(chapter)
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    seen = probe(f"{chapter}.html")
    text = " ".join(seen["textOpen"].split())  # with the solutions open
    page = _tokens(text)
    assert "{glue" not in text and "{numref" not in text, "an unrendered role in the page"
    glued, shown, pngs = {}, [], 0
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-output", "remove-cell"} & set(tags):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            scrap = out.get("metadata", {}).get("scrapbook")
            if scrap:
                value = data.get(f"{scrap.get('mime_prefix', '')}text/markdown")
                if value is not None:
                    glued[scrap["name"]] = "".join(value)
            elif "text/markdown" in data:
                shown.append("".join(data["text/markdown"]))
            elif "image/png" in data:
                pngs += 1
    quoted = set(re.findall(r"\{glue(?::md|:text)?\}`([^`]+)`", source))
    assert not quoted - set(glued), f"quoted but not glued: {sorted(quoted - set(glued))}"
    for key in sorted(quoted):
        assert _tokens(glued[key]) in page, f"glued {key} = {glued[key]!r} is not on the page"
    for md in shown:  # tables are checked by the table tests; sentences by their words
        if md.lstrip().startswith(("```", ":::", "|")):
            continue
        # the longest stretch without roles, math or link targets, which render differently
        pieces = re.split(r"\{[\w:-]+\}`[^`]*`|\$[^$]*\$|\]\([^)]*\)", md)
        words = " ".join(max((_tokens(p).split() for p in pieces), key=len)[:8])
        assert words in page, f"the Markdown output {md[:80]!r} is not on the page"
    loaded = [i for i in seen["imgs"] if i["complete"] and i["w"] > 0 and i["h"] > 0]
    assert len(loaded) >= pngs, f"{pngs} figures in the notebook, {len(loaded)} shown"


# --- widgets ------------------------------------------------------------------------------------

def _widget_views(nb: dict) -> list[str]:
    """Model ids of the widgets the notebook's cells show, in order (outputs the page keeps)."""
    ids = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-output", "remove-cell"} & set(tags):
            continue
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW_MIME)
            if view is not None:
                ids.append(view["model_id"])
    return ids


def _widget_state(nb: dict) -> dict:
    """The saved widget state's models by id ({} when the notebook saved none)."""
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})


def _widget_page_problems(name: str, nb: dict, page: str) -> list[str]:
    """What keeps the widgets of a notebook from being drawn in its built ``page`` (HTML text)."""
    views, state = _widget_views(nb), _widget_state(nb)
    in_page = re.findall(rf'<script type="{re.escape(WIDGET_VIEW_MIME)}">', page)
    state_scripts = len(re.findall(rf'<script type="{re.escape(WIDGET_STATE_MIME)}">', page))
    manager = re.search(r'<script[^>]*src="_static/html-manager/embed-amd\.js', page)
    if not views and not in_page:
        return [f"{name}: shows no widget but its page loads the widget state or manager"] if (
            state_scripts or manager) else []
    problems = []
    if not state:
        problems.append(f"{name}: {len(views) or len(in_page)} widget view(s) but no widget state "
                        f"in its notebook (executed by tests/notebooks/run_nbval.py?)")
    missing = [v for v in views if v not in state]
    if state and missing:
        problems.append(f"{name}: widgets shown but not in the saved state (closed?): {missing}")
    if len(in_page) != len(views):
        problems.append(f"{name}: {len(views)} widget views in the notebook, {len(in_page)} in "
                        f"the page")
    if state_scripts != 1 or not manager:
        problems.append(f"{name}: the page has {state_scripts} widget state script(s) and "
                        f"{'the' if manager else 'no'} vendored HTML manager")
    return problems


def _widget_browser_problems(name: str, seen: dict, views: list[str]) -> list[str]:
    """What keeps the widgets from showing in the browser, from :data:`PROBE`'s report."""
    w, problems = seen["widgets"], []
    if w["views"] != views:
        problems.append(f"{name}: the page's widget views {w['views']} are not the notebook's "
                        f"{views}")
    if w["drawn"] != len(views):
        problems.append(f"{name}: {w['drawn']} of {len(views)} widgets drawn")
    column = w["column"]
    for i, b in enumerate(w["boxes"]):
        if b["width"] <= 0 or b["height"] <= 0:
            problems.append(f"{name}: widget {i} is drawn empty ({b['width']} x {b['height']})")
        elif column and (b["left"] < column["left"] - 1 or b["right"] > column["right"] + 1):
            problems.append(f"{name}: widget {i} ({b['left']}-{b['right']} px) spills out of the "
                            f"article ({column['left']}-{column['right']} px)")
    errors = _widget_errors(seen["errors"])
    if errors:
        problems.append(f"{name}: script errors: {errors[:5]}")
    failed = [f for f in seen["failed"] if not f.endswith("/favicon.ico")]
    if failed:
        problems.append(f"{name}: failed to load: {failed[:5]}")
    return problems


def _widget_errors(errors: list[dict]) -> list[str]:
    """The errors of :data:`ERRORS` that concern widgets: from the manager or RequireJS, about
    widgets, modules or a CDN, anything that could not load, any unhandled rejection."""
    def concerns_widgets(e: dict) -> bool:
        if e["kind"] == "console.log":  # the manager logs where it fetches a module from
            return bool(re.search(r"falling back|loading from|cdn", e["message"],
                                  re.IGNORECASE))
        return (e["kind"] in ("load", "rejection") or "html-manager" in e["source"]
                or "requirejs" in e["source"] or bool(WIDGET_WORDS.search(e["message"])))

    return [f"{e['kind']}: {e['message'][:300]} {e['source']}".strip() for e in errors
            if concerns_widgets(e)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_widgets_are_drawn_from_the_saved_state(book, probe, chapter):
    """A chapter's widgets are in its page and drawn there; a chapter without loads no widget JS."""
    nb = _executed(chapter)
    page = (book / f"{chapter}.html").read_text(encoding="utf-8")
    problems = _widget_page_problems(chapter, nb, page)
    assert not problems, "\n".join(problems)
    views = _widget_views(nb)
    if views:
        problems = _widget_browser_problems(chapter, probe(f"{chapter}.html"), views)
        assert not problems, "\n".join(problems)


def test_the_widget_checks_see_views_without_state_and_widgets_not_drawn():
    """The checks above on made-up notebooks, pages and browser reports."""
    view = {"output_type": "display_data", "metadata": {},
            "data": {WIDGET_VIEW_MIME: {"model_id": "m1", "version_major": 2,
                                        "version_minor": 0}, "text/plain": "IntSlider()"}}
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "outputs": [view]}]}
    tags = ('<script type="application/vnd.jupyter.widget-view+json">{}</script>'
            '<script type="application/vnd.jupyter.widget-state+json">{}</script>'
            '<script data-jupyter-widgets-cdn="_static/html-manager/" '
            'src="_static/html-manager/embed-amd.js?v=1"></script>')
    assert "no widget state in its notebook" in _widget_page_problems("13", nb, tags)[0]
    nb["metadata"] = {"widgets": {WIDGET_STATE_MIME: {"state": {"m2": {}}}}}
    assert "not in the saved state (closed?): ['m1']" in _widget_page_problems("13", nb, tags)[0]
    nb["metadata"]["widgets"][WIDGET_STATE_MIME]["state"]["m1"] = {}
    assert _widget_page_problems("13", nb, tags) == []
    assert "0 widget state script(s)" in _widget_page_problems(
        "13", nb, tags.replace("widget-state", "widget-gone"))[0]
    nb["cells"][0]["metadata"]["tags"] = ["remove-output"]  # not shown: nothing to draw
    assert _widget_page_problems("13", nb, "<p>no widgets</p>") == []
    no_view = tags.split("</script>", 1)[1]
    assert "loads the widget state or manager" in _widget_page_problems("13", nb, no_view)[0]
    seen = {"widgets": {"views": ["m1"], "drawn": 0, "column": {"left": 0, "right": 100},
                        "boxes": []},
            "failed": ["404 http://x/favicon.ico"],
            "errors": [{"kind": "console.error", "message": "Got invalid theme mode", "source": ""},
                       {"kind": "console.log", "message": "Falling back to https://cdn for m",
                        "source": ""}]}
    found = _widget_browser_problems("13", seen, ["m1"])
    assert len(found) == 2 and "0 of 1 widgets drawn" in found[0], found
    assert "Falling back" in found[1] and "theme" not in found[1]
    seen["widgets"].update(drawn=1, boxes=[{"left": 0, "right": 120, "width": 120, "height": 30}])
    seen["errors"], seen["failed"] = [], ["404 http://x/_static/html-manager/f.woff2"]
    found = _widget_browser_problems("13", seen, ["m1"])
    assert "spills out of the article" in found[0] and "f.woff2" in found[1], found


WIDGET_CHAPTER = MYST_HEADER + """
# Widgets

```{code-cell} ipython3
:tags: [parameters]

out_dir = "out"
```

```{code-cell} ipython3
import ipywidgets as widgets
from IPython.display import display

slider = widgets.IntSlider(value=7, min=0, max=10, description="pairs")
display(slider)
display(widgets.Dropdown(options=["dlib", "sface"], value="sface", description="model"))
display(widgets.Text(value="typed", description="name"))
widgets.HTML("<b>similarity 0.73</b>")
```
"""


def test_a_chapter_with_widgets_is_drawn_offline_from_its_saved_state(book, tmp_path):
    """The whole way, whether or not a chapter has widgets yet: executed under nbval (the
    pipeline of every chapter), built with the book's configuration and vendored JavaScript,
    drawn in Chromium with the values the kernel had, nothing loaded from elsewhere."""
    chapter = "01_widgets"
    sources = tmp_path / "notebooks"
    sources.mkdir()
    (sources / f"{chapter}.md").write_text(WIDGET_CHAPTER, encoding="utf-8")
    executed = tmp_path / "executed"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "notebooks" / "run_nbval.py"), "--out",
         str(executed), chapter], capture_output=True, text=True, cwd=ROOT, timeout=600,
        check=False, env={**os.environ, "XFR_NOTEBOOKS": str(sources)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    notebook = executed / chapter / f"{chapter}.ipynb"
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    views, state = _widget_views(nb), _widget_state(nb)
    assert len(views) == 4 and set(views) <= set(state), (views, sorted(state))
    # A book of this one page, staged as `make book` stages the real one.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "book" / "_styles", src / "_styles")
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / "book" / name, src / name)
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: {chapter}\n", encoding="utf-8")
    shutil.copy(notebook, src / notebook.name)
    for vendored in ("html-manager", "requirejs"):
        shutil.copytree(book / "_static" / vendored, src / "_vendor" / vendored)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", str(src), "--path-output",
         str(tmp_path / "site"), "-W", "--keep-going", "-n", "--quiet"],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site" / "_build" / "html"
    page = (site / f"{chapter}.html").read_text(encoding="utf-8")
    assert not _widget_page_problems(chapter, nb, page)
    assert not re.search(r'<script[^>]*src="(?:https?:)?//', page)
    with _serve(site) as url:
        seen = _probe(url, f"{chapter}.html", tmp_path)
    problems = _widget_browser_problems(chapter, seen, views)
    assert not problems, "\n".join(problems)
    w = seen["widgets"]
    assert {"widget-slider", "widget-dropdown", "widget-text", "widget-html"} <= set(w["classes"])
    assert w["texts"][0].split() == ["pairs", "7"], w["texts"]  # the slider's label and readout
    assert "sface" in w["inputs"] and "typed" in w["inputs"], w["inputs"]
    assert w["texts"][3] == "similarity 0.73", w["texts"]
    assert all(u.startswith(url) for u in seen["resources"]), seen["resources"]
    assert any(u.startswith(f"{url}/_static/html-manager/embed-amd.js") for u in seen["resources"])


# --- exercises and the workshop page -----------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_are_hidden_until_asked(book, probe, chapter):
    """Every exercise is on the page with its solution, folded: the solution's code is in the
    page but not in what the reader sees until they open it."""
    found = workshop_page.exercises(_executed_node(chapter), chapter)
    page = (book / f"{chapter}.html").read_text(encoding="utf-8")
    assert len(re.findall(r'class="solution dropdown', page)) == len(found), chapter
    text = probe(f"{chapter}.html")["text"]
    assert text.count("Exercise") >= len(found)
    for ex in found.values():
        line = max((ln.strip() for c in ex.code for ln in c.splitlines()), key=len)
        assert _tokens(line) in _tokens(html.unescape(re.sub(r"<[^>]+>", "", page))), ex.label
        assert line not in text, f"{ex.label}: the solution is shown before it is asked for"


def _executed_node(chapter: str):
    import nbformat

    return nbformat.read(NOTEBOOKS / chapter / f"{chapter}.ipynb", as_version=4)


def test_the_workshop_page_gives_the_runs_timings(book):
    """The page's run times are those of the executed chapters' parameters.yaml."""
    page = (book / "workshop.html").read_text(encoding="utf-8")
    for chapter in ("01_face_recognition", "13_workshop"):
        seconds = yaml.safe_load((NOTEBOOKS / chapter / "parameters.yaml").read_text())["seconds"]
        row = re.search(rf'<tr[^>]*>\s*<td[^>]*><p><a[^>]*href="{chapter}.html".*?</tr>', page,
                        re.DOTALL)
        assert row, f"no row for {chapter} in the workshop page"
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.DOTALL)
        assert float(re.sub(r"<[^>]+>", "", cells[1])) == pytest.approx(seconds / 60, abs=0.051)


# --- the site as one file ----------------------------------------------------------------------

def _probe_from_disk(page: Path, tmp_path: Path) -> dict:
    """:data:`PROBE`'s report on ``page`` opened from disk (file://), as a reader would."""
    copy = page.with_name(f"probe-{page.name}")  # beside it: its relative links still resolve
    text = page.read_text(encoding="utf-8")
    copy.write_text(text.replace("<head>", "<head>" + ERRORS, 1)
                    .replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    proc = _run_chromium(["--window-size=1280,800", "--dump-dom", copy.as_uri()], tmp_path)
    match = re.search(r'<pre id="xfr-probe"[^>]*>(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, f"{page.name} did not finish loading from disk:\n{proc.stderr[-1500:]}"
    return json.loads(html.unescape(match.group(1)))


def test_the_site_archive_opens_from_disk(book, tmp_path):
    archive = book.parents[1] / "xfr-book.zip"
    digest, name = (book.parents[1] / "xfr-book.zip.sha256").read_text().split()
    assert name == archive.name
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(archive) as zf:
        members = set(zf.namelist())
        zf.extractall(tmp_path / "unpacked")
    pages = {p.relative_to(book).as_posix() for p in book.glob("*.html")}
    assert {f"{site_archive.PREFIX}/{p}" for p in pages} <= members
    site = tmp_path / "unpacked" / site_archive.PREFIX
    seen = _probe_from_disk(site / "intro.html", tmp_path)
    assert seen["math"]["rendered"] >= 1 and not seen["failed"]
    assert all(u.startswith(site.as_uri()) for u in seen["resources"]), seen["resources"]
    for chapter in CHAPTERS:
        views = _widget_views(_executed(chapter))
        if views:
            seen = _probe_from_disk(site / f"{chapter}.html", tmp_path)
            problems = _widget_browser_problems(chapter, seen, views)
            assert not problems, "\n".join(problems)
            assert all(u.startswith(site.as_uri()) for u in seen["resources"])


def test_the_site_archive_is_reproducible(tmp_path):
    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")
    (site / "_static" / "a.js").write_text("let a;")
    (site / ".doctrees").mkdir()
    (site / ".doctrees" / "x.pickle").write_bytes(b"build state")
    first = site_archive.write_archive(site, tmp_path / "a.zip")
    os.utime(site / "index.html", (0, 0))  # another build: other dates, same content
    assert site_archive.write_archive(site, tmp_path / "b.zip") == first
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.namelist() == ["xfr-book/_static/a.js", "xfr-book/index.html"]
    assert (tmp_path / "a.zip.sha256").read_text() == f"{first}  a.zip\n"
    assert (tmp_path / "a.zip").stat().st_mode & 0o777 == 0o644
