"""One table of every benchmark's headline figures: what ``make bench`` prints last.

    python bench/report.py [--dir build/bench] [--compare OLD_REPORT.json] [--out FILE]

Reads the ``figures`` of every ``build/bench/bench_*.json`` record (bench/_record.py), prints
them benchmark by benchmark with their ratio to the reference measured in the same run, their
goal and whether it was met, and writes them all to ``build/bench/report.json``. With
``--compare`` (an earlier report.json, e.g. from another commit), two more columns: the
earlier value and the change (now / before), matched by figure name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _record import BENCH_DIR, format_table, write_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=BENCH_DIR)
    ap.add_argument("--compare", type=Path, default=None, help="an earlier report.json")
    ap.add_argument("--out", type=Path, default=None, help="default: DIR/report.json")
    args = ap.parse_args()
    records = sorted(p for p in args.dir.glob("*.json") if p.name != "report.json")
    if not records:
        sys.exit(f"report: no benchmark records in {args.dir}; run make bench first")
    before = None
    if args.compare is not None:
        try:
            old = json.loads(args.compare.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            sys.exit(f"report: cannot read {args.compare} ({exc}); give a report.json")
        before = {f["name"]: f for figs in old["benchmarks"].values() for f in figs}
    report = {"benchmarks": {}}
    for path in records:
        record = json.loads(path.read_text(encoding="utf-8"))
        rows = record.get("figures")
        if not rows:
            continue
        report["benchmarks"][path.stem] = rows
        print(f"\n== {path.stem} ({record.get('written', '?')})")
        print(format_table(rows, before))
    missed = [f["name"] for figs in report["benchmarks"].values() for f in figs
              if f["met"] is False]
    print(f"\ngoals missed: {', '.join(missed) if missed else 'none'}")
    write_record(report, args.out or args.dir / "report.json")


if __name__ == "__main__":
    main()
