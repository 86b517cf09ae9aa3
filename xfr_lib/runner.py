"""Run the book's chapters: MyST notebook -> parameters -> executed notebook + saved outputs.

Each chapter is a MyST-markdown notebook ``notebooks/NN_<name>.md`` (jupytext) with exactly one
cell tagged ``parameters``. Its assignments are the chapter's parameters, as papermill reads
them (:func:`papermill.inspect_notebook`): the default value sets the type (or an annotation
does, e.g. ``seed: int = 0``, ``model: Optional[str] = None``) and a trailing ``# comment`` is
the help text. Paper-scale values live in ``notebooks/params/<chapter>-paper.yaml``; the values
the book is built with, where they differ from the defaults, in
``notebooks/params/<chapter>-book.yaml``.

:func:`prepare_chapter` converts the notebook with jupytext (papermill cannot read MyST),
checks the parameters (unknown names and wrong types are refused before anything runs) and
writes the parameterised notebook and ``parameters.yaml`` (what is run, with which values,
from which source) into an output folder. :func:`run_chapter` then executes it with papermill;
the notebook saves its figures and tables into that folder (its ``out_dir`` parameter). The
book's build executes the same prepared notebooks under nbval (``tests/notebooks``).

Command line (``xfr run``)::

    xfr run 01_face_recognition                       # the small defaults
    xfr run 1 -f notebooks/params/01_face_recognition-paper.yaml --out out/ch1-paper
    xfr run 1 -p orl_identities 10 -p models '[sface]'
    xfr run 1 --help                                  # the chapter's parameters
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xfr_lib._io import atomic_write_text, load_yaml_mapping, sha256_file
from xfr_lib.errors import UnknownNameError, XfrError

NOTEBOOKS_ENV = "XFR_NOTEBOOKS"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what Jupyter uses by default
OUT_PARAM = "out_dir"  # the parameter through which the runner tells a notebook where to save
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


class ChapterError(XfrError):
    """A chapter that cannot be found, parsed, parameterised or that failed while running."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a chapter, as declared in its ``parameters`` cell.

    Attributes:
        name: the variable name.
        default: the value in the notebook.
        type: the type as text: ``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``,
            ``list[str]`` (element type checked), or ``Optional[...]`` of one of them when None
            is allowed.
        help: the trailing comment of the assignment ('' if none).
    """

    name: str
    default: Any
    type: str
    help: str = ""

    def check(self, value: Any, source: str = "value") -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`ChapterError`.

        Args:
            value: the candidate value (already parsed from YAML).
            source: where the value came from, for the message.
        """
        base, elem, nullable = _parse_type(self.type)
        if value is None:
            if nullable:
                return None
            raise ChapterError(self._wrong(value, source))
        ok = _is_instance(value, base)
        if ok and base is list and elem is not None:
            ok = all(_is_instance(v, elem) for v in value)
        if not ok:
            raise ChapterError(self._wrong(value, source))
        if base is float:
            return float(value)
        if base is list and elem is float:
            return [float(v) for v in value]
        return value

    def _wrong(self, value: Any, source: str) -> str:
        return (f"parameter {self.name!r} must be {self.type}, got {value!r} "
                f"({type(value).__name__}) from {source}; default is {self.default!r}")


# --- finding chapters ---------------------------------------------------------------------------

