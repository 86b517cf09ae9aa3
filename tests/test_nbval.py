"""The pipeline that executes the chapters for the tests and the book (tests/notebooks/).

``run_nbval.py`` prepares each chapter with :func:`xfr_lib.runner.prepare_chapter`, runs it
under nbval and, through the ``nbval_record`` plugin, writes what every cell showed back into
the notebook the book is built from. These tests run it on tiny chapters (through
``$XFR_NOTEBOOKS``) and check the override file of the SFace runs against the real chapters.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import MYST_HEADER

from xfr_lib import runner
from xfr_lib.runner import ChapterError, list_chapters

ROOT = Path(__file__).resolve().parents[1]
NBVAL_DIR = ROOT / "tests" / "notebooks"
SFACE = NBVAL_DIR / "sface.yaml"
sys.path.insert(0, str(NBVAL_DIR))

import nbval_record
import run_nbval

HEADER = MYST_HEADER + """
# A chapter that shows things
"""

SHOWS = HEADER + """
```{code-cell} ipython3
:tags: [parameters]

n = 2  # a number
out_dir = "out"  # set by the runner
```

```{code-cell} ipython3
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from myst_nb import glue

glue("square", Markdown(f"{n * n}"), display=False)
display(Markdown(f"The square is **{n * n}**."))
fig, ax = plt.subplots()
ax.plot([0, 1], [0, n])
fig.savefig(Path(out_dir) / "line.png")
print("printed", n)
```

```{code-cell} ipython3
n + 1
```

The square is {glue:md}`square`.
"""

# Widgets as a workshop chapter builds them: one shown with display(), one as the cell's value,
# one created but never shown, and one closed (gone from the state, as in Jupyter).
WIDGETS = HEADER + """
```{code-cell} ipython3
:tags: [parameters]

n = 7
out_dir = "out"
```

```{code-cell} ipython3
import ipywidgets as widgets
from IPython.display import display

slider = widgets.IntSlider(value=n, min=0, max=10, description="n")
display(slider)
hidden = widgets.Dropdown(options=["a", "b"], value="b")
gone = widgets.Button(description="gone")
gone.close()
widgets.Text(value="typed")
```

