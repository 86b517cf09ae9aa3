"""Lint the chapters like the library: ``python tests/notebooks/lint_notebooks.py``.

ruff cannot read MyST, so every chapter ``notebooks/NN_name.md`` is converted with jupytext to
a py:percent script ``build/lint/NN_name.py`` (Markdown cells become comments; each code cell
starts with a ``# %%`` line), and ruff checks those scripts with the project's configuration
(``pyproject.toml``). Each finding names the line of the chapter,
``notebooks/NN_name.md:<line>``, followed by the line of the script it was found in
(``build/lint/NN_name.py:<line>``, left there to read it against).

Usage::

    python tests/notebooks/lint_notebooks.py            # every chapter
    python tests/notebooks/lint_notebooks.py 1 3        # chapters 1 and 3

Exit status: ruff's (0 when there is nothing to report).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[2]
LINT_DIR = ROOT / "build" / "lint"


def convert(chapters: list[str] | None = None, notebooks: Path | None = None,
            out: Path = LINT_DIR) -> list[Path]:
    """Write each chapter as ``<out>/<chapter>.py`` (py:percent); return the paths.

    Args:
        chapters: chapter names (default: every ``NN_*.md`` in ``notebooks``).
        notebooks: the folder of chapters (default: the repository's ``notebooks/``).
        out: the folder of the scripts (stale scripts of removed chapters are deleted).
    """
    notebooks = notebooks or ROOT / "notebooks"
    names = chapters or sorted(p.stem for p in notebooks.glob("[0-9][0-9]_*.md"))
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("[0-9][0-9]_*.py"):
        if stale.stem not in names:
            stale.unlink()
    paths = []
    for name in names:
        nb = jupytext.read(notebooks / f"{name}.md")
        target = out / f"{name}.py"
        text = jupytext.writes(nb, fmt="py:percent")
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        paths.append(target)
    return paths


def ruff(paths: list[Path], *options: str) -> subprocess.CompletedProcess:
    """``ruff check`` over ``paths`` with the project's configuration; output captured."""
    exe = Path(sys.executable).with_name("ruff")
    cmd = [str(exe) if exe.is_file() else "ruff", "check", "--config",
           str(ROOT / "pyproject.toml"), *options, *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)


def md_line(script: Path, line: int, notebook: Path) -> int | None:
    """The line of ``notebook`` (MyST) that line ``line`` of its py:percent ``script`` comes from.

    Code lines are copied verbatim by jupytext, in order: the k-th occurrence of the text in
    the script is the k-th in the notebook. None when the line cannot be found (e.g. a magic).
    """
    lines = script.read_text(encoding="utf-8").splitlines()
    if not 0 < line <= len(lines) or not lines[line - 1].strip():
        return None
    text = lines[line - 1]
    k = lines[:line].count(text)
    hits = [i + 1 for i, t in enumerate(notebook.read_text(encoding="utf-8").splitlines())
            if t == text]
    return hits[k - 1] if len(hits) >= k else None


_FINDING = re.compile(r"^(?P<path>[^:\s]+\.py):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$")


def locate(output: str, notebooks: Path | None = None) -> str:
    """ruff's concise output with each finding moved to the chapter's own line."""
    notebooks = notebooks or ROOT / "notebooks"
    out = []
    for row in output.splitlines():
        m = _FINDING.match(row)
        script = Path(m["path"]) if m else None
        if script is not None and not script.is_absolute():
            script = ROOT / script
        source = notebooks / f"{script.stem}.md" if script is not None else None
        where = (md_line(script, int(m["line"]), source)
                 if source is not None and source.is_file() and script.is_file() else None)
        if where is None:
            out.append(row)
        else:
            rel = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
            out.append(f"{rel}:{where}:{m['col']}: {m['rest']}  [{m['path']}:{m['line']}]")
    return "\n".join(out) + ("\n" if out else "")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    from xfr_lib.runner import resolve_chapter

    chapters = [resolve_chapter(a) for a in argv] or None
    proc = ruff(convert(chapters), "--output-format", "concise")
    sys.stdout.write(locate(proc.stdout))
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
