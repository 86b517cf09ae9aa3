"""What every benchmark shares: its ``--out`` JSON file under build/bench/ and how it is written.

The scripts run as ``python bench/bench_<name>.py``, so this module is imported by its bare
name (``from _record import ...``); ``make bench`` runs ``bench/bench_*.py`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "build" / "bench"


def out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--out`` (default ``build/bench/<name>.json``) to a benchmark's parser."""
    parser.add_argument("--out", type=Path, default=BENCH_DIR / f"{name}.json",
                        help=f"JSON record (default build/bench/{name}.json)")


def write_record(record: dict, path: Path, stream=sys.stdout) -> None:
    """Stamp ``record`` with the time, write it as JSON to ``path`` and say where."""
    record["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {path}", file=stream)
