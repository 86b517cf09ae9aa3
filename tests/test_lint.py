"""ruff, as ``make lint`` runs it, enforced by the tests: the library, tests, benchmarks, chapters.

The chapters (MyST notebooks) are converted with jupytext to py:percent scripts in
``build/lint/`` (``tests/notebooks/lint_notebooks.py``) and checked with the same configuration
as the library (``pyproject.toml``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "notebooks"))

import lint_notebooks


def _report(proc) -> str:
    return f"ruff found problems (fix them, or `make lint`):\n{proc.stdout}{proc.stderr}"


def test_library_tests_and_benchmarks_pass_ruff():
    proc = lint_notebooks.ruff([ROOT / "xfr_lib", ROOT / "tests", ROOT / "bench"])
    assert proc.returncode == 0, _report(proc)


def test_chapters_pass_ruff():
    paths = lint_notebooks.convert()
    assert len(paths) >= 6
    assert all(p.parent == lint_notebooks.LINT_DIR for p in paths)
    proc = lint_notebooks.ruff(paths, "--output-format", "concise")
    assert proc.returncode == 0, (f"ruff found problems in the chapters (`make lint`):\n"
                                  f"{lint_notebooks.locate(proc.stdout)}{proc.stderr}")


def test_the_converted_chapters_are_scripts_of_every_code_cell(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "07_x.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "    format_version: 0.13\nkernelspec:\n  display_name: Python 3\n  language: python\n"
        "  name: python3\n---\n\n# Title\n\n```{code-cell} ipython3\nimport os\n```\n\n"
        "Text.\n\n```{code-cell} ipython3\nx = 1\n```\n")
    paths = lint_notebooks.convert(notebooks=folder, out=tmp_path / "lint")
    assert [p.name for p in paths] == ["07_x.py"]
    text = paths[0].read_text()
    assert text.count("# %%") == 4 and "\nimport os\n" in text and "# Text." in text
    proc = lint_notebooks.ruff(paths, "--output-format", "concise")
    assert proc.returncode == 1 and "F401" in proc.stdout  # `os` imported but unused
    located = lint_notebooks.locate(proc.stdout, notebooks=folder)
    assert f"{folder / '07_x.md'}:16:8: F401" in located  # the line of the MyST notebook
