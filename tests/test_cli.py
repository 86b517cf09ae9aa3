"""The `xfr` command as a user types it: real photos work, bad input gets one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image
from test_explainers import FAST

from xfr_lib.data import asset_dir
from xfr_lib.explainers import list_methods

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
    rows = proc.stdout.strip().splitlines()
    lines = dict(line.split(None, 1) for line in rows if not line.startswith(" "))
    assert proc.returncode == 0 and set(lines) == set(list_methods()) | {"sdd"}  # sdd: classes
    assert lines["corrrise"].startswith("Pearson correlation")  # each method with its summary
    # Layer methods list each model's usable layers under their line, the default marked.
    after_gradcam = rows[rows.index(next(r for r in rows if r.startswith("gradcam "))) + 1:]
    assert after_gradcam[0].split() == ["layer", "on", "dlib_resnet29:", "block_35x35,",
                                        "block_17x17,", "block_8x8", "(default)"]
    assert "conv_7x7 (default)" in after_gradcam[1] and "sface" in after_gradcam[1]


@pytest.mark.parametrize("method", list_methods())
def test_explain_works_for_every_method(method, tmp_path, run):
    params = [f"-p{k}={v}" for k, v in FAST[method].items()]
    proc = run("explain", str(WILD / "macron/macron_1.jpg"), str(WILD / "macron/macron_2.jpg"),
               "--method", method, "--out", str(tmp_path), *params)
    assert proc.returncode == 0, proc.stderr
    (report,) = tmp_path.glob("*.json")
    assert json.loads(report.read_text())["method"] == method


def test_an_unknown_layer_lists_the_models_layers(run):
    proc = run("explain", str(WILD / "macron/macron_1.jpg"), str(WILD / "macron/macron_2.jpg"),
               "--method", "gradcam", "-p", "layer=block_99x99")
    assert_one_line_error(proc, "block_99x99", "block_35x35", "block_17x17", "block_8x8")


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


# --- photos with several faces: xfr faces, --face-a / --face-b / --face -----------------------
#
# Most of these call the command's ``main`` in this process (the same code as ``xfr``, without
# starting Python and loading torch again each time); one test of each kind runs ``xfr`` itself.

@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """A real group photo: Jacinda Ardern at full size (face 0, the largest) and Emmanuel
    Macron at half size (face 1) on her right."""
    left = Image.open(WILD / "ardern/ardern_1.jpg").convert("RGB")
    right = Image.open(WILD / "macron/macron_2.jpg").convert("RGB")
    right = right.resize((right.width // 2, right.height // 2))
    canvas = Image.new("RGB", (left.width + 40 + right.width, left.height), (200, 200, 200))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 40, 100))
    path = tmp_path_factory.mktemp("group") / "group.jpg"
    canvas.save(path, quality=95)
    return path


def _decision(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_faces_prints_every_face_and_writes_a_png(group, tmp_path):
    out = tmp_path / "figs" / "numbered.png"
    proc = xfr("faces", str(group), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["face 0", "face 1", "figure"]
    boxes = [[float(v) for v in line.split("box ")[1].split()[0].split(",")] for line in lines[:2]]
    assert boxes[0][2] * boxes[0][3] > boxes[1][2] * boxes[1][3]  # largest first
    assert boxes[0][0] + boxes[0][2] < 716 < boxes[1][0]             # Ardern left, Macron right
    assert all(float(line.rsplit("score ", 1)[1]) > 0.6 for line in lines[:2])
    assert lines[2] == f"figure: {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300


def test_faces_default_output_and_bad_input(group, tmp_path, monkeypatch, run):
    monkeypatch.chdir(tmp_path)
    proc = run("faces", str(group))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "figure: group_faces.png"
    assert (tmp_path / "group_faces.png").is_file()  # <photo>_faces.png in the current folder
    wall = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (180, 170, 160)).save(wall)
    assert_one_line_error(run("faces", str(wall)), "wall.png", "no face found")
    assert_one_line_error(run("faces", str(tmp_path / "nobody.jpg")), "nobody.jpg", "no such file")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["group_faces.png", "wall.png"]
    # --out may be a folder; a place that cannot be written is one line too.
    folder = tmp_path / "figures"
    folder.mkdir()
    proc = run("faces", str(group), "--out", str(folder))
    assert proc.returncode == 0 and (folder / "group_faces.png").is_file(), proc.stderr
    (tmp_path / "file").write_text("")
    assert_one_line_error(run("faces", str(group), "--out", str(tmp_path / "file" / "x.png")),
                          "file/x.png: cannot write the figure", "--out")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_verify_chooses_the_face(group, run):
    from xfr_lib.faces import list_faces

    ardern, macron = str(WILD / "ardern/ardern_2.jpg"), str(WILD / "macron/macron_1.jpg")
    first = run("verify", str(group), ardern, "--face-a", "0")
    assert _decision(first)["decision"] == "match" and not first.stderr
    second = run("verify", str(group), ardern, "--face-a", "1")
    assert _decision(second)["decision"] == "non-match" and not second.stderr
    swapped = run("verify", macron, str(group), "--face-b", "1")
    assert _decision(swapped)["decision"] == "match" and not swapped.stderr
    # Without a choice: the largest face, and one warning line saying so.
    default = run("verify", str(group), ardern)
    assert _decision(default) == _decision(first)
    (line,) = default.stderr.strip().splitlines()
    assert line.startswith("xfr: warning: ") and "2 faces found; using the largest" in line
    # A box as `xfr faces` prints it (whole pixels) chooses that face.
    x, y, w, h = (float(v) for v in list_faces(group)[1].box)
    boxed = run("verify", str(group), macron, "--face-a", f"{x:.0f},{y:.0f},{w:.0f},{h:.0f}")
    assert _decision(boxed)["score"] == pytest.approx(_decision(swapped)["score"], abs=1e-5)
    assert not boxed.stderr


def test_explain_explains_the_chosen_face(group, tmp_path):
    import xfr_lib

    macron = WILD / "macron/macron_1.jpg"
    out = tmp_path / "out"
    proc = xfr("explain", str(group), str(macron), "--face-a", "1", "--out", str(out),
               "--seed", "0", "-p", "n=16")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    (report,) = (json.loads(p.read_text()) for p in out.glob("*.json"))
    assert report["image_a"] == str(group) and report["image_b"] == str(macron)
    assert report["face_a"] == 1 and report["face_b"] is None  # the choice is recorded
    model = xfr_lib.load_model("dlib_resnet29")
    b = model.align(macron)
    second, first = (float(model.score(model.align(group, face=k), b)) for k in (1, 0))
    assert report["decision"] is True
    assert report["score"] == pytest.approx(second, abs=1e-5)
    assert abs(report["score"] - first) > 0.05


def test_a_bad_face_value_is_one_line(group):
    proc = xfr("verify", str(group), str(WILD / "ardern/ardern_2.jpg"), "--face-a", "abc")
    assert_one_line_error(proc, "--face-a 'abc'", "xfr faces PHOTO", "x,y,w,h")


@pytest.mark.parametrize("command, flag, value", [
    ("verify", "--face-b", "1,2"),
    ("verify", "--face-a", "1.5"),
    ("explain", "--face-a", "first"),
    ("explain", "--face-b", ""),
    ("identify", "--face", "0,0,a,b"),
])
def test_a_bad_face_value_names_its_option(group, tmp_path, run, command, flag, value):
    other = str(tmp_path) if command == "identify" else str(WILD / "ardern/ardern_2.jpg")
    proc = run(command, str(group), other, f"{flag}={value}")
    assert_one_line_error(proc, f"{flag} {value!r}: give a face number")


@pytest.mark.parametrize("value, needles", [
    ("7", ["group.jpg: face 7 asked for, but the photo has 2 face(s)", "xfr faces"]),
    ("-1", ["group.jpg: face -1 asked for"]),
    ("0,0,20,20", ["group.jpg: no detected face overlaps the box", "xfr faces"]),
    ("0,0,0,20", ["group.jpg: face=", "neither a face index nor"]),
])
def test_a_face_the_photo_lacks_is_one_line(group, run, value, needles):
    proc = run("verify", str(group), str(WILD / "ardern/ardern_2.jpg"), f"--face-a={value}")
    assert_one_line_error(proc, *needles)


@pytest.mark.slow
def test_identify_the_chosen_face_of_a_probe(group, tmp_path, run):
    gallery = tmp_path / "gallery"
    for person, name in (("macron", "macron_1.jpg"), ("ardern", "ardern_2.jpg"),
                         ("sunak", "sunak_1.jpg")):
        (gallery / person).mkdir(parents=True)
        (gallery / person / name).write_bytes((WILD / person / name).read_bytes())
    out = tmp_path / "out"
    proc = run("identify", str(group), str(gallery), "--face", "1", "-k", "1", "--out", str(out),
               "-p", "n=16")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("rank 1: macron")
    assert "faces found" not in proc.stderr
    (report,) = (json.loads(p.read_text()) for p in out.glob("*.json"))
    assert report["probe"] == str(group)
