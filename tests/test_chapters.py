"""The chapter runner: parameters parsed from the notebook, bad values refused, real papermill runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import MYST_HEADER

from xfr_lib import runner
from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.runner import (
    ChapterError,
    Parameter,
    chapter_parameters,
    list_chapters,
    main,
    parse_parameters,
    resolve_chapter,
    resolve_parameters,
    run_chapter,
)

CH1 = "01_face_recognition"
ROOT = Path(__file__).resolve().parents[1]
RUN_NBVAL = ROOT / "tests" / "notebooks" / "run_nbval.py"

TINY = MYST_HEADER + """
# A tiny chapter

```{code-cell} ipython3
:tags: [parameters]

n = 2  # a number to square
label = "x"
out_dir = "out"  # set by the runner
```

```{code-cell} ipython3
from pathlib import Path

Path(out_dir).mkdir(parents=True, exist_ok=True)
(Path(out_dir) / "result.txt").write_text(f"{label}={n * n}")
print(n * n)
```
"""


# A chapter with a deliberately false guard: whatever runs it must fail and quote the sentence.
FALSE_GUARD = TINY.replace("print(n * n)", """\
from xfr_lib.book import Chapter

Chapter(out_dir).claim(1 > 2, "one is more than two")""") + """
```{code-cell} ipython3
print("never reached")
```
"""
SENTENCE = "one is more than two"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A real chapter folder with one small notebook, used through $XFR_NOTEBOOKS."""
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    (folder / "07_tiny.md").write_text(TINY)
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(folder))
    return folder


# --- finding chapters and parsing parameters ----------------------------------------------------

def test_chapters_are_listed_and_resolved_by_number():
    assert CH1 in list_chapters()
    assert resolve_chapter(1) == CH1
    assert resolve_chapter("01") == CH1
    assert resolve_chapter(f"notebooks/{CH1}.md") == CH1
    with pytest.raises(UnknownNameError, match=CH1):
        resolve_chapter("99")


def test_chapter_parameters_come_from_the_parameters_cell():
    params = chapter_parameters(CH1)
    assert {"models", "orl_identities", "seed", "out_dir"} <= set(params)
    assert params["models"].type == "list[str]"
    assert params["models"].default == ["dlib_resnet29", "sface"]
    assert params["orl_identities"].type == "int"
    assert params["fmr_levels"].type == "list[float]"
    assert params["seed"].help.startswith("seed of every random choice")


def test_parse_parameters_types_annotations_and_help():
    params = parse_parameters(textwrap.dedent("""\
        a = 1  # an int
        b: float = 2
        c: Optional[str] = None
        d = [1, 2.5]
        e = True
    """))
    assert [p.type for p in params.values()] == ["int", "float", "Optional[str]", "list[float]",
                                                 "bool"]
    assert params["a"].help == "an int"
    assert params["c"].check(None) is None
    assert params["d"].check([1, 2]) == [1.0, 2.0]
    assert isinstance(params["b"].check(3), float)


@pytest.mark.parametrize("source, message", [
    ("x = len([1])", "must be a literal"),
    ("x = None", "annotate its type"),
    ("x, y = 1, 2", "only 'name = value'"),
    ("x: tuple = (1,)", "use int, float"),
    ("x: str | None = None", "papermill cannot read the parameter 'x'"),
    ("x: int = 'a'", "must be int"),
    ("x = (", "not valid Python"),
])
def test_parse_parameters_refuses_what_it_cannot_check(source, message):
    with pytest.raises(ChapterError, match=message):
        parse_parameters(source)


@pytest.mark.parametrize("type_, good, bad", [
    ("int", 3, [True, 2.5, "3"]),
    ("float", 3, [True, "0.5", None]),
    ("bool", False, [0, "true"]),
    ("list[str]", ["a"], ["a", [1], (1,)]),
    ("Optional[str]", None, [1, ["a"]]),
])
def test_parameter_check_accepts_the_type_and_refuses_others(type_, good, bad):
    param = Parameter("p", good, type_)
    assert param.check(good) == good
    for value in bad:
        with pytest.raises(ChapterError, match="parameter 'p' must be " + re.escape(type_)):
            param.check(value)


# --- refusing bad parameters before anything runs -----------------------------------------------

