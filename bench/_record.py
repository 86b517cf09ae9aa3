"""What every benchmark shares: its ``--out`` JSON file under build/bench/, how it is written,
and its headline *figures*, the rows ``make bench`` prints in one table (bench/report.py).

A figure is one measured number with, where it has one, the reference it is compared with in
the same run (the reference runtime, the machine's peak, the previous code path) and a goal:

    figures = Figures()
    figures.add("dlib_resnet29 bf16 forward", 640.0, "img/s",
                reference="dlib_resnet29 fp32 forward", reference_value=330.0,
                goal=(">=", 1.8))           # the goal is on the ratio when there is a reference
    record["figures"] = figures.rows

Names are stable keys: ``report.py --compare`` matches figures of two runs by name.
The scripts run as ``python bench/bench_<name>.py``, so this module is imported by its bare
name (``from _record import ...``); ``make bench`` runs ``bench/bench_*.py`` only.
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "build" / "bench"

_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--out`` (default ``build/bench/<name>.json``) to a benchmark's parser."""
    parser.add_argument("--out", type=Path, default=BENCH_DIR / f"{name}.json",
                        help=f"JSON record (default build/bench/{name}.json)")


class Figures:
    """The headline numbers of one benchmark run, in the order they were added."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, name: str, value: float, unit: str, *, reference: str | None = None,
            reference_value: float | None = None, goal: tuple[str, float] | None = None,
            goal_on: str | None = None, note: str = "") -> dict:
        """Record one figure; return its row.

        Args:
            name: stable key, e.g. ``"sface bf16 forward"``.
            value: the measurement.
            unit: its unit (``"img/s"``, ``"s/pair"``, ``"GFLOP/s"``, ``"%"``, ...).
            reference: what the ratio ``value / reference_value`` compares against.
            reference_value: that reference's measurement in the same run.
            goal: ``(op, bound)`` with op one of ``>= <= > <``; ``met`` records whether it
                holds.
            goal_on: ``"ratio"`` or ``"value"``: what the goal bounds (default: the ratio when
                there is a reference, else the value).
            note: a few words of context printed beside the figure.
        """
        if (reference is None) != (reference_value is None):
            raise ValueError(f"figure {name!r}: give reference and reference_value together")
        if goal is not None and goal[0] not in _COMPARE:
            raise ValueError(f"figure {name!r}: goal operator {goal[0]!r} is not one of "
                             f"{', '.join(_COMPARE)}")
        ratio = None
        if reference_value is not None:
            ratio = value / reference_value if reference_value else math.inf
        goal_on = goal_on or ("ratio" if ratio is not None else "value")
        if goal_on not in ("ratio", "value") or (goal_on == "ratio" and ratio is None):
            raise ValueError(f"figure {name!r}: goal_on={goal_on!r} needs 'value', or 'ratio' "
                             "with a reference")
        judged = ratio if goal_on == "ratio" else value
        row = {"name": name, "value": float(value), "unit": unit, "reference": reference,
               "reference_value": None if reference_value is None else float(reference_value),
               "ratio": ratio,
               "goal": None if goal is None else f"{'x ' if goal_on == 'ratio' else ''}"
                                                 f"{goal[0]} {goal[1]:.3g}",
               "met": None if goal is None else bool(_COMPARE[goal[0]](judged, goal[1])),
               "note": note}
        if any(r["name"] == name for r in self.rows):
            raise ValueError(f"figure {name!r} is recorded twice")
        self.rows.append(row)
        return row

    def print(self, stream=sys.stdout) -> None:
        """The figures as the table ``report.py`` prints (one benchmark's part of it)."""
        print(format_table(self.rows), file=stream)


def _num(v: float | None) -> str:
    """Four significant digits below 100 (0.9999 stays apart from 1), whole numbers above."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) < 100 else f"{v:.0f}"


def format_table(rows: list[dict], before: dict[str, dict] | None = None) -> str:
    """Rows of figures as a fixed-width table; with ``before`` (name -> row of an earlier run),
    two more columns: the earlier value and now / before."""
    head = f"{'figure':50s} {'value':>9s} {'unit':8s} {'ratio':>7s}  {'goal':9s} {'met':4s}"
    if before is not None:
        head += f" {'before':>9s} {'change':>7s}"
    lines = [head + "  reference", "-" * (len(head) + 11)]
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        line = (f"{r['name'][:50]:50s} {_num(r['value']):>9s} {r['unit'][:8]:8s} "
                f"{_num(r['ratio']):>7s}  {r['goal'] or '-':9s} {met:4s}")
        if before is not None:
            old = before.get(r["name"])
            change = r["value"] / old["value"] if old and old["value"] else None
            line += f" {_num(old['value'] if old else None):>9s} {_num(change):>7s}"
        ref = r["reference"] or ""
        line += f"  {ref}{' — ' if ref and r['note'] else ''}{r['note']}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def write_record(record: dict, path: Path, stream=sys.stdout) -> None:
    """Stamp ``record`` with the time, write it as JSON to ``path`` and say where."""
    record["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {path}", file=stream)
