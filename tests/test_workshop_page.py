"""The workshop page (tools/workshop_page.py) and the exercises of every chapter."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import workshop_page as wp

CHAPTERS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md"))

EXERCISE = """```{{exercise}}
:label: {label}

Predict it.
```

```{{solution-start}} {label}
:class: dropdown
```
"""
END = "```{solution-end}\n```\n"


def _cell(kind: str, source: str, seconds: float | None = None):
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(source)
    cell = nbformat.v4.new_code_cell(source)
    if seconds is not None:
        start = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
        cell.metadata["papermill"] = {
            "start_time": start.isoformat(),
            "end_time": (start + dt.timedelta(seconds=seconds)).isoformat()}
    return cell


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell(*c) for c in cells]
    return nb


def test_solutions_are_timed_by_their_code_cells():
    nb = _notebook(("markdown", "# Chapter\n"), ("code", "x = 1", 30.0),
                   ("markdown", "## Exercises\n\n" + EXERCISE.format(label="ex-01-a")),
                   ("code", "y = 2", 1.5), ("code", "z = 3", 2.25),
                   ("markdown", END + "\n" + EXERCISE.format(label="ex-01-b")),
                   ("code", "w = 4", 4.0), ("markdown", END + "\nAfter."), ("code", "v", 9.0))
    found = wp.exercises(nb, "01_x")
    assert list(found) == ["ex-01-a", "ex-01-b"]
    assert found["ex-01-a"].code_cells == 2 and found["ex-01-a"].seconds == pytest.approx(3.75)
    assert found["ex-01-b"].seconds == pytest.approx(4.0)  # not the cell after the solution


@pytest.mark.parametrize("cells, message", [
    ([("markdown", EXERCISE.format(label="ex-1")), ("markdown", END)], "no solution with code"),
    ([("markdown", EXERCISE.format(label="ex-1")), ("code", "x")], "never ends"),
    ([("markdown", "```{solution-start} ex-9\n```\n"), ("code", "x"), ("markdown", END)],
     "which no exercise above it declares"),
    ([("markdown", EXERCISE.format(label="ex-1")), ("code", "x"),
      ("markdown", END + EXERCISE.format(label="ex-1")), ("code", "x"), ("markdown", END)],
     "used twice"),
    ([("markdown", END)], "without a start"),
])
def test_malformed_exercises_are_named(cells, message):
    with pytest.raises(wp.WorkshopError, match=message):
        wp.exercises(_notebook(*cells), "01_x")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_exercises_whose_solutions_are_code(chapter):
    found = wp.exercises(jupytext.read(chapter), chapter.stem)
    assert found, f"{chapter.name} has no exercise"
    assert all(label.startswith(f"ex-{chapter.stem[:2]}-") for label in found), list(found)


def test_exercise_labels_are_unique_across_the_book():
    labels = [x for c in CHAPTERS for x in wp.exercises(jupytext.read(c), c.stem)]
    assert len(labels) == len(set(labels))


def _run(folder: Path, chapter: str, seconds: float, solution_s: float,
         status: str = "ok") -> None:
    out = folder / chapter
    out.mkdir(parents=True)
    nb = _notebook(("markdown", f"# Title of {chapter}\n"), ("code", "x", seconds - solution_s),
                   ("markdown", EXERCISE.format(label=f"ex-{chapter[:2]}-a")),
                   ("code", "y", solution_s), ("markdown", END))
    nbformat.write(nb, out / f"{chapter}.ipynb")
    (out / "parameters.yaml").write_text(yaml.safe_dump(
        {"status": status, "seconds": seconds, "cpus": 2}))


def _plan(tmp_path: Path, minutes: int, steps: list[dict]) -> Path:
    path = tmp_path / "workshop.yml"
    path.write_text(yaml.safe_dump({"paths": [{"title": "Short", "minutes": minutes,
                                               "steps": steps}]}))
    return path


def test_the_page_reports_the_measured_times(tmp_path):
    notebooks = tmp_path / "nb"
    _run(notebooks, "01_a", 120.0, 30.0)
    _run(notebooks, "02_b", 300.0, 6.0)
    plan = _plan(tmp_path, 60, [{"chapter": "01_a", "talk": 10, "work": 10},
                                {"chapter": "02_b", "exercises": ["ex-02-a"], "talk": 5,
                                 "work": 5}])
    text = wp.render(notebooks, plan, ROOT / "book" / "workshop.md.jinja")
    assert "{doc}`Title of 01_a <01_a>` (1 exercise) | 2.0 | 30 | 10 | 10 |" in text
    assert "{doc}`Title of 02_b <02_b>` (1 exercise) | 5.0 | 6 | 5 | 5 |" in text
    assert "The planned minutes add up to 30 of the 60" in text
    assert "needs 7.6 min" in text  # 120 + 30 + 300 + 6 s: solutions counted with the runs
    assert "leaves about 22 min" in text
    assert "2 CPU" in text and "2 chapters, 2" in text


def test_a_path_that_does_not_fit_says_so(tmp_path):
    notebooks = tmp_path / "nb"
    _run(notebooks, "01_a", 900.0, 30.0)
    plan = _plan(tmp_path, 20, [{"chapter": "01_a", "talk": 10, "work": 5}])
    text = wp.render(notebooks, plan, ROOT / "book" / "workshop.md.jinja")
    assert "min **more** than the path" in text and "leaves about" not in text


def test_unknown_chapters_exercises_and_failed_runs_are_refused(tmp_path):
    notebooks = tmp_path / "nb"
    _run(notebooks, "01_a", 60.0, 1.0)
    template = ROOT / "book" / "workshop.md.jinja"
    with pytest.raises(wp.WorkshopError, match="names chapter '03_c'"):
        wp.render(notebooks, _plan(tmp_path, 60, [{"chapter": "03_c", "talk": 1, "work": 1}]),
                  template)
    with pytest.raises(wp.WorkshopError, match="has no exercise ex-01-z"):
        wp.render(notebooks, _plan(tmp_path, 60, [{"chapter": "01_a", "exercises": ["ex-01-z"],
                                                   "talk": 1, "work": 1}]), template)
    _run(notebooks, "02_b", 60.0, 1.0, status="failed")
    with pytest.raises(wp.WorkshopError, match="02_b did not run to the end"):
        wp.render(notebooks, _plan(tmp_path, 60, [{"chapter": "01_a", "talk": 1, "work": 1}]),
                  template)


def test_the_book_plan_names_real_chapters():
    plan = yaml.safe_load((ROOT / "book" / "workshop.yml").read_text())
    stems = {c.stem for c in CHAPTERS}
    for path in plan["paths"]:
        assert {s["chapter"] for s in path["steps"]} <= stems
        assert sum(s["talk"] + s["work"] for s in path["steps"]) < path["minutes"]
