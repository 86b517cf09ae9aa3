"""The benchmarks' figures (bench/_record.py) and the one table ``make bench`` ends with
(bench/report.py): ratios, goals, and the comparison of two runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from _record import Figures, format_table


def test_ratio_and_goal_on_the_ratio():
    figs = Figures()
    row = figs.add("bf16 forward", 600.0, "img/s", reference="fp32", reference_value=300.0,
                   goal=(">=", 1.8))
    assert row["ratio"] == pytest.approx(2.0)
    assert row["met"] is True
    slow = figs.add("slow forward", 500.0, "img/s", reference="fp32", reference_value=300.0,
                    goal=(">=", 1.8))
    assert slow["met"] is False  # 1.67 < 1.8


def test_goal_on_the_value_beside_a_reference():
    figs = Figures()
    row = figs.add("fggb s/pair", 1.6, "s/pair", reference="corrrise", reference_value=3.2,
                   goal=("<=", 1.5), goal_on="value")
    assert row["ratio"] == pytest.approx(0.5) and row["met"] is False
    assert row["goal"] == "<= 1.5"


def test_mistakes_are_refused():
    figs = Figures()
    figs.add("a", 1.0, "s")
    with pytest.raises(ValueError, match="twice"):
        figs.add("a", 2.0, "s")
    with pytest.raises(ValueError, match="together"):
        figs.add("b", 1.0, "s", reference="x")
    with pytest.raises(ValueError, match="operator"):
        figs.add("c", 1.0, "s", goal=("=>", 1))
    with pytest.raises(ValueError, match="goal_on"):
        figs.add("d", 1.0, "s", goal=("<", 2), goal_on="ratio")


def test_table_compares_runs_by_name():
    figs = Figures()
    figs.add("corrrise s/pair", 1.5, "s/pair", goal=("<", 2))
    figs.add("new figure", 3.0, "s")
    text = format_table(figs.rows, before={"corrrise s/pair": {"value": 3.0}})
    line = next(ln for ln in text.splitlines() if ln.startswith("corrrise"))
    assert "yes" in line and line.split()[-2:] == ["3", "0.5"]  # before 3 s, now / before 0.5
    new = next(ln for ln in text.splitlines() if ln.startswith("new figure"))
    assert new.split()[-2:] == ["-", "-"]  # no earlier value


def _record(folder: Path, name: str, figures: Figures) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"figures": figures.rows}))


def test_report_collects_every_record_and_names_missed_goals(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    old = Figures()
    old.add("x s/pair", 2.0, "s/pair", goal=("<=", 1.5))
    _record(before, "bench_a", old)
    run = [sys.executable, str(BENCH / "report.py")]
    subprocess.run([*run, "--dir", str(before)], check=True, capture_output=True)
    new_a, new_b = Figures(), Figures()
    new_a.add("x s/pair", 1.0, "s/pair", goal=("<=", 1.5))
    new_b.add("y img/s", 10.0, "img/s", reference="peak", reference_value=40.0, goal=(">=", 0.5))
    _record(after, "bench_a", new_a)
    _record(after, "bench_b", new_b)
    out = subprocess.run([*run, "--dir", str(after), "--compare", str(before / "report.json")],
                         check=True, capture_output=True, text=True).stdout
    assert "== bench_a" in out and "== bench_b" in out
    assert "goals missed: y img/s" in out
    report = json.loads((after / "report.json").read_text())
    assert set(report["benchmarks"]) == {"bench_a", "bench_b"}
    x_line = next(ln for ln in out.splitlines() if ln.startswith("x s/pair"))
    assert x_line.split()[-2:] == ["2", "0.5"]


def test_report_without_records_says_what_to_do(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "report.py"), "--dir", str(tmp_path)],
                          check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "run make bench" in proc.stderr