def test_unknown_parameter_is_refused_with_the_valid_names(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ChapterError) as info:
        run_chapter(CH1, overrides={"n_pairs": 10}, out_dir=out)
    message = str(info.value)
    assert "'n_pairs'" in message and "valid names: models, orl_identities" in message
    assert "\n" not in message
    assert not out.exists()  # refused before anything was written or run


def test_wrong_type_is_refused(tmp_path):
    with pytest.raises(ChapterError, match="'orl_identities' must be int, got 'ten'"):
        run_chapter(CH1, overrides={"orl_identities": "ten"}, out_dir=tmp_path / "x")
    with pytest.raises(ChapterError, match="'models' must be list.str."):
        resolve_parameters(CH1, overrides={"models": "sface"})


def test_out_dir_is_set_by_the_runner_only():
    with pytest.raises(ChapterError, match="--out"):
        resolve_parameters(CH1, overrides={"out_dir": "/tmp/x"})


def test_parameter_files_are_checked(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("orl_identities: 30\nfmr_levels: [0.1]\n")
    values = resolve_parameters(CH1, params_file=good, overrides={"seed": 4})
    assert values["orl_identities"] == 30 and values["fmr_levels"] == [0.1] and values["seed"] == 4
    assert values["models"] == ["dlib_resnet29", "sface"]  # defaults fill the rest
    bad = tmp_path / "bad.yaml"
    bad.write_text("orl_identitis: 30\n")
    with pytest.raises(ChapterError, match=f"no parameter 'orl_identitis' \\(in parameter file {bad}"):
        resolve_parameters(CH1, params_file=bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ChapterError, match="must be a mapping"):
        resolve_parameters(CH1, params_file=bad)
    with pytest.raises(ChapterError, match="not found"):
        resolve_parameters(CH1, params_file=tmp_path / "missing.yaml")


def test_the_shipped_parameter_files_are_valid():
    for chapter in list_chapters():
        for kind in ("book", "paper"):
            path = runner.params_file(chapter, kind)
            if path is not None:
                resolve_parameters(chapter, params_file=path)


def test_cli_reports_errors_in_one_line_and_exits_2(capsys):
    assert main([CH1, "-p", "n_pairs", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xfr: error: chapter 01_face_recognition has no parameter 'n_pairs'")
    assert len(err.splitlines()) == 1
    assert main(["no_such_chapter"]) == 2
    assert "unknown chapter 'no_such_chapter'" in capsys.readouterr().err
    assert main(["1", "--list"]) == 0
    assert "orl_identities: int = 20" in capsys.readouterr().out


def test_help_with_a_chapter_lists_its_parameters(capsys):
    """`xfr run 1 --help`, as the README says: usage, then the chapter's parameters with their
    types, defaults and help text (from papermill's inspection of the parameters cell)."""
    assert main(["1", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: xfr run") and "parameters of 01_face_recognition:" in out
    assert "seed: int = 0  # seed of every random choice" in out
    assert main(["--help"]) == 0 and "chapter" in capsys.readouterr().out
    assert main([]) == 2 and "name the chapter" in capsys.readouterr().err


# --- real runs ----------------------------------------------------------------------------------

def test_run_with_overrides_writes_notebook_outputs_and_parameters(tiny, tmp_path):
    out = tmp_path / "run"
    path = run_chapter("07_tiny", overrides={"n": 3}, out_dir=out, progress=False)
    assert path == (out / "07_tiny.ipynb").resolve()
    nb = nbformat.read(path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 3" in injected[0].source
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "9" in printed
    assert (out / "result.txt").read_text() == "x=9"  # the notebook saved into out_dir
    record = yaml.safe_load((out / "parameters.yaml").read_text())
    assert record["status"] == "ok" and record["chapter"] == "07_tiny"
    assert record["parameters"] == {"n": 3, "label": "x", "out_dir": "."}
    assert record["out_dir"] == str(out.resolve())
    assert record["outputs"] == ["result.txt"]
    assert len(record["source_sha256"]) == 64


def test_cli_run_reads_values_as_yaml_but_keeps_text_for_str(tiny, tmp_path, capsys):
    (tiny / "params" / "07_tiny-paper.yaml").write_text("n: 5\n")
    out = tmp_path / "cli"
    status = main(["7", "-f", str(tiny / "params" / "07_tiny-paper.yaml"), "-p", "label", "12",
                   "--out", str(out), "--no-progress"])
    assert status == 0, capsys.readouterr().err
    assert (out / "result.txt").read_text() == "12=25"


def test_failing_chapter_names_the_cell_and_keeps_the_partial_notebook(tiny, tmp_path):
    (tiny / "08_broken.md").write_text(TINY.replace("print(n * n)", "print(1 / (n - 2))"))
    out = tmp_path / "broken"
    with pytest.raises(ChapterError, match=r"failed at In \[3\]: ZeroDivisionError: division by zero") as info:
        run_chapter("08_broken", out_dir=out, progress=False)
    assert isinstance(info.value, XfrError)
    assert (out / "08_broken.ipynb").is_file()
    assert yaml.safe_load((out / "parameters.yaml").read_text())["status"] == "failed"


@pytest.mark.slow
def test_chapter_1_with_the_fastest_parameters_saves_its_figures_and_tables(tmp_path):
    out = tmp_path / "ch1"
    run_chapter(CH1, overrides={"models": ["dlib_resnet29"], "n_distractors": 0,
                                "grid_identities": 1}, out_dir=out, progress=False)
    saved = {p.name for p in out.iterdir()}
    assert {"chips.png", "roc_det.png", "cmc.png", "tab-verification.csv",
            "tab-comparison.csv", "parameters.yaml", f"{CH1}.ipynb"} <= saved
    record = yaml.safe_load((out / "parameters.yaml").read_text())
    assert record["parameters"]["models"] == ["dlib_resnet29"]
    assert "tab-verification.csv" in record["outputs"]


# --- a false sentence fails the build -----------------------------------------------------------

def test_a_false_guard_fails_run_chapter_with_the_sentence_in_one_line(tiny, tmp_path):
    (tiny / "09_false.md").write_text(FALSE_GUARD)
    out = tmp_path / "false"
    with pytest.raises(ChapterError) as info:
        run_chapter("09_false", out_dir=out, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert f'ClaimError: the chapter says "{SENTENCE}"' in message
    assert "failed at In [3]" in message
    record = yaml.safe_load((out / "parameters.yaml").read_text())
    assert record["status"] == "failed" and SENTENCE in record["error"]


def test_a_false_guard_fails_the_nbval_build_and_leaves_no_stamp(tiny, tmp_path):
    """The path of ``make test``/``make book``: tests/notebooks/run_nbval.py (nbval + stamps)."""
    (tiny / "09_false.md").write_text(FALSE_GUARD)
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, str(RUN_NBVAL), "--out", str(out), "7", "9"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
                          env={**os.environ, runner.NOTEBOOKS_ENV: str(tiny)})
    report = proc.stdout + proc.stderr
    assert proc.returncode != 0, report
    assert SENTENCE in report
    assert "09_false/09_false.ipynb::Cell 2" in report  # pytest's report names the cell
    assert re.search(r"nbval: 09_false: failed at Cell 2 \(In \[3\]\).*ClaimError", report)
    assert not (out / "09_false" / ".done").exists()
    record = yaml.safe_load((out / "09_false" / "parameters.yaml").read_text())
    assert record["status"] == "failed" and SENTENCE in record["error"]
    partial = nbformat.read(out / "09_false" / "09_false.ipynb", as_version=4)
    assert partial.metadata["xfr"]["status"] == "failed"
    errors = [o for c in partial.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert len(errors) == 1 and SENTENCE in errors[0].evalue
    assert partial.cells[-1].outputs == []  # the cells after the failure are skipped
    # the good chapter of the same run is complete and stamped
    assert (out / "07_tiny" / ".done").is_file()
    assert yaml.safe_load((out / "07_tiny" / "parameters.yaml").read_text())["status"] == "ok"


def test_xfr_run_outside_a_checkout_says_it_needs_the_repository_notebooks(tmp_path, monkeypatch,
                                                                          capsys):
    from xfr_lib.cli import main as xfr

    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(tmp_path / "no-checkout" / "notebooks"))
    monkeypatch.chdir(tmp_path)
    assert xfr(["run", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("xfr: error: the chapters' notebooks are not installed with xfr_lib")
    assert "from a checkout of the xfr repository" in err
    assert runner.NOTEBOOKS_ENV in err
    assert not (tmp_path / "out").exists()
