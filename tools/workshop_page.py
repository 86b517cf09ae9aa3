"""The book's workshop page, timed by the chapters' own run: ``python tools/workshop_page.py``.

``make book`` runs it after the chapters were executed. It reads the paths of
``book/workshop.yml`` (which chapters, which exercises, how many minutes the teacher plans
for talk and for the participants' own work), the run of every chapter in
``build/notebooks/<chapter>/`` (``parameters.yaml``: status, seconds, cores; the executed
notebook: per-cell start and end times) and writes ``workshop.md`` from the template
``book/workshop.md.jinja``. The machine times on the page are measured, never typed: a
chapter's run time is its ``seconds``, an exercise's is the time of the code cells of its
solution (between ``{solution-start}`` and ``{solution-end}``).

The same parser checks the chapters' sources (:func:`exercises`): every exercise has a
solution holding code, every label is unique.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
_EXERCISE = re.compile(r"^```+\{exercise\}[^\n]*\n(?::[^\n]*\n)*?:label:\s*(\S+)", re.MULTILINE)
_DIRECTIVE = re.compile(r"^```+\{(solution-start|solution-end)\}[ \t]*(\S*)", re.MULTILINE)


class WorkshopError(Exception):
    """A plan or a chapter that the page cannot be made from (one line, with the fix)."""


@dataclass
class Exercise:
    label: str
    chapter: str
    code_cells: int = 0
    seconds: float = 0.0
    code: list[str] = field(default_factory=list)  # the solution's code, cell by cell
    solved: bool = False


@dataclass
class ChapterRun:
    name: str
    title: str
    seconds: float
    cpus: int | None
    exercises: dict[str, Exercise] = field(default_factory=dict)


def _cell_seconds(cell) -> float:
    meta = cell.get("metadata", {}).get("papermill", {})
    try:
        start = dt.datetime.fromisoformat(meta["start_time"])
        end = dt.datetime.fromisoformat(meta["end_time"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (end - start).total_seconds())


def exercises(nb, chapter: str) -> dict[str, Exercise]:
    """The exercises of a notebook (source or executed), with their solutions' code and time.

    Raises:
        WorkshopError: a solution for no exercise, an exercise without a solution or whose
            solution holds no code, a label used twice, or unbalanced solution directives.
    """
    found: dict[str, Exercise] = {}
    open_label = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for label in _EXERCISE.findall(cell.source):
                if label in found:
                    raise WorkshopError(f"{chapter}: exercise label {label!r} is used twice")
                found[label] = Exercise(label, chapter)
            for kind, label in _DIRECTIVE.findall(cell.source):
                if kind == "solution-start":
                    if open_label is not None:
                        raise WorkshopError(f"{chapter}: the solution of {open_label!r} has no "
                                            f"{{solution-end}} before the next one starts")
                    if label not in found:
                        raise WorkshopError(f"{chapter}: a solution for {label!r}, which no "
                                            f"exercise above it declares (:label: {label})")
                    open_label, found[label].solved = label, True
                else:
                    if open_label is None:
                        raise WorkshopError(f"{chapter}: a {{solution-end}} without a start")
                    open_label = None
        elif cell.cell_type == "code" and open_label is not None:
            found[open_label].code_cells += 1
            found[open_label].code.append(cell.source)
            found[open_label].seconds += _cell_seconds(cell)
    if open_label is not None:
        raise WorkshopError(f"{chapter}: the solution of {open_label!r} never ends "
                            f"(add ```{{solution-end}}```)")
    for ex in found.values():
        if not ex.solved or ex.code_cells == 0:
            raise WorkshopError(f"{chapter}: exercise {ex.label!r} has no solution with code; "
                                f"nbval must be able to run its solution")
    return found


def chapter_run(folder: Path, chapter: str) -> ChapterRun:
    """What the executed chapter in ``folder/<chapter>/`` measured."""
    record_path = folder / chapter / "parameters.yaml"
    if not record_path.is_file():
        raise WorkshopError(f"{record_path} not found: execute the chapter first (make chapters)")
    record = yaml.safe_load(record_path.read_text(encoding="utf-8"))
    if record.get("status") != "ok":
        raise WorkshopError(f"{folder / chapter} did not run to the end (status "
                            f"{record.get('status')!r}); rerun it (make chapters)")
    nb = nbformat.read(folder / chapter / f"{chapter}.ipynb", as_version=4)
    title = next((m.group(1) for c in nb.cells if c.cell_type == "markdown"
                  for m in [re.search(r"^# (.+)$", c.source, re.MULTILINE)] if m), chapter)
    return ChapterRun(chapter, title, float(record["seconds"]), record.get("cpus"),
                      exercises(nb, chapter))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}" if seconds < 600 else f"{seconds / 60:.0f}"


def plan_paths(plan: dict, runs: dict[str, ChapterRun]) -> list[dict]:
    """Each path of the plan with its steps timed (see the module docstring)."""
    paths = []
    for path in plan["paths"]:
        steps, total_run, total_planned = [], 0.0, 0.0
        for step in path["steps"]:
            chapter = step["chapter"]
            if chapter not in runs:
                raise WorkshopError(f"book/workshop.yml: path {path['title']!r} names chapter "
                                    f"{chapter!r}, which is not among {', '.join(runs)}")
            run = runs[chapter]
            wanted = step.get("exercises", "all")
            labels = list(run.exercises) if wanted == "all" else list(wanted)
            unknown = [x for x in labels if x not in run.exercises]
            if unknown:
                raise WorkshopError(f"book/workshop.yml: {chapter} has no exercise "
                                    f"{', '.join(unknown)} (it has {', '.join(run.exercises)})")
            solution_s = sum(run.exercises[x].seconds for x in labels)
            planned = float(step["talk"]) + float(step["work"])
            steps.append({"chapter": chapter, "title": run.title, "exercises": labels,
                          "run_min": _minutes(run.seconds), "solutions_s": f"{solution_s:.0f}",
                          "talk": step["talk"], "work": step["work"],
                          "machine_s": run.seconds + solution_s})
            total_run += run.seconds + solution_s
            total_planned += planned
        budget = float(path["minutes"])
        paths.append({"title": path["title"], "minutes": path["minutes"], "steps": steps,
                      "run_min": _minutes(total_run), "planned_min": f"{total_planned:.0f}",
                      "fits": total_run / 60 <= budget - total_planned,
                      "spare_min": f"{budget - total_planned - total_run / 60:.0f}"})
    return paths


def render(notebooks: Path, plan_file: Path, template: Path) -> str:
    plan = yaml.safe_load(plan_file.read_text(encoding="utf-8"))
    every = sorted(p.name for p in notebooks.iterdir() if (p / "parameters.yaml").is_file())
    all_runs = {c: chapter_run(notebooks, c) for c in every}
    cpus = {r.cpus for r in all_runs.values()}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(
        paths=plan_paths(plan, all_runs), cpus=", ".join(str(c) for c in sorted(cpus, key=str)),
        n_exercises=sum(len(r.exercises) for r in all_runs.values()),
        n_chapters=len(all_runs),
        book_run_min=_minutes(sum(r.seconds for r in all_runs.values())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks")
    parser.add_argument("--plan", type=Path, default=ROOT / "book" / "workshop.yml")
    parser.add_argument("--template", type=Path, default=ROOT / "book" / "workshop.md.jinja")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        text = render(args.notebooks, args.plan, args.template)
    except WorkshopError as exc:
        print(f"workshop page: error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
