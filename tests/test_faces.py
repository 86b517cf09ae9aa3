"""Image loading, detection and alignment on real photos, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xfr_lib.data import asset_dir, asset_file
from xfr_lib.errors import ImageError, NoFaceError, UnknownNameError
from xfr_lib.faces import (
    ARCFACE_TEMPLATE,
    _align,
    _chips,
    _detect,
    align_face,
    aligned_chip,
    chip_cache_key,
    choose_face,
    detect_faces,
    list_faces,
    load_image,
    similarity_transform,
)

WILD = sorted(p for p in asset_dir("wild").rglob("*") if p.suffix in {".jpg", ".png"})


@pytest.mark.parametrize("path", WILD, ids=lambda p: p.name)
def test_every_wild_photo_aligns_for_both_alignments(path):
    for alignment, size in (("arcface_5pt", (112, 112)), ("dlib_chip", (150, 150))):
        face = align_face(path, alignment, size)
        assert face.chip.shape == (*size, 3) and face.chip.dtype == np.uint8
        assert face.landmarks.shape == (68, 2)
        # Eyes (36-47) above the nose tip (30) above the mouth (48-67), all inside the chip.
        eyes_y = face.landmarks[36:48, 1].mean()
        assert eyes_y < face.landmarks[30, 1] < face.landmarks[48:68, 1].mean()
        assert (face.landmarks[27:68] > 0).all() and (face.landmarks[27:68] < size[0]).all()


def test_arcface_chip_puts_the_eyes_on_the_template():
    face = align_face(asset_dir("wild") / "macron" / "macron_1.jpg", "arcface_5pt", (112, 112))
    left_eye = face.landmarks[36:42].mean(0)  # the subject's right eye is on the image's left
    right_eye = face.landmarks[42:48].mean(0)
    assert np.linalg.norm(left_eye - ARCFACE_TEMPLATE[0]) < 4
    assert np.linalg.norm(right_eye - ARCFACE_TEMPLATE[1]) < 4


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_orl_greyscale_faces_are_found():
    orl = asset_dir("orl")
    found = [len(detect_faces(load_image(orl / f"s{k}" / "1.pgm"))) for k in range(1, 41)]
    assert all(n >= 1 for n in found)


def test_largest_of_several_faces_is_used_and_said(tmp_path):
    big = Image.open(asset_dir("wild") / "obama" / "obama_1.jpg").convert("RGB")
    small = Image.open(asset_dir("wild") / "macron" / "macron_1.jpg").convert("RGB")
    small = small.resize((small.width // 4, small.height // 4))
    canvas = Image.new("RGB", (big.width + small.width + 20, max(big.height, small.height)), "white")
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width + 20, 0))
    path = tmp_path / "two.jpg"
    canvas.save(path)
    with pytest.warns(UserWarning, match="faces found; using the largest"):
        face = align_face(path, "arcface_5pt", (112, 112))
    assert face.n_faces >= 2
    assert face.face.box[0] < big.width  # the big face is on the left


# --- bad input: one line naming the file and the problem (or conversion where it is right) ----

def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image file"):
        load_image(p)


def test_truncated_jpeg(tmp_path):
    data = (asset_dir("wild") / "obama" / "obama_1.jpg").read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated or corrupt image") as err:
        load_image(p)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.png")


def test_png_with_alpha_is_composited_and_usable():
    path = asset_file("test_images", "rgba_32bit.png")
    assert Image.open(path).mode == "RGBA"
    rgb = load_image(path)
    assert rgb.shape[2] == 3 and rgb.dtype == np.uint8
    assert align_face(path, "arcface_5pt", (112, 112)).chip.shape == (112, 112, 3)


def test_16bit_and_greyscale_are_converted(tmp_path):
    grey8 = np.asarray(Image.open(asset_dir("orl") / "s1" / "1.pgm"))
    p16 = tmp_path / "face16.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(p16)
    assert Image.open(p16).mode.startswith("I")
    rgb16 = load_image(p16)
    assert np.abs(rgb16[:, :, 0].astype(int) - grey8).max() <= 1
    assert (rgb16[:, :, 0] == rgb16[:, :, 2]).all()
    assert align_face(p16, "dlib_chip", (150, 150)).chip.shape == (150, 150, 3)


def test_image_without_a_face(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(p)
    with pytest.raises(NoFaceError, match=r"noise\.png: no face found in the 320x240 image"):
        align_face(p, "arcface_5pt", (112, 112))


def test_tiny_image(tmp_path):
    p = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20), "grey").save(p)
    with pytest.raises(ImageError, match=r"tiny\.png: image is 20x20 px, too small"):
        load_image(p)


def test_arrays_are_accepted_and_checked():
    rgb = load_image(asset_dir("wild") / "sunak" / "sunak_1.jpg")
    assert (load_image(rgb) == rgb).all()
    assert load_image(rgb[:, :, 0]).shape == rgb.shape
    np.testing.assert_array_equal(load_image(rgb.astype(np.float32) / 255.0), rgb)
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((64, 64, 2), np.uint8))


def test_unknown_alignment():
    with pytest.raises(UnknownNameError, match="unknown alignment"):
        align_face(asset_dir("wild") / "sunak" / "sunak_1.jpg", "mtcnn", (112, 112))


# --- choosing a face in a group photo --------------------------------------------------------
#
# A real group photo made from two bundled photos: Jacinda Ardern at full size on the left and
# Emmanuel Macron at half size on the right, so face 0 is Ardern's and face 1 Macron's.

GROUP_OFFSET = (756, 100)  # where the half-size Macron photo is pasted
GROUP_SCALE = 0.5


def _wild(identity: str) -> list:
    from xfr_lib.data import load_dataset

    return sorted((im.path for im in load_dataset("wild") if im.identity == identity), key=str)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    ardern, macron = _wild("Jacinda Ardern"), _wild("Emmanuel Macron")
    left = Image.open(ardern[0]).convert("RGB")
    right = Image.open(macron[1]).convert("RGB")
    right = right.resize((round(right.width * GROUP_SCALE), round(right.height * GROUP_SCALE)))
    canvas = Image.new("RGB", (GROUP_OFFSET[0] + right.width, left.height), (200, 200, 200))
    canvas.paste(left, (0, 0))
    canvas.paste(right, GROUP_OFFSET)
    path = tmp_path_factory.mktemp("group") / "group.jpg"
    canvas.save(path, quality=95)
    # Macron's face where it was pasted, from a detection in his own photo.
    (own,) = list_faces(macron[1])
    box = own.box * GROUP_SCALE + np.array([*GROUP_OFFSET, 0, 0])
    return {"path": path, "left_width": left.width, "macron_box": tuple(float(v) for v in box),
            "ardern": ardern, "macron": macron}


@pytest.fixture(scope="module")
def dlib_model():
    import xfr_lib

    return xfr_lib.load_model("dlib_resnet29")


def _iou(a, b) -> float:
    return _align._iou(np.asarray(a, float), np.asarray(b, float))


def test_list_faces_finds_both_largest_first(group):
    faces = list_faces(group["path"])
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] + faces[0].box[2] <= group["left_width"]  # Ardern, on the left
    assert faces[1].box[0] >= GROUP_OFFSET[0]                           # Macron, on the right
    assert _iou(faces[1].box, group["macron_box"]) > 0.8
    assert all(f.score > 0.6 for f in faces)


def test_default_face_warns_and_takes_the_largest(group):
    faces = list_faces(group["path"])
    with pytest.warns(UserWarning, match=r"group\.jpg: 2 faces found; using the largest") as rec:
        face = align_face(group["path"], "dlib_chip", (150, 150))
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert face.n_faces == 2
    np.testing.assert_array_equal(face.face.box, faces[0].box)


def test_an_index_or_a_box_chooses_a_face_without_warning(group, recwarn):
    faces = list_faces(group["path"])
    for choice in (1, np.int64(1), group["macron_box"], list(group["macron_box"])):
        face = align_face(group["path"], "arcface_5pt", (112, 112), face=choice)
        np.testing.assert_array_equal(face.face.box, faces[1].box)
    face = align_face(group["path"], "arcface_5pt", (112, 112), face=0)
    np.testing.assert_array_equal(face.face.box, faces[0].box)
    assert not [w for w in recwarn if "faces found" in str(w.message)]


def test_the_chosen_face_is_that_person(group, dlib_model):
    m = dlib_model
    ardern_own, macron_own = m.align(group["ardern"][1]), m.align(group["macron"][0])
    with pytest.warns(UserWarning, match="2 faces found"):
        default = m.align(group["path"])
    first, second = m.align(group["path"], face=0), m.align(group["path"], face=1)
    boxed = m.align(group["path"], face=group["macron_box"])
    assert float(m.score(first, ardern_own)) >= m.threshold
    assert float(m.score(first, macron_own)) < m.threshold
    assert float(m.score(second, macron_own)) >= m.threshold
    assert float(m.score(second, ardern_own)) < m.threshold
    assert (default == first).all() and (boxed == second).all()


def test_explain_uses_the_chosen_faces(group, dlib_model):
    import xfr_lib
    from xfr_lib.faces import tensor_to_chip

    m = dlib_model
    expl = xfr_lib.explain("corrrise", m, group["path"], group["macron"][0], face_a=1, n=16,
                           seed=0)
    np.testing.assert_array_equal(expl.chip_a, tensor_to_chip(m.align(group["path"], face=1)))
    assert expl.decision is True
    np.testing.assert_allclose(
        expl.score, float(m.score(m.align(group["path"], face=1), m.align(group["macron"][0]))),
        atol=1e-5)


def test_face_index_out_of_range_is_one_line_naming_the_photo(group):
    for k in (2, -1):
        with pytest.raises(ImageError, match=rf"group\.jpg: face {k} asked for, but the photo has "
                                             r"2 face\(s\), numbered 0\.\.1") as err:
            align_face(group["path"], "arcface_5pt", (112, 112), face=k)
        assert "\n" not in str(err.value) and "xfr faces" in str(err.value)


def test_box_over_the_background_is_one_line_naming_the_photo(group):
    background = (group["left_width"] + 2, 5, 30, 60)  # the grey strip between the photos
    with pytest.raises(ImageError, match=r"group\.jpg: no detected face overlaps the box") as err:
        align_face(group["path"], "arcface_5pt", (112, 112), face=background)
    assert "\n" not in str(err.value) and "xfr faces" in str(err.value)


@pytest.mark.parametrize("bad", [(0, 0, 0, 10), (1, 2, 3), (0, 0, float("nan"), 5), 1.0, True])
def test_a_malformed_choice_is_one_line(group, bad):
    faces = list_faces(group["path"])
    with pytest.raises(ImageError, match=r"group\.jpg: face=.* is neither a face index nor") as e:
        choose_face(faces, bad, str(group["path"]), (900, 1117, 3))
    assert "\n" not in str(e.value)


def test_choosing_among_no_faces_says_so():
    with pytest.raises(NoFaceError, match=r"wall\.png: no face found in the 60x40 image"):
        choose_face([], 0, "wall.png", (40, 60, 3))


def test_plot_faces_numbers_every_face(group):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from xfr_lib.plot import plot_faces

    fig = plot_faces(group["path"])
    try:
        ax = fig.axes[0]
        assert sum(isinstance(p, Rectangle) for p in ax.patches) == 2
        assert [t.get_text().strip() for t in ax.texts] == ["0", "1"]
        assert "2 face(s)" in ax.get_title()
    finally:
        plt.close(fig)


# --- the aligned-chip cache --------------------------------------------------------------------

@pytest.fixture
def chip_cache(tmp_path, monkeypatch):
    """An empty cache of its own that shares the real cache's assets (symlinked, not copied)."""
    from xfr_lib.data import _assets, cache_dir

    for name in ("yunet", "dlib_landmarks", "wild"):
        asset_dir(name)  # make sure the shared cache holds them
    real = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    for sub in ("assets", "downloads"):
        if (real / sub).exists():
            (cache / sub).symlink_to(real / sub, target_is_directory=True)
    monkeypatch.setenv(_assets.CACHE_ENV, str(cache))
    return cache


