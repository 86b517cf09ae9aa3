"""Execute chapters under nbval and keep the executed notebooks: ``python tests/notebooks/run_nbval.py``.

This is the one place where the book's chapters are executed (``make test`` and ``make book``
both come here, through the Makefile's ``.done`` stamps). For each chapter:

1. :func:`xfr_lib.runner.prepare_chapter` checks the parameters (an unknown name or a value
   of the wrong type is refused before anything runs, for every chapter asked for) and writes
   the parameterised notebook ``<out>/<chapter>/<chapter>.ipynb`` and ``parameters.yaml``;
2. pytest runs it with nbval (``--nbval-lax``: every cell must run without an error; outputs
   are not compared), in that folder, where the chapter saves its figures and tables;
3. the plugin :mod:`nbval_record` writes what each cell showed back into the notebook
   (atomically, also for a chapter that failed, whose partial notebook ends with the error);
4. ``parameters.yaml`` gets the status and seconds (``PreparedChapter.finish``) and, only when
   every cell ran, ``<out>/<chapter>/.done`` is written. The stamp is removed before the run,
   so a failed or interrupted chapter never looks finished to the book build.

Parameters: the chapter's book values (``notebooks/params/<chapter>-book.yaml``, or its
defaults when it has none); ``--defaults`` uses the defaults only; ``--overrides FILE`` adds
per-chapter values from a YAML mapping ``<chapter>: {name: value}`` (e.g.
``tests/notebooks/sface.yaml``), which must have an entry for every chapter run.

Usage::

    python tests/notebooks/run_nbval.py                        # every chapter, book values
    python tests/notebooks/run_nbval.py 1 3                    # chapters 1 and 3
    python tests/notebooks/run_nbval.py --defaults --overrides tests/notebooks/sface.yaml \\
        --out build/nbval-sface                                # the SFace runs
    python tests/notebooks/run_nbval.py 2 -- -x -v             # arguments after -- go to pytest

Exit status: 0 when every cell of every chapter ran; pytest's status (1) when a cell failed,
with pytest's report naming the notebook and the cell; 2 for bad arguments or parameters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nbval_record import STATUS_OK, NotebookResult, RecordOutputs

from xfr_lib.errors import XfrError
from xfr_lib.runner import (
    ChapterError,
    PreparedChapter,
    inline_figures,
    list_chapters,
    params_file,
    prepare_chapter,
    resolve_chapter,
    resolve_parameters,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "build" / "notebooks"
STAMP = ".done"
CELL_TIMEOUT_S = 1800


def load_overrides(path: str | Path, chapters: list[str]) -> dict[str, dict[str, Any]]:
    """Per-chapter overrides from a YAML mapping ``<chapter>: {name: value}``.

    Keys may be chapter names or numbers. Raises :class:`ChapterError` for a key that names no
    chapter, an entry that is not a mapping, or a chapter of ``chapters`` without an entry.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ChapterError(f"override file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ChapterError(f"override file {path} must map chapters to 'name: value' mappings")
    table: dict[str, dict[str, Any]] = {}
    for key, values in data.items():
        try:
            name = resolve_chapter(key)
        except XfrError as exc:
            raise ChapterError(f"override file {path}: {exc}") from None
        if not isinstance(values, dict):
            raise ChapterError(f"override file {path}: the entry of {name} must be a mapping "
                               f"'name: value', got {type(values).__name__}")
        table[name] = values
    missing = [c for c in chapters if c not in table]
    if missing:
        raise ChapterError(f"override file {path} has no entry for {', '.join(missing)}")
    return table


def plan(chapters: list[str], defaults: bool,
         overrides: dict[str, dict[str, Any]]) -> list[tuple[str, Path | None, dict]]:
    """(chapter, parameter file, overrides) of every run, all checked before any runs."""
    runs = []
    for chapter in chapters:
        book = None if defaults else params_file(chapter, "book")
        values = overrides.get(chapter, {})
        resolve_parameters(chapter, params_file=book, overrides=values)  # raises ChapterError
        runs.append((chapter, book, values))
    return runs


def run(chapters: list[str], out_root: Path, defaults: bool = False,
        overrides: dict[str, dict[str, Any]] | None = None,
        pytest_args: list[str] | None = None) -> tuple[int, dict[str, NotebookResult]]:
    """Prepare, execute under nbval and record ``chapters``; see the module docstring.

    Returns:
        pytest's exit status and each chapter's :class:`NotebookResult` (a chapter missing
        from it never started).
    """
    runs = plan(chapters, defaults, overrides or {})
    prepared: dict[Path, PreparedChapter] = {}
    for chapter, book, values in runs:
        out = out_root / chapter
        (out / STAMP).unlink(missing_ok=True)
        p = prepare_chapter(chapter, params_file=book, overrides=values, out_dir=out)
        p.record["status"] = "running"
        p.record["executed_by"] = "nbval (tests/notebooks/run_nbval.py)"
        prepared[p.notebook.resolve()] = p
    results: dict[str, NotebookResult] = {}

    def finished(result: NotebookResult) -> None:
        p = prepared.get(result.path)
        if p is None:
            return
        results[p.name] = result
        p.finish(result.status, result.seconds,
                 None if result.status == STATUS_OK else result.error,
                 since=result.started_wall)
        if result.status == STATUS_OK:
            (p.out / STAMP).write_text(f"ok in {result.seconds:.1f} s\n", encoding="utf-8")

    plugin = RecordOutputs(on_finish=finished)
    args = ["-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",  # nbval is imported already
            f"--color={'yes' if sys.stdout.isatty() else 'no'}",
            f"--nbval-cell-timeout={CELL_TIMEOUT_S}", "--rootdir", str(out_root),
            *(pytest_args or []), *(str(p) for p in prepared)]
    with inline_figures():  # figures are drawn as in the book, whatever MPLBACKEND says
        status = int(pytest.main(args, plugins=[plugin]))
    for p in prepared.values():  # a chapter pytest never reached (e.g. stopped by -x)
        if p.name not in results:
            p.finish("failed", 0.0, "not run: pytest stopped before this chapter")
    return status, results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="run_nbval.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names or numbers (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the <chapter>/ output folders (default: build/notebooks)")
    parser.add_argument("--defaults", action="store_true",
                        help="start from the chapters' defaults, not their book parameter files")
    parser.add_argument("--overrides", metavar="FILE.yaml",
                        help="YAML mapping <chapter>: {name: value}, applied last")
    args = parser.parse_args(own)
    try:
        chapters = [resolve_chapter(c) for c in args.chapters] or list_chapters()
        overrides = load_overrides(args.overrides, chapters) if args.overrides else {}
        start = time.perf_counter()
        status, results = run(chapters, args.out.resolve(), args.defaults, overrides, extra)
    except XfrError as exc:
        print(f"run_nbval: error: {exc}", file=sys.stderr)
        return 2
    for chapter in chapters:
        result = results.get(chapter)
        line = result.summary if result is not None else "not run"
        where = f"; partial notebook: {result.path}" if result and result.status != STATUS_OK else ""
        print(f"nbval: {chapter}: {line}{where}")
    print(f"nbval: {len(chapters)} chapter(s) in {time.perf_counter() - start:.0f} s "
          f"({args.out})")
    failed = [c for c in chapters if c not in results or results[c].status != STATUS_OK]
    return status or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
