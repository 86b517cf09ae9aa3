"""Maps against a known region: the pointing game and the per-pixel AUROC give their known
answers on constructed maps, and the occlusion experiment reports both for real maps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from toymodels import ConvQuadrantModel

from xfr_lib.errors import XfrError
from xfr_lib.evaluate import OcclusionCase, detector_auroc, occlusion_experiment, pointing_game
from xfr_lib.explainers import get_explainer
from xfr_lib.faces import chip_to_tensor, occlude

H, W = 20, 30


def _region() -> np.ndarray:
    region = np.zeros((H, W), bool)
    region[5:10, 8:16] = True
    return region


def test_pointing_game_hits_when_the_peak_is_inside_and_misses_outside():
    region = _region()
    saliency = np.zeros((H, W))
    saliency[7, 10] = 1.0
    assert pointing_game(saliency, region) is True
    saliency[15, 25] = 2.0  # a stronger peak outside
    assert pointing_game(saliency, region) is False


def test_pointing_game_tolerance_grows_the_region_by_a_euclidean_distance():
    region = _region()  # rows 5-9, columns 8-15
    saliency = np.zeros((H, W))
    saliency[12, 18] = 1.0  # 3 rows below and 3 columns right of the corner (9, 15): 4.24 px
    assert pointing_game(saliency, region) is False
    assert pointing_game(saliency, region, tolerance=4) is False
    assert pointing_game(saliency, region, tolerance=4.3) is True
    with pytest.raises(XfrError, match="tolerance"):
        pointing_game(saliency, region, tolerance=-1)


def test_pointing_game_has_no_answer_for_an_empty_or_constant_map():
    region = _region()
    assert pointing_game(np.zeros((H, W)), region) is None
    assert pointing_game(np.full((H, W), 0.3), region) is None
    with pytest.raises(XfrError, match="empty"):
        pointing_game(np.ones((H, W)), np.zeros((H, W), bool))
    with pytest.raises(XfrError, match="shape"):
        pointing_game(np.ones((H, W + 1)), region)
    bad = np.zeros((H, W))
    bad[0, 0] = np.nan
    with pytest.raises(XfrError, match="NaN"):
        pointing_game(bad, region)


def test_pointing_game_on_a_plateau_counts_the_majority_of_its_pixels():
    region = _region()
    saliency = np.zeros((H, W))
    saliency[7, 10:13] = 1.0  # three peak pixels inside
    saliency[15, 25:27] = 1.0  # two outside
    assert pointing_game(saliency, region) is True
    saliency[16, 25:27] = 1.0  # now four outside
    assert pointing_game(saliency, region) is False


def test_auroc_is_one_for_the_region_half_for_a_constant_map_and_zero_inverted():
    region = _region()
    exact = region.astype(np.float32)
    assert detector_auroc(exact, region) == 1.0
    assert detector_auroc(np.zeros((H, W)), region) == 0.5
    assert detector_auroc(np.full((H, W), 7.0), region) == 0.5
    assert detector_auroc(1.0 - exact, region) == 0.0
    # Only the ranking counts: a monotone transform changes nothing.
    rng = np.random.default_rng(0)
    m = rng.random((H, W))
    assert detector_auroc(m, region) == pytest.approx(detector_auroc(np.exp(5 * m), region))


@pytest.mark.parametrize("levels", [None, 4])
def test_auroc_matches_sklearn_on_random_maps_with_and_without_ties(levels):
    rng = np.random.default_rng(1)
    region = rng.random((H, W)) < 0.3
    saliency = rng.random((H, W)) + 0.5 * region  # informative, not perfect
    if levels:
        saliency = np.floor(saliency * levels)  # many ties
    expected = roc_auc_score(region.ravel(), saliency.ravel())
    assert detector_auroc(saliency, region) == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0


def test_auroc_is_nan_without_pixels_of_both_classes():
    m = np.random.default_rng(2).random((H, W))
    assert math.isnan(detector_auroc(m, np.zeros((H, W), bool)))
    assert math.isnan(detector_auroc(m, np.ones((H, W), bool)))
    with pytest.raises(XfrError, match="boolean"):
        detector_auroc(m, np.full((H, W), 2))


def _toy_case() -> OcclusionCase:
    """A pair for the toy model (48x48, sees only the top-left quadrant): B is A plus noise;
    landmark 30 (the patch's centre) in the middle of the quadrant the model sees."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    landmarks = np.tile([24.0, 24.0], (68, 1))
    landmarks[30] = (12, 12)
    source = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    return OcclusionCase("toy", a, b, landmarks, source)


def test_occlusion_rows_carry_the_pointing_game_and_auroc_of_the_dissimilarity_map():
    model = ConvQuadrantModel()
    case = _toy_case()
    explainers = {"saliency": get_explainer("saliency", model),
                  "corrrise": get_explainer("corrrise", model, n=24, seed=0)}
    fills = ["black", "texture"]
    rows = occlusion_experiment(model, [case], explainers, ["patch"], fills, seed=0)
    assert len(rows) == len(fills) * len(explainers)
    for column in ("pointing game", "AUROC", "dissimilarity / chance", "similarity / chance",
                   "clean score", "occluded score", "accepted"):
        assert column in rows
    assert str(rows["pointing game"].dtype) == "boolean"
    # Each row's values are those of the dissimilarity map of the occluded image.
    for row in rows.itertuples():
        chip, region = occlude(case.chip_b, case.landmarks_b, "patch", row.fill, seed=0,
                               source=case.source)
        explainer = explainers[row.explainer]
        ref = explainer.embed(chip_to_tensor(case.chip_a)[None])
        _, dis = explainer.split(explainer.signed_maps(chip_to_tensor(chip), ref), 1, "B")
        assert row.AUROC == pytest.approx(detector_auroc(dis[0], region))
        expected = pointing_game(dis[0], region)
        got = rows.loc[row.Index, "pointing game"]
        assert pd.isna(got) if expected is None else bool(got) is expected