```{code-cell} ipython3
slider.value + 1
```
"""


@pytest.fixture
def chapters(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    (folder / "07_shows.md").write_text(SHOWS)
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(folder))
    return folder


def _run(args: list[str], folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(NBVAL_DIR / "run_nbval.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
                          env={**os.environ, runner.NOTEBOOKS_ENV: str(folder)})


def test_the_executed_notebook_keeps_glue_markdown_figures_and_results(chapters, tmp_path):
    (chapters / "params" / "07_shows-book.yaml").write_text("n: 3\n")
    out = tmp_path / "build"
    proc = _run(["--out", str(out), "7"], chapters)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nbval: 07_shows: ok in" in proc.stdout
    folder = out / "07_shows"
    nb = nbformat.read(folder / "07_shows.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4]
    injected = code[1]
    assert "injected-parameters" in injected.metadata["tags"] and "n = 3" in injected.source
    outputs = code[2].outputs
    glued = [o for o in outputs if o.output_type == "display_data"
             and o.metadata.get("scrapbook", {}).get("name") == "square"]
    assert len(glued) == 1 and "9" in str(glued[0].data)
    shown = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert shown == ["The square is **9**."]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any(o.output_type == "stream" and o.text == "printed 3\n" for o in outputs)
    result = code[3].outputs
    assert result[0].output_type == "execute_result" and result[0].execution_count == 4
    assert result[0].data["text/plain"] == "4"
    assert nb.metadata["xfr"]["status"] == "ok"
    assert "widgets" not in nb.metadata  # no widget: no widget state, as before
    assert all(c.metadata["papermill"]["status"] == "completed" for c in code)
    record = yaml.safe_load((folder / "parameters.yaml").read_text())
    assert record["status"] == "ok" and record["parameters"]["n"] == 3
    assert record["params_file"].endswith("07_shows-book.yaml")
    assert record["seconds"] > 0 and record["outputs"] == ["line.png"]
    assert (folder / ".done").is_file()


def _views(cell) -> list[dict]:
    return [o.data[nbval_record.WIDGET_VIEW_MIME] for o in cell.outputs
            if nbval_record.WIDGET_VIEW_MIME in o.get("data", {})]


def test_the_widget_state_is_kept_with_the_cells_that_show_widgets(chapters, tmp_path):
    """What the book needs to draw the widgets: each view's model, in the notebook's metadata."""
    (chapters / "08_widgets.md").write_text(WIDGETS)
    out = tmp_path / "build"
    proc = _run(["--out", str(out), "8"], chapters)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.read(out / "08_widgets" / "08_widgets.ipynb", as_version=4)
    nbformat.validate(nb)
    saved = nb.metadata["widgets"][nbval_record.WIDGET_STATE_MIME]
    assert (saved["version_major"], saved["version_minor"]) == (2, 0)
    state = saved["state"]
    by_name = {}
    for model_id, model in state.items():
        assert set(model) >= {"model_name", "model_module", "model_module_version", "state"}
        by_name.setdefault(model["model_name"], []).append((model_id, model))
    [(slider_id, slider)] = by_name["IntSliderModel"]
    assert slider["model_module"] == "@jupyter-widgets/controls"
    assert slider["state"]["value"] == 7 and slider["state"]["description"] == "n"
    [(text_id, text)] = by_name["TextModel"]
    assert text["state"]["value"] == "typed"
    assert by_name["DropdownModel"][0][1]["state"]["index"] == 1  # live though never shown
    assert "ButtonModel" not in by_name  # closed
    # The layout and style models the views refer to are there too.
    refs = {v.removeprefix("IPY_MODEL_") for m in state.values() for v in m["state"].values()
            if isinstance(v, str) and v.startswith("IPY_MODEL_")}
    assert refs and refs <= set(state)
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = _views(code[2])
    assert [v["model_id"] for v in shown] == [slider_id, text_id]
    assert all((v["version_major"], v["version_minor"]) == (2, 0) for v in shown)
    assert [o.output_type for o in code[2].outputs] == ["display_data", "execute_result"]
    assert "IntSlider(value=7" in code[2].outputs[0].data["text/plain"]
    # Asking for the state ran nothing the reader sees: the last cell is still In [4].
    assert code[3].execution_count == 4 and code[3].outputs[0].data["text/plain"] == "8"
    assert nb.metadata["xfr"]["status"] == "ok"


def test_a_chapter_that_imports_ipywidgets_but_keeps_no_widget_gets_no_widget_state(
        chapters, tmp_path):
    (chapters / "08_widgets.md").write_text(HEADER + """
```{code-cell} ipython3
:tags: [parameters]

out_dir = "out"
```

