"""Run the chapters under nbval with their small defaults: ``python tests/notebooks/run_nbval.py``.

nbval cannot read MyST, so each chapter ``notebooks/NN_name.md`` is first converted with
jupytext into ``build/nbval/NN_name/NN_name.ipynb`` (one folder per chapter: nbval runs a
notebook in its own folder, where the chapter saves into its ``out_dir`` default). Then pytest
runs with ``--nbval-lax``: every cell must run without an error; outputs are not compared
(figures and timings differ from run to run).

Usage::

    python tests/notebooks/run_nbval.py            # every chapter
    python tests/notebooks/run_nbval.py 1 3        # chapters 1 and 3
    python tests/notebooks/run_nbval.py -- -x      # arguments after -- go to pytest

Exit status: pytest's (0 when every cell of every chapter ran).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import pytest
from xfr_lib.chapters import inline_figures, list_chapters, resolve_chapter

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "nbval"
CELL_TIMEOUT_S = 1800


def convert(chapter: str) -> Path:
    """The chapter as an .ipynb under ``build/nbval/<chapter>/``, rewritten only if it changed."""
    nb = jupytext.read(ROOT / "notebooks" / f"{chapter}.md")
    target = BUILD / chapter / f"{chapter}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = jupytext.writes(nb, fmt="ipynb")
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    names = argv[:argv.index("--")] if "--" in argv else argv
    chapters = [resolve_chapter(n) for n in names] or list_chapters()
    paths = [str(convert(c)) for c in chapters]
    start = time.perf_counter()
    with inline_figures():  # figures are drawn as in the book, whatever MPLBACKEND says
        status = pytest.main(["-q", "-p", "no:cacheprovider", "--nbval-lax",
                              f"--nbval-cell-timeout={CELL_TIMEOUT_S}", "--rootdir", str(BUILD),
                              *extra, *paths])
    print(f"nbval: {len(paths)} chapter(s) in {time.perf_counter() - start:.0f} s")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
