"""Occluders land where the landmarks say; mass measures give their known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.faces import (
    mass_in_region,
    mass_ratio_to_chance,
    mirror_landmarks,
    occlude,
    occluder_content,
    occluder_region,
    pose_table,
    roll,
    yaw,
)

H = W = 150


def frontal_landmarks(cx: float = 75.0) -> np.ndarray:
    """A hand-made symmetric 68-point face in a 150x150 chip (x, y)."""
    lm = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    lm[0:17, 0] = cx + 55 * t  # jaw: from (20, 55) round the chin (75, 135) to (130, 55)
    lm[0:17, 1] = 55 + 80 * (1 - np.abs(t) ** 1.6)
    lm[17:27] = np.c_[np.linspace(cx - 45, cx + 45, 10), np.full(10, 40)]  # brows
    lm[27:31] = np.c_[np.full(4, cx), np.linspace(55, 85, 4)]  # nose bridge down to the tip
    lm[31:36] = np.c_[np.linspace(cx - 12, cx + 12, 5), np.full(5, 92)]  # nose base
    eye = np.array([[-12, 0], [-6, -4], [6, -4], [12, 0], [6, 4], [-6, 4]], float)
    lm[36:42] = eye + (cx - 25, 55)
    lm[42:48] = eye + (cx + 25, 55)
    lm[48:60] = np.c_[cx + 20 * np.cos(np.linspace(np.pi, -np.pi, 12, endpoint=False)),
                      112 + 7 * np.sin(np.linspace(np.pi, -np.pi, 12, endpoint=False))]
    lm[60:68] = np.c_[cx + 12 * np.cos(np.linspace(np.pi, -np.pi, 8, endpoint=False)),
                      112 + 3 * np.sin(np.linspace(np.pi, -np.pi, 8, endpoint=False))]
    return lm


CHIP = np.full((H, W, 3), 180, np.uint8)


def test_sunglasses_cover_both_eyes_and_not_the_mouth():
    lm = frontal_landmarks()
    region = occluder_region("sunglasses", lm, (H, W))
    for x, y in np.round(lm[36:48]).astype(int):
        assert region[y, x]
    assert not region[112, 75] and not region[135, 75] and not region[20, 75]
    # The band is centred on the eye line: as much above as below it.
    rows = np.nonzero(region.any(1))[0]
    assert abs((rows.min() + rows.max()) / 2 - 55) <= 1


def test_mask_covers_mouth_and_chin_but_not_eyes():
    lm = frontal_landmarks()
    region = occluder_region("mask", lm, (H, W))
    assert region[112, 75] and region[125, 75]
    assert not region[55, 50] and not region[55, 100] and not region[70, 75]
    nose = occluder_region("mask", lm, (H, W), cover_nose=True)
    assert nose[80, 75] and not region[80, 75]
    assert (nose >= region).all()  # covering the nose only adds pixels


def test_patch_is_a_square_centred_on_its_landmark():
    lm = frontal_landmarks()
    region = occluder_region("patch", lm, (H, W), landmark=48, size=20)
    ys, xs = np.nonzero(region)
    assert abs(xs.mean() - lm[48, 0]) < 1 and abs(ys.mean() - lm[48, 1]) < 1
    assert abs(region.sum() - 400) <= 45


def test_occluder_follows_the_face():
    lm = frontal_landmarks()
    shifted = lm + (10, 7)
    a = occluder_region("sunglasses", lm, (H, W))
    b = occluder_region("sunglasses", shifted, (H, W))
    assert np.array_equal(np.roll(a, (7, 10), axis=(0, 1))[20:-20, 20:-20], b[20:-20, 20:-20])


@pytest.mark.parametrize("fill", ["black", "grey", "texture"])
def test_occlude_changes_only_the_region(fill):
    lm = frontal_landmarks()
    out, region = occlude(CHIP, lm, "sunglasses", fill=fill, seed=3)
    assert out.dtype == np.uint8 and out.shape == CHIP.shape
    assert np.array_equal(out[~region], CHIP[~region])
    if fill == "black":
        assert (out[region] == 0).all()
    if fill == "grey":
        assert (out[region] == 128).all()
    if fill == "texture":
        assert out[region].std() > 30  # high contrast, not a flat colour
    assert (CHIP == 180).all()  # input untouched


def test_texture_is_seeded():
    a = occluder_content("texture", (H, W), seed=1)
    b = occluder_content("texture", (H, W), seed=1)
    c = occluder_content("texture", (H, W), seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_photo_fill_copies_the_source_image():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    out, region = occlude(CHIP, frontal_landmarks(), "mask", fill="photo", source=source, seed=5)
    crop = occluder_content("photo", (H, W), seed=5, source=source)
    assert np.array_equal(out[region], crop[region])
    # The crop is a real window of the source.
    hits = [(t, l) for t in range(51) for l in range(151)
            if np.array_equal(source[t:t + H, l:l + W][0, :5], crop[0, :5])]
    assert hits and np.array_equal(source[hits[0][0]:hits[0][0] + H, hits[0][1]:hits[0][1] + W],
                                   crop)
    with pytest.raises(XfrError, match="source"):
        occlude(CHIP, frontal_landmarks(), "mask", fill="photo")


def test_bad_inputs_raise_one_line_errors():
    lm = frontal_landmarks()
    with pytest.raises(UnknownNameError):
        occlude(CHIP, lm, "hat")
    with pytest.raises(UnknownNameError):
        occlude(CHIP, lm, "mask", fill="pink")
    with pytest.raises(XfrError, match="68"):
        occlude(CHIP, lm[:5])
    with pytest.raises(XfrError, match="NaN"):
        occlude(CHIP, np.full((68, 2), np.nan))
    with pytest.raises(XfrError, match="uint8"):
        occlude(CHIP.astype(float), lm)


def test_mass_of_the_region_mask_itself_is_one_over_area_share():
    region = occluder_region("sunglasses", frontal_landmarks(), (H, W))
    area = region.mean()
    assert mass_in_region(region.astype(float), region) == pytest.approx(1.0)
    assert mass_ratio_to_chance(region.astype(float), region) == pytest.approx(1 / area)
    assert mass_ratio_to_chance(np.ones((H, W)), region) == pytest.approx(1.0)
    assert mass_in_region((~region).astype(float), region) == 0.0
    half = np.where(region, 1.0, 0.0) + np.where(region, 0.0, area / (1 - area))
    assert mass_in_region(half, region) == pytest.approx(0.5)


def test_mass_refuses_signed_maps_and_shape_mismatch():
    region = np.zeros((10, 10), bool)
    region[:2] = True
    with pytest.raises(XfrError, match="non-negative"):
        mass_in_region(np.full((10, 10), -1.0), region)
    with pytest.raises(XfrError, match="shape"):
        mass_in_region(np.ones((10, 11)), region)
    with pytest.raises(XfrError, match="empty"):
        mass_ratio_to_chance(np.ones((10, 10)), np.zeros((10, 10), bool))
    assert np.isnan(mass_in_region(np.zeros((10, 10)), region))


# --- pose ------------------------------------------------------------------------------------

def turned_landmarks(shift: float) -> np.ndarray:
    """The frontal face with the inner features (eyes, nose, mouth) moved sideways."""
    lm = frontal_landmarks()
    lm[27:68, 0] += shift
    return lm


def test_frontal_face_has_zero_yaw_and_roll():
    lm = frontal_landmarks()
    assert yaw(lm) == pytest.approx(0.0, abs=1e-9)
    assert roll(lm) == pytest.approx(0.0, abs=1e-9)


def test_yaw_grows_with_the_nose_offset_and_changes_sign_when_mirrored():
    yaws = [yaw(turned_landmarks(s)) for s in (0, 5, 10, 20)]
    assert yaws[0] == pytest.approx(0.0, abs=1e-9)
    assert all(a < b for a, b in itertools.pairwise(yaws))
    lm = turned_landmarks(12)
    mirrored = mirror_landmarks(lm, W)
    assert yaw(lm) > 5
    assert yaw(mirrored) == pytest.approx(-yaw(lm), abs=1e-6)
    assert roll(mirrored) == pytest.approx(-roll(lm), abs=1e-6)
    # The mirrored set is a valid face: its left eye is still on the image's left.
    assert mirrored[36:42, 0].mean() < mirrored[42:48, 0].mean()
    assert np.allclose(mirror_landmarks(mirrored, W), lm)


@pytest.mark.parametrize("degrees", [-25.0, -8.0, 12.0, 30.0])
def test_roll_is_recovered_from_a_rotated_set_and_yaw_is_unchanged(degrees):
    lm = turned_landmarks(8)
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rotated = (lm - 75) @ rot.T + 75
    assert roll(rotated) == pytest.approx(degrees, abs=1e-6)
    assert yaw(rotated) == pytest.approx(yaw(lm), abs=1e-6)


def test_pose_table_is_vectorised_and_passes_nan_through():
    batch = np.stack([frontal_landmarks(), turned_landmarks(10), np.full((68, 2), np.nan)])
    table = pose_table(batch)
    assert list(table.columns) == ["yaw", "roll"] and len(table) == 3
    assert table.yaw[1] == pytest.approx(yaw(batch[1]))
    assert np.isnan(table.yaw[2]) and np.isnan(table.roll[2])
    with pytest.raises(XfrError, match="68"):
        yaw(np.zeros((5, 2)))


# --- on a real photo -------------------------------------------------------------------------

def test_on_a_real_photo_yaw_flips_with_the_image_and_sunglasses_hit_the_eyes():
    from xfr_lib.data import asset_file
    from xfr_lib.faces import align_face, load_image

    rgb = load_image(asset_file("wild", "obama/obama_2.jpg"))
    face = align_face(rgb, "dlib_chip", (H, W))
    flipped = align_face(np.ascontiguousarray(rgb[:, ::-1]), "dlib_chip", (H, W))
    assert yaw(face.landmarks) < -10  # a clearly turned face in this photo
    assert yaw(flipped.landmarks) == pytest.approx(-yaw(face.landmarks), abs=5)
    _, region = occlude(face.chip, face.landmarks, "sunglasses", fill="texture", seed=0)
    for x, y in np.round(face.landmarks[36:48]).astype(int):
        assert region[y, x]
    assert not region[round(face.landmarks[57, 1]), round(face.landmarks[57, 0])]
    assert 0.05 < region.mean() < 0.3
