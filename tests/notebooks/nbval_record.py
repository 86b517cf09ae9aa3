"""A pytest plugin that keeps what nbval executed: outputs written back into each notebook.

nbval runs every code cell of a notebook in one kernel and checks it, but throws the outputs
away. With this plugin the outputs each cell produced (``IPyNbCell.test_outputs``: streams,
display data with their metadata, so myst-nb's glued values too, Markdown, figures, errors)
become the cell's ``outputs`` and ``execution_count``, and the notebook is written back to its
file atomically once its last cell has run. The book is then built from these notebooks
without executing anything a second time.

Widgets (ipywidgets): a cell that displayed one keeps its
``application/vnd.jupyter.widget-view+json`` output (the model id, with a ``text/plain``
stand-in). After the notebook's last cell, while its kernel still runs, the state of every live
widget is asked of that kernel (:func:`widget_state`: ``ipywidgets.Widget.get_manager_state``,
only when the chapter imported ipywidgets) and stored as Jupyter does when it saves widget
state, in ``metadata.widgets["application/vnd.jupyter.widget-state+json"]``; myst-nb puts it
into the page, where the vendored ipywidgets HTML manager draws the widgets as they were left.
A notebook that shows no widget gets no ``widgets`` metadata (its kernel is not asked: a
chapter may import ipywidgets without showing any, e.g. through ``tqdm.auto``). A state that
cannot be had fails the notebook, which would otherwise be shown with blank widgets.

A notebook stops at its first failing cell: the cells after it are skipped (reported as such)
rather than run into a cascade of NameErrors, and the partial notebook, error included, is
kept for inspection. :attr:`RecordOutputs.results` says how each notebook ended; the caller
(``run_nbval.py``) records it in ``parameters.yaml`` and writes the success stamp.

Used as ``pytest.main([...], plugins=[RecordOutputs(on_finish=...)])``.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, coalesce_streams

from xfr_lib._io import atomic_write_text

STATUS_OK = "ok"
STATUS_FAILED = "failed"
# The papermill metadata nbval does not fill: kept so that executed notebooks look alike
# whichever of papermill (xfr run) or nbval (the book) ran them.
_PM = "papermill"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
#: Evaluated in the kernel as a user expression (nothing printed, nothing left in its names):
#: the JSON of every live widget's state, or ``null`` when the chapter never imported ipywidgets.
#: ``drop_defaults`` as in ``ipywidgets.embed``: the HTML manager knows the defaults.
_WIDGET_STATE_EXPR = (
    "__import__('json').dumps(__import__('sys').modules['ipywidgets'].Widget.get_manager_state("
    "drop_defaults=True) if 'ipywidgets' in __import__('sys').modules else None)")
WIDGET_STATE_TIMEOUT_S = 120


@dataclass
class NotebookResult:
    """How one notebook's run under nbval ended.

    Attributes:
        path: the notebook, rewritten with its outputs.
        status: ``"ok"`` when every code cell ran without an error, else ``"failed"``.
        seconds: wall-clock seconds from its kernel's start to its last cell.
        started_wall: ``time.time()`` at its start (files saved since then are its outputs).
        cells: code cells in the notebook.
        executed: code cells that ran (with or without an error).
        failed_cell: nbval's number of the failing code cell (``Cell N``, from 0), or None.
        error: ``"<Exception>: <first line of the message>"`` of the failure, or None.
    """

    path: Path
    status: str = STATUS_FAILED
    seconds: float = 0.0
    started_wall: float = 0.0
    cells: int = 0
    executed: int = 0
    failed_cell: int | None = None
    error: str | None = None
    _start: float = field(default=0.0, repr=False)
    _nb: nbformat.NotebookNode | None = field(default=None, repr=False)
    _done: bool = field(default=False, repr=False)

    @property
    def summary(self) -> str:
        """One line: ``ok in 12 s`` or ``failed at Cell 2 (In [3]): ZeroDivisionError: ...``."""
        if self.status == STATUS_OK:
            return f"ok in {self.seconds:.0f} s"
        where = (f" at Cell {self.failed_cell} (In [{self.failed_cell + 1}])"
                 if self.failed_cell is not None else "")
        return f"failed{where} after {self.seconds:.0f} s: {self.error or 'unknown error'}"


class RecordOutputs:
    """The plugin object (see the module docstring).

    Args:
        on_finish: called with each :class:`NotebookResult` once its notebook is written.
    """

    def __init__(self, on_finish: Callable[[NotebookResult], None] | None = None) -> None:
        self.on_finish = on_finish
        self.results: dict[Path, NotebookResult] = {}

    # --- bookkeeping ----------------------------------------------------------------------

    def _result(self, path: Path) -> NotebookResult:
        path = Path(path).resolve()
        if path not in self.results:
            self.results[path] = NotebookResult(path)
        return self.results[path]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            if isinstance(item, IPyNbCell):
                self._result(item.path).cells += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item) -> None:
        if not isinstance(item, IPyNbCell):
            return
        result = self._result(item.path)
        if not result._start:
            result._start, result.started_wall = time.perf_counter(), time.time()
            result._nb = item.parent.nb
            result._nb.metadata.setdefault(_PM, {})["start_time"] = _now()
        if result.failed_cell is not None:
            pytest.skip(f"Cell {result.failed_cell} of this notebook failed")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if isinstance(item, IPyNbCell):
            self._record(item, call, report)
        return report

    def _record(self, item: IPyNbCell, call, report) -> None:
        if report.failed and isinstance(report.longrepr, str) and (
                item.config.option.color == "no"):
            report.longrepr = _ANSI.sub("", report.longrepr)  # IPython colours its tracebacks
        result = self._result(item.path)
        if call.when == "call" or (call.when == "setup" and report.failed):
            if call.when == "call":
                self._keep_outputs(item, call)
            if report.failed and result.failed_cell is None:
                result.failed_cell = item.cell_num
                result.error = _error_line(item, call)

    def _keep_outputs(self, item: IPyNbCell, call) -> None:
        result = self._result(item.path)
        result.executed += 1
        count = item.cell_num + 1  # every code cell runs, in order: In [n] as in Jupyter
        outputs = coalesce_streams(list(item.test_outputs or []))
        for out in outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
        cell = item.cell
        cell.outputs = outputs
        cell.execution_count = count
        failed = call.excinfo is not None
        cell.metadata[_PM] = {
            "start_time": _iso(call.start), "end_time": _iso(call.stop),
            "duration": round(call.duration, 3), "status": "failed" if failed else "completed",
            "exception": failed,
        }

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        last = isinstance(item, IPyNbCell) and (nextitem is None or nextitem.path != item.path)
        if last:  # nbval stops the kernel in the teardown of the notebook's last cell
            self._keep_widget_state(item)
        result = yield
        if last:
            self._finish(self._result(item.path))
        return result

    def _keep_widget_state(self, item: IPyNbCell) -> None:
        """Store the state of the notebook's widgets in its metadata (see the module docstring)."""
        result = self._result(item.path)
        kernel = item.parent.kernel
        if result._nb is None or result.failed_cell is not None or kernel is None or (
                not kernel.is_alive()) or not has_widget_views(result._nb):
            return
        try:
            state = widget_state(kernel.kc)
        except WidgetStateError as exc:
            result.error = f"the widget state could not be collected: {exc}"
            return
        if state is not None and state.get("state"):
            result._nb.metadata["widgets"] = {WIDGET_STATE_MIME: state}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session) -> None:
        # Notebooks cut short (-x, Ctrl-C, a collection error) are finished here, as failed.
        for result in list(self.results.values()):
            self._finish(result)

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        report = yield
        if report.failed and collector.path.suffix == ".ipynb":
            self._result(collector.path).error = (
                f"the notebook could not be read: {_last_line(report.longrepr)}")
        return report

    # --- writing ------------------------------------------------------------------------

    def _finish(self, result: NotebookResult) -> None:
        if result._done:
            return
        result._done = True
        result.seconds = time.perf_counter() - result._start if result._start else 0.0
        complete = result.cells > 0 and result.executed == result.cells
        result.status = (STATUS_OK if complete and result.failed_cell is None
                         and result.error is None else STATUS_FAILED)
        if result.status == STATUS_FAILED and result.error is None:
            result.error = (f"interrupted after {result.executed} of {result.cells} code cells"
                            if result.cells else "no code cell was collected")
        nb = result._nb
        if nb is not None:
            meta = nb.metadata.setdefault(_PM, {})
            meta.update(end_time=_now(), duration=round(result.seconds, 1),
                        exception=result.status != STATUS_OK)
            nb.metadata["xfr"] = {"executed_by": "nbval", "status": result.status,
                                  **({"error": result.error} if result.error else {})}
            atomic_write_text(result.path, nbformat.writes(nb))
        if self.on_finish is not None:
            self.on_finish(result)


