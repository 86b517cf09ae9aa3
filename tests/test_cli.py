"""The `xfr` command as a user types it: real photos work, bad input gets one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from xfr_lib.data import asset_dir

WILD = asset_dir("wild")


def xfr(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xfr_lib.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xfr: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_lists():
    proc = xfr("models")
    assert proc.returncode == 0 and {"dlib_resnet29", "sface"} <= set(proc.stdout.split())
    proc = xfr("datasets")
    assert proc.returncode == 0 and {"orl", "wild", "radar", "lfw", "folder"} <= set(proc.stdout.split())
    proc = xfr("methods")
    assert proc.returncode == 0 and {"corrrise", "rise"} <= set(proc.stdout.split())


def test_verify_same_person_and_impostor():
    same = json.loads(xfr("verify", str(WILD / "macron/macron_1.jpg"), str(WILD / "macron/macron_2.jpg")).stdout)
    other = json.loads(xfr("verify", str(WILD / "macron/macron_1.jpg"), str(WILD / "sunak/sunak_1.jpg"),
                           "--model", "sface").stdout)
    assert same["decision"] == "match" and same["score"] >= same["threshold"]
    assert other["decision"] == "non-match" and other["model"] == "sface"


def test_explain_writes_figure_and_json(tmp_path):
    out = tmp_path / "out"
    proc = xfr("explain", str(WILD / "ardern/ardern_1.jpg"), str(WILD / "ardern/ardern_2.jpg"),
               "--method", "corrrise", "--out", str(out), "--seed", "3", "-p", "n=60")
    assert proc.returncode == 0, proc.stderr
    pngs, jsons = list(out.glob("*.png")), list(out.glob("*.json"))
    assert len(pngs) == 1 and len(jsons) == 1
    assert Image.open(pngs[0]).size[0] > 300
    report = json.loads(jsons[0].read_text())
    assert report["method"] == "corrrise" and report["params"]["seed"] == 3
    assert report["params"]["n"] == 60
    assert report["decision"] in (True, False) and isinstance(report["score"], float)


def test_explain_missing_file(tmp_path):
    proc = xfr("explain", str(tmp_path / "nobody.jpg"), str(WILD / "ardern/ardern_2.jpg"))
    assert_one_line_error(proc, "nobody.jpg", "no such file")


def test_explain_file_without_face(tmp_path):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (180, 170, 160)).save(blank)
    proc = xfr("explain", str(blank), str(WILD / "ardern/ardern_2.jpg"))
    assert_one_line_error(proc, "wall.png", "no face found")


def test_explain_unknown_method():
    proc = xfr("explain", str(WILD / "ardern/ardern_1.jpg"), str(WILD / "ardern/ardern_2.jpg"),
               "--method", "telepathy")
    assert_one_line_error(proc, "unknown method 'telepathy'", "corrrise")


def test_unknown_model():
    proc = xfr("verify", str(WILD / "ardern/ardern_1.jpg"), str(WILD / "ardern/ardern_2.jpg"), "--model", "arc")
    assert_one_line_error(proc, "unknown model 'arc'", "dlib_resnet29")


def test_bad_parameter_syntax():
    proc = xfr("explain", str(WILD / "ardern/ardern_1.jpg"), str(WILD / "ardern/ardern_2.jpg"), "-p", "n_masks")
    assert_one_line_error(proc, "NAME=VALUE")


@pytest.mark.slow
def test_identify_ranks_the_right_person_first(tmp_path):
    gallery = tmp_path / "gallery"
    for person, name in (("macron", "macron_2.jpg"), ("ardern", "ardern_2.jpg"), ("sunak", "sunak_1.jpg"),
                         ("biden", "biden_1.jpg")):
        (gallery / person).mkdir(parents=True)
        (gallery / person / name).write_bytes((WILD / person / name).read_bytes())
    out = tmp_path / "out"
    proc = xfr("identify", str(WILD / "macron/macron_1.jpg"), str(gallery), "-k", "2", "--out", str(out),
               "-p", "n=40")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("rank 1: macron")
    assert list(out.glob("*.png")) and list(out.glob("*.json"))
