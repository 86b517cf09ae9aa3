"""``xfr lab``: the chapters as live notebooks in a scratch copy (xfr_lib.lab)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from xfr_lib.errors import UnknownNameError
from xfr_lib.lab import lab_command, prepare_lab
from xfr_lib.runner import chapter_path, parameters_cell

XFR = str(Path(sys.executable).with_name("xfr"))
WIDGETS = "13_workshop"


def _out_dir(path: Path) -> str:
    source = parameters_cell(nbformat.read(path, as_version=4)).source
    return re.search(r'^out_dir\s*=\s*"([^"]*)"', source, re.MULTILINE).group(1)


def test_the_scratch_copy_is_written_once_and_kept(tmp_path):
    done = prepare_lab(tmp_path / "lab", [13, "1"])
    assert [(p.name, how) for p, how in done] == [("01_face_recognition.ipynb", "written"),
                                                 (f"{WIDGETS}.ipynb", "written")]
    nb = tmp_path / "lab" / f"{WIDGETS}.ipynb"
    assert _out_dir(nb) == f"out/{WIDGETS}"  # each chapter saves into a folder of its own
    assert 'out_dir = "out"' in chapter_path(WIDGETS).read_text()  # the original is untouched
    nb.write_text(nb.read_text().replace("How important", "How big"))  # a participant's edit
    again = {p.name: how for p, how in prepare_lab(tmp_path / "lab", [WIDGETS])}
    assert again == {f"{WIDGETS}.ipynb": "kept"} and "How big" in nb.read_text()
    prepare_lab(tmp_path / "lab", [WIDGETS], fresh=True)
    assert "How big" not in nb.read_text()


def test_an_unknown_chapter_writes_nothing(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown chapter '99'"):
        prepare_lab(tmp_path / "lab", [1, 99])
    assert not (tmp_path / "lab").exists() or not any((tmp_path / "lab").iterdir())


def test_the_command_line_prepares_and_names_the_command(tmp_path):
    proc = subprocess.run([XFR, "lab", "13", "2", "--dir", str(tmp_path / "lab"),
                           "--prepare-only"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("lab: 2 chapters written")
    assert lines[1].endswith(f"{WIDGETS}.ipynb")  # the first chapter asked for opens
    assert "--LabApp.news_url=None" in lines[1]  # nothing fetched from the internet
    proc = subprocess.run([XFR, "lab", "nope", "--dir", str(tmp_path / "x"), "--prepare-only"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("xfr: error: unknown chapter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_jupyterlab_serves_the_copy_with_widgets_and_the_chapter_runs_there(tmp_path):
    lab = tmp_path / "lab"
    port = _free_port()
    env = {**os.environ, "JUPYTER_TOKEN": "xfr-test", "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen([XFR, "lab", WIDGETS, "--dir", str(lab), "--no-browser", "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, start_new_session=True)
    try:
        base, token = f"http://127.0.0.1:{port}", "token=xfr-test"
        contents = _get(f"{base}/api/contents?{token}", time.monotonic() + 90)
        assert [c["name"] for c in contents["content"]] == [f"{WIDGETS}.ipynb"]
        extensions = {e["name"]: e["enabled"]
                      for e in _get(f"{base}/lab/api/extensions?{token}", time.monotonic() + 30)}
        assert extensions.get("@jupyter-widgets/jupyterlab-manager") is True, extensions
        assert extensions.get("jupyterlab-jupytext") is True, extensions  # MyST files open too
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # xfr lab became JupyterLab; its kernels too
        server.wait(timeout=30)

    # The copy runs where JupyterLab's kernel runs it (its folder), small: one pair, one method.
    path = lab / f"{WIDGETS}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = parameters_cell(nb)
    cell.source += '\npairs = ["macron_1:macron_2"]\nmethods = ["mery_average"]\n'
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(lab)}}).execute()
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the widgets chapter showed no widget"
    assert nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert (lab / "out" / WIDGETS).is_dir()
    shutil.rmtree(lab / "out")


def test_without_jupyterlab_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jupyterlab" else real(name, *a))
    with pytest.raises(Exception, match=r"pip install 'xfr-lib\[lab\]'"):
        lab_command(tmp_path)