def _entries(cache) -> list:
    return sorted(p for p in (cache / "chips").rglob("*") if p.is_file())


def test_key_is_stable_and_short():
    keys = {chip_cache_key("dlib_chip", (150, 150)) for _ in range(3)}
    assert len(keys) == 1
    (key,) = keys
    assert len(key) == 16 and int(key, 16) >= 0
    assert chip_cache_key("arcface_5pt", [112, 112], 1) == chip_cache_key(
        "arcface_5pt", (np.int64(112), 112), np.int64(1))
    assert chip_cache_key("arcface_5pt", (112, 112), (10, 20, 30, 40)) == chip_cache_key(
        "arcface_5pt", (112, 112), (10.0, 20.0, 30.0, 40.0))


def _edit_manifest(monkeypatch, tmp_path, edit) -> None:
    import yaml

    from xfr_lib.data import _assets

    m = yaml.safe_load(_assets.manifest_path().read_text())
    edit(m)
    path = tmp_path / "data_manifest.yaml"
    path.write_text(yaml.safe_dump(m))
    monkeypatch.setenv(_assets.MANIFEST_ENV, str(path))


def _set_sha(asset: str, k: int):
    def edit(m):
        m["assets"][asset]["files"][k]["sha256"] = "0" * 64
    return edit


