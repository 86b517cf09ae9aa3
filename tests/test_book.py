"""The built book, looked at the way a reader sees it: served locally, opened in headless Chromium.

The book is built by ``make book`` (executed chapters + ``jupyter-book build -W``); the fixture
runs it, which is a no-op when the build is up to date. Set ``XFR_BOOK_HTML`` to check another
build folder instead. A screenshot of chapter 1 is written to ``build/screenshots/``.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("XFR_BOOK_HTML") or ROOT / "build" / "book" / "_build" / "html")
SCREENSHOTS = ROOT / "build" / "screenshots"
CH1 = "01_face_recognition"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars", "--mute-audio"]

# Appended to a copy of a page: once the page (and MathJax, if any) has finished, it writes
# what the browser actually loaded into a <pre> that --dump-dom then returns.
PROBE = """
<script>
window.addEventListener("load", () => {
  const report = () => {
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
    const pre = document.createElement("pre");
    pre.id = "xfr-probe";
    pre.textContent = JSON.stringify({imgs, tables, figures, resources, math});
    document.body.appendChild(pre);
  };
  const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  (mj || Promise.resolve()).then(report, report);
});
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
        if self.path.startswith("/__probe__/"):
            page = Path(self.directory) / self.path.removeprefix("/__probe__/").split("?")[0]
            text = page.read_text(encoding="utf-8")
            text = text.replace("<head>", '<head><base href="/">', 1).replace(
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


@pytest.fixture(scope="module")
def server(book):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(book)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
           "--virtual-time-budget=30000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _probe(server: str, page: str, tmp_path: Path) -> dict:
    proc = _run_chromium(["--dump-dom", f"{server}/__probe__/{page}"], tmp_path)
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
        assert re.match(r"\d\d_", name) or (ROOT / "book" / f"{name}.md").is_file(), name


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
