"""The chapter runner: parameters parsed from the notebook, bad values refused, real papermill runs."""

from __future__ import annotations

import re
import textwrap

import nbformat
import pytest
import yaml

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

TINY = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

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