def has_widget_views(nb: nbformat.NotebookNode) -> bool:
    """Whether a code cell of ``nb`` shows a widget (has a widget-view output)."""
    return any(WIDGET_VIEW_MIME in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


class WidgetStateError(RuntimeError):
    """The kernel did not give the state of its widgets."""


def widget_state(client, timeout: float = WIDGET_STATE_TIMEOUT_S) -> dict | None:
    """The state of every live ipywidgets widget in the kernel of ``client``, as Jupyter saves it.

    ``{"version_major": 2, "version_minor": 0, "state": {model_id: {...}}}`` from
    ``ipywidgets.Widget.get_manager_state(drop_defaults=True)``, asked through a silent execute
    request's user expression (the kernel's execution count and namespace are left alone);
    None when the kernel never imported ipywidgets (it is not imported for this).

    Args:
        client: the kernel's ``jupyter_client`` client (nbval's ``RunningKernel.kc``).
        timeout: seconds to wait for the kernel's reply.

    Raises:
        WidgetStateError: no reply in time, or the expression failed in the kernel.
    """
    msg_id = client.execute("", silent=True, store_history=False, allow_stdin=False,
                            user_expressions={"state": _WIDGET_STATE_EXPR})
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise WidgetStateError(f"no reply from the kernel in {timeout:.0f} s") from None
        if msg["parent_header"].get("msg_id") == msg_id:
            break
    content = msg["content"]
    value = content.get("user_expressions", {}).get("state", {})
    if content.get("status") != "ok" or value.get("status") != "ok":
        error = value if value.get("status") == "error" else content
        raise WidgetStateError(f"{error.get('ename', 'error')}: {error.get('evalue', content)}")
    try:
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))
    except (KeyError, TypeError, ValueError, SyntaxError) as exc:
        raise WidgetStateError(f"unreadable reply: {exc!r}") from None


def _error_line(item: IPyNbCell, call) -> str:
    """``"ZeroDivisionError: division by zero"`` from the cell's error output, else the report."""
    for out in reversed(item.test_outputs or []):
        if out.get("output_type") == "error":
            return f"{out['ename']}: {_first_line(out['evalue'])}"
    exc = call.excinfo.value if call.excinfo is not None else None
    return f"{type(exc).__name__}: {_first_line(exc)}" if exc is not None else "unknown error"


def _last_line(text) -> str:
    """The last line of a pytest report (the exception), without its ``E`` prefix."""
    return re.sub(r"^E\s+", "", (str(text).strip().splitlines() or [""])[-1])


def _first_line(text) -> str:
    return (str(text).strip().splitlines() or [""])[0]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).isoformat()

