"""Facial regions from real landmarks: they partition the chip, sit where the landmarks say, follow
a tilted face, and region shares measure a map's mass correctly."""

from __future__ import annotations

import numpy as np
import pytest

from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import embed_dataset
from xfr_lib.faces import (
    OUTSIDE,
    REGION_GROUPS,
    REGIONS,
    face_regions,
    mass_ratio_to_chance,
    region_shares,
)
from xfr_lib.models import load_model


@pytest.fixture(scope="module", params=["dlib_resnet29", "sface"])
def faces(request):
    """Chips and landmarks of the wild photos and of some ORL photos, as one model aligns them."""
    model = load_model(request.param)
    out = []
    for ds in (load_dataset("wild"), load_dataset("orl").subset(range(0, 400, 37))):
        e = embed_dataset(model, ds, progress=False)
        out += [(e.chips[i], e.landmarks[i]) for i in np.flatnonzero(e.ok)]
    return out


def _at(regions, point) -> str:
    h, w = regions.shape
    x, y = np.round(point).astype(int)
    assert 0 <= x < w and 0 <= y < h, f"test point {point} is off the chip"
    return regions.name_at(y, x)


def test_regions_partition_the_chip_and_none_is_empty(faces):
    for chip, landmarks in faces:
        regions = face_regions(landmarks, chip.shape[:2])
        cover = sum(regions.mask(name).astype(int) for name in (OUTSIDE, *REGIONS))
        assert (cover == 1).all()
        for name in REGIONS:
            assert regions.mask(name).any(), name
        for group, members in REGION_GROUPS.items():
            union = np.any([regions.mask(m) for m in members], axis=0)
            assert np.array_equal(regions.mask(group), union)


def test_regions_sit_where_the_landmarks_are(faces):
    for chip, lm in faces:
        regions = face_regions(lm, chip.shape[:2])
        assert _at(regions, lm[36:42].mean(0)) == "left eye"
        assert _at(regions, lm[42:48].mean(0)) == "right eye"
        assert lm[36:42].mean(0)[0] < lm[42:48].mean(0)[0]  # "left" is the image's left
        assert _at(regions, lm[30]) == "nose"
        assert _at(regions, lm[[62, 66]].mean(0)) == "mouth"
        assert _at(regions, lm[19]) == "left brow" and _at(regions, lm[24]) == "right brow"
        chin = lm[8] + (lm[57] - lm[8]) * 0.4  # between the chin point and the lower lip
        if chin[1] < chip.shape[0] - 1:  # some chips cut the chin off
            assert _at(regions, chin) == "chin"
        cheek = lm[2] + (lm[31] - lm[2]) * 0.4
        assert _at(regions, cheek) == "left cheek"
        assert _at(regions, lm[14] + (lm[35] - lm[14]) * 0.4) == "right cheek"
        above_brows = lm[[19, 24]].mean(0) + (lm[[19, 24]].mean(0) - lm[30]) * 0.3
        assert _at(regions, above_brows) == "forehead"


def test_regions_follow_a_tilted_face(faces):
    import cv2

    chip, lm = faces[0]
    h, w = chip.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    tilted = lm @ rot[:, :2].T + rot[:, 2]
    regions = face_regions(tilted, (h, w))
    upright = face_regions(lm, (h, w))
    for k in (30, 37, 44, 19, 24):
        assert _at(regions, tilted[k]) == _at(upright, lm[k])


def test_region_shares_measure_mass_and_chance(faces):
    chip, lm = faces[0]
    regions = face_regions(lm, chip.shape[:2])
    nose = regions.mask("nose").astype(np.float32)
    shares = region_shares(nose, regions).set_index("region")
    assert shares.loc["nose", "mass"] == pytest.approx(1.0)
    assert shares.loc["nose", "ratio"] == pytest.approx(1 / nose.mean())
    assert shares.loc["eyes", "mass"] == 0
    assert shares["area"].sum() == pytest.approx(1.0)
    flat = region_shares(np.ones(chip.shape[:2]), regions, grouped=False)
    assert np.allclose(flat["ratio"], 1.0) and flat["mass"].sum() == pytest.approx(1.0)
    assert mass_ratio_to_chance(nose, regions.mask("nose")) == pytest.approx(1 / nose.mean())
    assert region_shares(np.zeros(chip.shape[:2]), regions)["mass"].isna().all()
    with pytest.raises(XfrError, match="non-negative"):
        region_shares(-nose, regions)
    with pytest.raises(XfrError, match="same HxW"):
        region_shares(nose[1:], regions)
    with pytest.raises(XfrError, match="unknown facial region 'ears'"):
        regions.mask("ears")


def test_bad_landmarks_are_refused():
    with pytest.raises(XfrError, match=r"\[68, 2\]"):
        face_regions(np.zeros((5, 2)), (112, 112))
    with pytest.raises(XfrError, match="NaN"):
        face_regions(np.full((68, 2), np.nan), (112, 112))
