"""Image loading, detection and alignment on real photos, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xfr_lib.data import asset_dir, asset_file
from xfr_lib.errors import ImageError, NoFaceError, UnknownNameError
from xfr_lib.faces import (
    ARCFACE_TEMPLATE,
    align_face,
    detect_faces,
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