def notebooks_dir() -> Path:
    """The folder of chapter notebooks: ``$XFR_NOTEBOOKS`` or the repository's ``notebooks/``."""
    env = os.environ.get(NOTEBOOKS_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "notebooks"
    if not path.is_dir():
        raise ChapterError(f"the chapters' notebooks are not installed with xfr_lib ({path} not "
                           f"found); run xfr run from a checkout of the xfr repository "
                           f"('pip install -e .' there) or set {NOTEBOOKS_ENV} to its notebooks/")
    return path


def list_chapters() -> list[str]:
    """Names (notebook stems, e.g. ``01_face_recognition``) of the chapters, in book order."""
    return sorted(p.stem for p in notebooks_dir().glob("[0-9][0-9]_*.md"))


def resolve_chapter(chapter: str | int) -> str:
    """The chapter name for a name, a number (``1``, ``"01"``) or a path to its notebook.

    Args:
        chapter: ``01_face_recognition``, ``1``, ``"01"`` or ``notebooks/01_face_recognition.md``.
    """
    chapters = list_chapters()
    text = str(chapter)
    stem = Path(text).stem if text.endswith(".md") else text
    if stem in chapters:
        return stem
    if re.fullmatch(r"\d{1,2}", stem):
        hits = [c for c in chapters if c.startswith(f"{int(stem):02d}_")]
        if len(hits) == 1:
            return hits[0]
    raise UnknownNameError("chapter", text, chapters)


def chapter_path(chapter: str | int) -> Path:
    """The MyST notebook of a chapter."""
    return notebooks_dir() / f"{resolve_chapter(chapter)}.md"


def params_file(chapter: str | int, kind: str) -> Path | None:
    """``notebooks/params/<chapter>-<kind>.yaml`` if it exists (kind: ``book`` or ``paper``)."""
    path = notebooks_dir() / "params" / f"{resolve_chapter(chapter)}-{kind}.yaml"
    return path if path.is_file() else None


# --- parameters ---------------------------------------------------------------------------------

def read_notebook(chapter: str | int):
    """The chapter as an in-memory ipynb (``nbformat.NotebookNode``), converted by jupytext."""
    import jupytext

    nb = jupytext.read(chapter_path(chapter))
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    return nb


def parameters_cell(nb, where: str = "notebook"):
    """The single code cell tagged ``parameters`` of a notebook."""
    cells = [c for c in nb.cells
             if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ChapterError(f"{where} has {len(cells)} cells tagged 'parameters'; it needs exactly "
                           f"one (MyST: ':tags: [parameters]' under the code-cell line)")
    return cells[0]


def parse_parameters(source: str, where: str = "parameters cell") -> dict[str, Parameter]:
    """Parameters declared in the source of a ``parameters`` cell.

    Names, defaults, annotations and help texts are what papermill's notebook inspection
    finds; every statement must moreover be ``name = <literal>`` or ``name: <type> =
    <literal>``, so that a value given on the command line can be type-checked.

    Args:
        source: Python source of the cell.
        where: name used in error messages.
    """
    import nbformat
    import papermill as pm

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ChapterError(f"{where} is not valid Python (line {exc.lineno}): {exc.msg}") from None
    for node in tree.body:
        simple = (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name)) or (
            isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and node.value is not None)
        if not simple:
            raise ChapterError(f"{where}, line {node.lineno}: only 'name = value' assignments of "
                               f"literals are allowed in a parameters cell")
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    with tempfile.TemporaryDirectory(prefix="xfr-params-") as tmp:
        path = Path(tmp) / "cell.ipynb"
        nbformat.write(nb, path)
        inspected = pm.inspect_notebook(str(path))
    missing = [n.targets[0].id if isinstance(n, ast.Assign) else n.target.id for n in tree.body]
    missing = [n for n in missing if n not in inspected]
    if missing:
        raise ChapterError(f"{where}: papermill cannot read the parameter {missing[0]!r}; write "
                           f"it on one line as 'name = value' or 'name: Type = value', with "
                           f"Optional[...] for a type that allows None")
    params: dict[str, Parameter] = {}
    for name, info in inspected.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            raise ChapterError(f"{where}: the value of {name!r} must be a literal (number, "
                               f"string, bool, None, list, dict)") from None
        annotation = info.get("inferred_type_name")
        type_name = annotation if annotation not in (None, "None") else _type_of(default)
        if type_name is None:
            raise ChapterError(f"{where}: {name!r} defaults to None; annotate its type, "
                               f"e.g. '{name}: Optional[str] = None'")
        try:
            _parse_type(type_name)
        except ValueError:
            raise ChapterError(f"{where}: {name!r} has type {type_name!r}; use int, float, str, "
                               f"bool, list, list[<type>] or dict, or Optional[<one of them>]"
                               ) from None
        param = Parameter(name, default, type_name, info.get("help") or "")
        param.check(default, source=f"its default in {where}")
        params[name] = param
    return params


def chapter_parameters(chapter: str | int) -> dict[str, Parameter]:
    """The parameters of a chapter (name -> :class:`Parameter`), from its ``parameters`` cell."""
    name = resolve_chapter(chapter)
    cell = parameters_cell(read_notebook(name), where=f"notebooks/{name}.md")
    return parse_parameters(cell.source, where=f"the parameters cell of {name}")


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of parameter values (the ``-f`` file)."""
    return load_yaml_mapping(path, ChapterError)


def resolve_parameters(chapter: str | int, params_file: str | Path | None = None,
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """All parameter values of a run: defaults, then the file, then ``overrides``; checked.

    Raises:
        ChapterError: for a name the chapter does not declare (the message lists the valid
            ones), a value of the wrong type, or an attempt to set ``out_dir`` (the runner
            sets it).
    """
    name = resolve_chapter(chapter)
    declared = chapter_parameters(name)
    values = {k: p.default for k, p in declared.items()}
    sources: list[tuple[str, dict]] = []
    if params_file is not None:
        sources.append((f"parameter file {params_file}", load_params_file(params_file)))
    if overrides:
        sources.append(("the overrides", dict(overrides)))
    for source, given in sources:
        for key, value in given.items():
            if key not in declared:
                raise ChapterError(f"chapter {name} has no parameter {key!r} (in {source}); "
                                   f"valid names: {', '.join(declared)}")
            if key == OUT_PARAM:
                raise ChapterError(f"{OUT_PARAM!r} is set by the runner; choose the output folder "
                                   f"with --out (run_chapter(out_dir=...)) instead")
            values[key] = declared[key].check(value, source=source)
    return values


# --- preparing and running ----------------------------------------------------------------------

@dataclass
class PreparedChapter:
    """A chapter made ready to execute (see :func:`prepare_chapter`).

    Attributes:
        name: the chapter.
        notebook: ``<out>/<chapter>.ipynb``, with papermill's injected-parameters cell.
        record_path: ``<out>/parameters.yaml``.
        record: what ``parameters.yaml`` holds.
    """

    name: str
    notebook: Path
    record_path: Path
    record: dict[str, Any]

    @property
    def out(self) -> Path:
        return self.notebook.parent

    def finish(self, status: str, seconds: float, error: str | None = None,
               since: float | None = None) -> None:
        """Record how the execution ended, and (on success) the files it saved since ``since``."""
        self.record.update(status=status, seconds=round(seconds, 1))
        if error is not None:
            self.record["error"] = error
        if status == "ok" and since is not None:
            # What this run saved (not files left in the folder by earlier runs, nor stamps).
            self.record["outputs"] = sorted(
                p.relative_to(self.out).as_posix() for p in self.out.rglob("*")
                if p.is_file() and p not in (self.record_path, self.notebook)
                and not p.name.startswith(".") and p.stat().st_mtime >= since - 1)
        _write_yaml(self.record_path, self.record)


def prepare_chapter(chapter: str | int, params_file: str | Path | None = None,
                    overrides: dict[str, Any] | None = None,
                    out_dir: str | Path | None = None) -> PreparedChapter:
    """Check a chapter's parameters and write its parameterised notebook, not yet executed.

    Args:
        chapter: chapter name or number (see :func:`resolve_chapter`).
        params_file: YAML file of parameter values (e.g. ``notebooks/params/<ch>-paper.yaml``).
        overrides: parameter values that take precedence over the file.
        out_dir: output folder (created); default ``out/<chapter>`` in the current directory.
            The notebook is meant to run with this folder as its working directory: its
            ``out_dir`` parameter (if it has one) is set to ``"."``.

    Raises:
        ChapterError: bad parameters; nothing is written then.
    """
    import nbformat
    import papermill as pm

    name = resolve_chapter(chapter)
    values = resolve_parameters(name, params_file, overrides)
    out = Path(out_dir if out_dir is not None else Path("out") / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if OUT_PARAM in values:
        values[OUT_PARAM] = "."  # the notebook runs in `out`; no machine path in the notebook
    source = chapter_path(name)
    record = {
        "chapter": name,
        "source": f"notebooks/{source.name}",
        "source_sha256": sha256_file(source),
        "out_dir": str(out),
        "params_file": str(params_file) if params_file is not None else None,
        "overrides": dict(overrides or {}),
        "parameters": values,
        "started_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),  # the timings of the workshop page are for this many cores
        "xfr_lib": _version(),
        "status": "prepared",
    }
    notebook = out / f"{name}.ipynb"
    nb = pm.execute_notebook(read_notebook(name), str(notebook), parameters=values,
                             prepare_only=True, progress_bar=False)
    # papermill records an in-memory input as its full text; record where it came from.
    nb.metadata.papermill.update(input_path=record["source"], output_path=notebook.name)
    atomic_write_text(notebook, nbformat.writes(nb))
    prepared = PreparedChapter(name, notebook, out / "parameters.yaml", record)
    _write_yaml(prepared.record_path, record)
    return prepared


def run_chapter(chapter: str | int, params_file: str | Path | None = None,
                overrides: dict[str, Any] | None = None, out_dir: str | Path | None = None,
                progress: bool = True, kernel_name: str | None = None) -> Path:
    """Execute a chapter with papermill and collect its outputs in ``out_dir``.

    Args:
        chapter: chapter name or number (see :func:`resolve_chapter`).
        params_file: YAML file of parameter values (e.g. ``notebooks/params/<ch>-paper.yaml``).
        overrides: parameter values that take precedence over the file.
        out_dir: output folder (created); default ``out/<chapter>`` in the current directory.
            The notebook runs with this folder as its working directory.
        progress: show papermill's progress bar.
        kernel_name: Jupyter kernel; default the notebook's (``python3`` = this Python).

    Returns:
        The path of the executed notebook, ``<out_dir>/<chapter>.ipynb``. Beside it:
        ``parameters.yaml`` and whatever the notebook saved into its ``out_dir``.

    Raises:
        ChapterError: bad parameters (before anything runs) or a cell that failed (the
            message names the cell and the error; the partial notebook is kept).
    """
    import papermill as pm

    prepared = prepare_chapter(chapter, params_file, overrides, out_dir)
    name, notebook = prepared.name, prepared.notebook
    prepared.record["status"] = "running"
    _write_yaml(prepared.record_path, prepared.record)
    start, started_wall = time.perf_counter(), time.time()
    try:
        with inline_figures():
            pm.execute_notebook(str(notebook), str(notebook), progress_bar=progress,
                                cwd=str(prepared.out), kernel_name=kernel_name)
    except pm.PapermillExecutionError as exc:
        prepared.finish("failed", time.perf_counter() - start, f"{exc.ename}: {exc.evalue}")
        raise ChapterError(f"chapter {name} failed at In [{exc.exec_count}]: {exc.ename}: "
                           f"{_first_line(exc.evalue)}; the partial notebook is "
                           f"{notebook}") from None
    except Exception as exc:  # a dead kernel, a timeout: still one line
        prepared.finish("failed", time.perf_counter() - start,
                        f"{type(exc).__name__}: {_first_line(exc)}")
        raise ChapterError(f"chapter {name} stopped: {type(exc).__name__}: {_first_line(exc)}; "
                           f"see {notebook}") from exc
    prepared.finish("ok", time.perf_counter() - start, since=started_wall)
    return notebook


@contextlib.contextmanager
def inline_figures() -> Iterator[None]:
    """Let kernels started inside this block show matplotlib figures as notebook outputs.

    A kernel inherits the environment, and ``MPLBACKEND=Agg`` (common on servers and in CI)
    would make every figure silently disappear from the executed notebook and the book.
    """
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


# --- command line -------------------------------------------------------------------------------

def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfr run", add_help=False,
        description="Run a chapter notebook of the book with papermill.",
        epilog="With a chapter, --help also lists its parameters, their types and defaults.")
    parser.add_argument("chapter", nargs="?",
                        help="chapter name (e.g. 01_face_recognition) or number (1)")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("-f", "--file", dest="params_file", metavar="PARAMS.yaml",
                        help="YAML file of parameter values, e.g. "
                             "notebooks/params/01_face_recognition-paper.yaml")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="set one parameter (VALUE is read as YAML: 10, 0.5, true, [a, b])")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: out/<chapter>)")
    parser.add_argument("--list", action="store_true",
                        help="print the chapter's parameters and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def format_parameters(chapter: str | int) -> str:
    """The parameters of a chapter, one per line: ``name: type = default  # help``."""
    lines = []
    for p in chapter_parameters(chapter).values():
        note = f"  # {p.help}" if p.help else ""
        lines.append(f"{p.name}: {p.type} = {p.default!r}{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``xfr run``: run one chapter; returns the exit status (2 on a user error).

    Args:
        argv: the arguments after ``run`` (default ``sys.argv[1:]``).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.help or args.chapter is None:
            if not args.help:
                raise ChapterError("name the chapter to run, e.g. 'xfr run 1'; chapters: "
                                   + ", ".join(list_chapters()))
            parser.print_help()
            if args.chapter is not None:
                print(f"\nparameters of {resolve_chapter(args.chapter)}:")
                print(format_parameters(args.chapter))
            return 0
        name = resolve_chapter(args.chapter)
        if args.list:
            print(format_parameters(name))
            return 0
        declared = chapter_parameters(name)
        overrides = {key: _parse_cli_value(declared.get(key), text) for key, text in args.param}
        path = run_chapter(name, params_file=args.params_file, overrides=overrides,
                           out_dir=args.out, progress=not args.no_progress)
    except XfrError as exc:
        print(f"xfr: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.parent / 'parameters.yaml'}")
    return 0


# --- helpers ------------------------------------------------------------------------------------

def _parse_cli_value(param: Parameter | None, text: str) -> Any:
    """A ``-p`` value: YAML, except that text stays text for ``str`` parameters."""
    if param is not None and _parse_type(param.type)[0] is str:
        return None if text in ("null", "None", "~") and _parse_type(param.type)[2] else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _parse_type(text: str) -> tuple[type, type | None, bool]:
    """``"Optional[list[int]]"`` -> (list, int, True). Raises ValueError for anything else."""
    text = text.strip()
    optional = re.fullmatch(r"Optional\[(.+)\]", text)
    nullable = optional is not None
    m = re.fullmatch(r"(\w+)(?:\[(\w+)\])?", optional.group(1).strip() if optional else text)
    if not m or m.group(1) not in _TYPES or (m.group(2) and m.group(2) not in _TYPES):
        raise ValueError(text)
    if m.group(2) and m.group(1) != "list":
        raise ValueError(text)
    return _TYPES[m.group(1)], _TYPES[m.group(2)] if m.group(2) else None, nullable


def _type_of(value: Any) -> str | None:
    if value is None:
        return None
    base = type(value).__name__
    if isinstance(value, list) and value:
        kinds = {type(v).__name__ for v in value}
        if len(kinds) == 1 and next(iter(kinds)) in _TYPES:
            return f"list[{next(iter(kinds))}]"
        if kinds <= {"int", "float"}:
            return "list[float]"
    return base


def _is_instance(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int in Python, never a number here
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _first_line(text: Any) -> str:
    return (str(text).strip().splitlines() or [""])[0]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("xfr-lib")
    except Exception:  # noqa: BLE001 - running from a plain checkout
        return "unknown"


class _PlainDumper(yaml.SafeDumper):
    """A YAML dumper that writes repeated values out instead of as &anchors/*aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _write_yaml(path: Path, data: dict) -> None:
    atomic_write_text(path, yaml.dump(data, Dumper=_PlainDumper, sort_keys=False,
                                      allow_unicode=True))


if __name__ == "__main__":
    sys.exit(main())