CHANGES = {
    "version": lambda mp, tmp: mp.setattr(_chips, "CACHE_VERSION", 999),
    "detector score": lambda mp, tmp: mp.setitem(
        _detect.DETECTOR, "score_threshold", 0.7),
    "detector nms": lambda mp, tmp: mp.setitem(
        _detect.DETECTOR, "nms_threshold", 0.4),
    "detector replaced": lambda mp, tmp: mp.setattr(
        _detect, "DETECTOR", {"model": "other.onnx"}),
    "landmark model": lambda mp, tmp: mp.setitem(
        _detect.LANDMARK_MODELS, 68, "other.dat"),
    "dlib box": lambda mp, tmp: mp.setattr(_detect, "DLIB_BOX_DY", 0.1),
    "dlib padding": lambda mp, tmp: mp.setattr(_align, "DLIB_PADDING", 0.3),
    "template": lambda mp, tmp: mp.setattr(_align, "ARCFACE_TEMPLATE",
                                           ARCFACE_TEMPLATE + 1.0),
    "yunet checksum": lambda mp, tmp: _edit_manifest(mp, tmp, _set_sha("yunet", 0)),
    "landmarks checksum": lambda mp, tmp: _edit_manifest(mp, tmp, _set_sha("dlib_landmarks", 1)),
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("alignment", ["dlib_chip", "arcface_5pt"])
def test_key_changes_with_what_makes_the_chip(change, alignment, monkeypatch, tmp_path):
    size = (150, 150) if alignment == "dlib_chip" else (112, 112)
    before = chip_cache_key(alignment, size)
    CHANGES[change](monkeypatch, tmp_path)
    after = chip_cache_key(alignment, size)
    own_setting = {"dlib padding": "dlib_chip", "template": "arcface_5pt"}.get(change, alignment)
    assert (after != before) == (own_setting == alignment)
    monkeypatch.undo()
    assert chip_cache_key(alignment, size) == before


def test_key_changes_with_alignment_size_and_face():
    keys = [chip_cache_key("dlib_chip", (150, 150)), chip_cache_key("arcface_5pt", (150, 150)),
            chip_cache_key("dlib_chip", (200, 200)), chip_cache_key("dlib_chip", (150, 150), 0),
            chip_cache_key("dlib_chip", (150, 150), 1),
            chip_cache_key("dlib_chip", (150, 150), (1, 2, 3, 4)),
            chip_cache_key("dlib_chip", (150, 150), (1, 2, 3, 5))]
    assert len(set(keys)) == len(keys)


def test_key_ignores_what_does_not_make_the_chip(monkeypatch, tmp_path):
    before = chip_cache_key("dlib_chip", (150, 150))

    def reword(m):
        for name in ("yunet", "dlib_landmarks"):
            m["assets"][name]["description"] += " (reworded)"
            m["assets"][name]["licence"] += " (reworded)"
        m["assets"]["wild"]["files" if "files" in m["assets"]["wild"] else "trees"] = []

    _edit_manifest(monkeypatch, tmp_path, reword)
    assert chip_cache_key("dlib_chip", (150, 150)) == before


def _refuse(*args, **kwargs):
    raise AssertionError("detected again although the chip is cached")


def test_a_cached_chip_is_reused_without_detecting(chip_cache, monkeypatch):
    path = _wild("Jacinda Ardern")[0]
    first = aligned_chip(path, "dlib_chip", (150, 150))
    assert first["error"] is None and first["chip"].shape == (150, 150, 3)
    (entry,) = _entries(chip_cache)
    assert entry.parent.parent.name == chip_cache_key("dlib_chip", (150, 150))
    monkeypatch.setattr(_chips, "align_face", _refuse)
    again = aligned_chip(path, "dlib_chip", (150, 150))
    np.testing.assert_array_equal(again["chip"], first["chip"])
    np.testing.assert_array_equal(again["landmarks"], first["landmarks"])
    assert again["n_faces"] == first["n_faces"] == 1 and again["error"] is None
    # A copy of the same bytes under another name is the same entry.
    copy = chip_cache / "elsewhere.jpg"
    copy.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(aligned_chip(copy, "dlib_chip", (150, 150))["chip"], first["chip"])
    # Anything that changes the key, or not using the cache, makes the chip again.
    with pytest.raises(AssertionError, match="detected again"):
        aligned_chip(path, "dlib_chip", (150, 150), use_cache=False)
    with pytest.raises(AssertionError, match="detected again"):
        aligned_chip(path, "dlib_chip", (150, 150), face=0)
    monkeypatch.setattr(_chips, "CACHE_VERSION", _chips.CACHE_VERSION + 1)
    with pytest.raises(AssertionError, match="detected again"):
        aligned_chip(path, "dlib_chip", (150, 150))


def test_an_edited_image_is_a_new_entry(chip_cache, tmp_path):
    photo = tmp_path / "photo.png"
    rgb = load_image(_wild("Jacinda Ardern")[0])
    Image.fromarray(rgb).save(photo)
    before = aligned_chip(photo, "arcface_5pt", (112, 112))["chip"]
    Image.fromarray(rgb[:, ::-1]).save(photo)  # mirrored: same name, other bytes
    after = aligned_chip(photo, "arcface_5pt", (112, 112))["chip"]
    assert len(_entries(chip_cache)) == 2
    assert not np.array_equal(before, after)


def test_a_photo_without_a_face_is_cached_with_its_reason(chip_cache, tmp_path, monkeypatch):
    noise = tmp_path / "noise.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(noise)
    first = aligned_chip(noise, "arcface_5pt", (112, 112))
    assert first["chip"] is None and np.isnan(first["landmarks"]).all()
    assert first["error"] == f"{noise}: no face found in the 320x240 image; use a photo with a " \
                             "visible, roughly frontal face"
    assert len(_entries(chip_cache)) == 1
    monkeypatch.setattr(_chips, "align_face", _refuse)
    again = aligned_chip(noise, "arcface_5pt", (112, 112))
    assert again["chip"] is None and again["error"] == first["error"]
    # Under another name, the cached reason names that file.
    other = tmp_path / "other.png"
    other.write_bytes(noise.read_bytes())
    assert aligned_chip(other, "arcface_5pt", (112, 112))["error"].startswith(f"{other}: no face")


def test_a_cached_failure_names_the_file_it_is_read_for(chip_cache, group, tmp_path, monkeypatch):
    first = aligned_chip(group["path"], "arcface_5pt", (112, 112), face=5)
    assert first["chip"] is None
    assert first["error"].startswith(f"{group['path']}: face 5 asked for, but the photo has 2")
    assert f"'xfr faces {group['path']}'" in first["error"]
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(group["path"].read_bytes())
    monkeypatch.setattr(_chips, "align_face", _refuse)
    again = aligned_chip(copy, "arcface_5pt", (112, 112), face=5)["error"]
    assert again.startswith(f"{copy}: face 5 asked for") and f"'xfr faces {copy}'" in again
    assert str(group["path"]) not in again and "\n" not in again


def test_a_failure_under_one_key_does_not_poison_another(chip_cache, group, monkeypatch):
    assert aligned_chip(group["path"], "dlib_chip", (150, 150), face=2)["error"]
    assert aligned_chip(group["path"], "dlib_chip", (150, 150), face=(0, 0, 20, 20))["error"]
    for choice in (None, 0, 1, group["macron_box"]):
        rec = aligned_chip(group["path"], "dlib_chip", (150, 150), face=choice)
        assert rec["error"] is None and rec["chip"].shape == (150, 150, 3)
        assert rec["n_faces"] == 2
    # An unexpected error (not a bad photo) is not remembered.
    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(_chips, "align_face", crash)
    with pytest.raises(RuntimeError):
        aligned_chip(group["path"], "arcface_5pt", (112, 112))
    monkeypatch.undo()
    assert aligned_chip(group["path"], "arcface_5pt", (112, 112))["error"] is None


def test_nothing_half_written_when_writing_fails(chip_cache, monkeypatch):
    path = _wild("Jacinda Ardern")[0]
    real_savez = np.savez

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(UserWarning, match="chip cache not written .*No space left on device") as w:
        rec = aligned_chip(path, "dlib_chip", (150, 150))
    assert len(w) == 1 and "\n" not in str(w[0].message)
    assert rec["error"] is None and rec["chip"].shape == (150, 150, 3)  # the chip all the same
    assert _entries(chip_cache) == []  # no entry, no temporary file
    monkeypatch.setattr(np, "savez", real_savez)
    aligned_chip(path, "dlib_chip", (150, 150))
    (entry,) = _entries(chip_cache)
    monkeypatch.setattr(_chips, "align_face", _refuse)
    np.testing.assert_array_equal(aligned_chip(path, "dlib_chip", (150, 150))["chip"], rec["chip"])
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]


def test_a_damaged_entry_is_made_again(chip_cache):
    path = _wild("Jacinda Ardern")[0]
    good = aligned_chip(path, "arcface_5pt", (112, 112))
    (entry,) = _entries(chip_cache)
    entry.write_bytes(entry.read_bytes()[:100])  # damaged outside xfr (a full disk, a copy)
    again = aligned_chip(path, "arcface_5pt", (112, 112))
    np.testing.assert_array_equal(again["chip"], good["chip"])
    assert entry.stat().st_size > 1000  # and written whole again