```{code-cell} ipython3
import ipywidgets as widgets

widgets.IntSlider(value=3).close()
```
""")
    out = tmp_path / "build"
    proc = _run(["--out", str(out), "8"], chapters)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.read(out / "08_widgets" / "08_widgets.ipynb", as_version=4)
    assert nb.metadata["xfr"]["status"] == "ok" and "widgets" not in nb.metadata


def test_a_widget_state_that_cannot_be_had_fails_the_chapter(chapters, tmp_path):
    broken = WIDGETS.replace("slider.value + 1", (
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('no state today')\n"
        "widgets.Widget.get_manager_state = refuse"))
    (chapters / "08_widgets.md").write_text(broken)
    out = tmp_path / "build"
    proc = _run(["--out", str(out), "8"], chapters)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the widget state could not be collected: OSError: no state today" in proc.stdout
    assert not (out / "08_widgets" / ".done").exists()
    nb = nbformat.read(out / "08_widgets" / "08_widgets.ipynb", as_version=4)
    assert "widgets" not in nb.metadata and nb.metadata["xfr"]["status"] == "failed"
    record = yaml.safe_load((out / "08_widgets" / "parameters.yaml").read_text())
    assert record["status"] == "failed" and "no state today" in record["error"]


def test_the_widget_state_query_reports_a_kernel_that_does_not_answer():
    class Client:
        def __init__(self, replies):
            self.replies = replies

        def execute(self, code, **kwargs):
            assert code == "" and kwargs["silent"] and not kwargs["store_history"]
            return "m1"

        def get_shell_msg(self, timeout=None):
            if not self.replies:
                raise queue.Empty
            return self.replies.pop(0)

    def reply(parent, value):
        return {"parent_header": {"msg_id": parent},
                "content": {"status": "ok", "user_expressions": {"state": value}}}

    ok = {"status": "ok", "data": {"text/plain": repr('{"state": {}}')}}
    assert nbval_record.widget_state(Client([reply("other", {}), reply("m1", ok)])) == {
        "state": {}}
    none = {"status": "ok", "data": {"text/plain": repr("null")}}
    assert nbval_record.widget_state(Client([reply("m1", none)])) is None
    with pytest.raises(nbval_record.WidgetStateError, match="no reply from the kernel"):
        nbval_record.widget_state(Client([reply("other", ok)]), timeout=0.1)
    error = {"status": "error", "ename": "NameError", "evalue": "x", "traceback": []}
    with pytest.raises(nbval_record.WidgetStateError, match="NameError: x"):
        nbval_record.widget_state(Client([reply("m1", error)]))
    garbled = {"status": "ok", "data": {"text/plain": "not a literal"}}
    with pytest.raises(nbval_record.WidgetStateError, match="unreadable reply"):
        nbval_record.widget_state(Client([reply("m1", garbled)]))


def test_a_rerun_removes_the_stamp_first_and_a_failure_keeps_it_away(chapters, tmp_path):
    out = tmp_path / "build"
    assert _run(["--out", str(out), "7"], chapters).returncode == 0
    assert (out / "07_shows" / ".done").is_file()
    (chapters / "07_shows.md").write_text(SHOWS.replace("n + 1", "n + undefined_name"))
    proc = _run(["--out", str(out), "7"], chapters)
    assert proc.returncode == 1
    assert "07_shows/07_shows.ipynb::Cell 3" in proc.stdout
    assert "NameError: name 'undefined_name' is not defined" in proc.stdout
    assert not (out / "07_shows" / ".done").exists()
    record = yaml.safe_load((out / "07_shows" / "parameters.yaml").read_text())
    assert record["status"] == "failed" and "undefined_name" in record["error"]


def test_overrides_are_checked_before_anything_runs(chapters, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("07_shows:\n  nn: 3\n")
    out = tmp_path / "build"
    proc = _run(["--out", str(out), "--overrides", str(bad), "7"], chapters)
    assert proc.returncode == 2
    assert "chapter 07_shows has no parameter 'nn'" in proc.stderr
    assert "valid names: n, out_dir" in proc.stderr
    assert not out.exists()


def test_override_files_name_known_chapters_and_cover_every_chapter(chapters, tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("7: {n: 4}\n")
    assert run_nbval.load_overrides(path, ["07_shows"]) == {"07_shows": {"n": 4}}
    (chapters / "08_other.md").write_text(SHOWS)
    with pytest.raises(ChapterError, match="no entry for 08_other"):
        run_nbval.load_overrides(path, ["07_shows", "08_other"])
    path.write_text("99_gone: {n: 4}\n")
    with pytest.raises(ChapterError, match="unknown chapter '99_gone'"):
        run_nbval.load_overrides(path, [])
    path.write_text("07_shows: [1]\n")
    with pytest.raises(ChapterError, match="must be a mapping"):
        run_nbval.load_overrides(path, [])


def test_the_sface_runs_use_sface_and_only_parameters_the_chapters_have():
    """A renamed chapter parameter fails here, in seconds, not after an hour of CI."""
    chapters = list_chapters()
    overrides = run_nbval.load_overrides(SFACE, chapters)
    runs = run_nbval.plan(chapters, defaults=True, overrides=overrides)  # raises on a bad name
    assert [chapter for chapter, _, _ in runs] == chapters
    for chapter in chapters:
        values = runner.resolve_parameters(chapter, overrides=overrides[chapter])
        model = values.get("models", [values.get("model_name")])
        assert model == ["sface"], (chapter, model)


def test_a_notebook_that_cannot_be_read_is_reported_as_failed(tmp_path):
    broken = tmp_path / "08_broken.ipynb"
    broken.write_text("{not json")
    script = (f"import sys; sys.path.insert(0, {str(NBVAL_DIR)!r})\n"
              "import pytest, nbval_record\n"
              "done = []\n"
              "plugin = nbval_record.RecordOutputs(on_finish=done.append)\n"
              f"status = pytest.main(['-q', '-p', 'no:cacheprovider', '--nbval-lax', "
              f"{str(broken)!r}], plugins=[plugin])\n"
              "print('RESULT', int(status), [(r.status, r.error) for r in done])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, check=False)
    result = proc.stdout.splitlines()[-1]
    assert result.startswith("RESULT 2 [('failed', "), proc.stdout
    assert "the notebook could not be read: nbformat.reader.NotJSONError" in result
    assert broken.read_text() == "{not json"  # left as it was
