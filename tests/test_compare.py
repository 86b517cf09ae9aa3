"""Several methods on one pair (compare_methods), what they cost, and the map statistics that
compare them (spread, roughness, dissimilarity share)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toymodels import ConvQuadrantModel, quadrant_pair

from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.evaluate import dissimilarity_share, mass_area, roughness
from xfr_lib.explainers import compare_methods, count_forward_images, explain


@pytest.fixture(scope="module")
def model():
    return ConvQuadrantModel()


def test_each_method_explains_the_same_chips_and_costs_are_counted(model):
    a, b = quadrant_pair()
    comp = compare_methods(model, a, b, methods=["corrrise", "rise"],
                           params={"corrrise": {"n": 30, "patch_size": 8}, "rise": {"n": 20}})
    assert list(comp.explanations) == ["corrrise", "rise"]
    # CorrRISE: the two unmodified chips, then n masked copies of each side.
    costs = comp.cost_table()
    assert costs.loc["corrrise", "forward_images"] == 2 + 2 * 30
    assert costs.loc["rise", "forward_images"] == 2 + 2 * 20
    assert (costs["backward_passes"] == 0).all() and costs["black_box"].all()
    assert (costs["seconds"] > 0).all()
    # The maps are those of a plain explain() with the same parameters.
    alone = explain("corrrise", model, a, b, n=30, patch_size=8)
    np.testing.assert_array_equal(alone.similarity_a, comp.explanations["corrrise"].similarity_a)
    # The counter is gone afterwards: the model's own method again.
    assert "features" not in vars(model)


def test_unknown_names_fail_before_any_work(model):
    a, b = quadrant_pair()
    with count_forward_images(model) as n:
        with pytest.raises(UnknownNameError, match="corrise"):
            compare_methods(model, a, b, methods=["corrrise", "corrise"])
        with pytest.raises(XfrError, match="parameters given for rise, which are not among"):
            compare_methods(model, a, b, methods=["corrrise"], params={"rise": {"n": 5}})
        with pytest.raises(UnknownNameError, match="parameter"):
            compare_methods(model, a, b, methods=["rise"], params={"rise": {"masks": 5}})
    assert n[0] == 0


def test_forward_counter_restores_the_model_after_an_error(model):
    with pytest.raises(RuntimeError), count_forward_images(model) as n:
        model.embed(torch.rand(2, 3, 48, 48))
        raise RuntimeError("boom")
    assert n[0] == 2 and "features" not in vars(model)

    class BlackBox:  # no features(): the counter wraps embed
        input_size = (8, 8)

        def embed(self, x):
            return x.flatten(1)

    box = BlackBox()
    with count_forward_images(box) as n:
        box.embed(torch.rand(5, 3, 8, 8))
    assert n[0] == 5 and "embed" not in vars(box)


def test_mass_area_roughness_and_dissimilarity_share_know_their_answers():
    blob = np.zeros((40, 40))
    blob[10:20, 10:20] = 1.0  # 100 of 1600 pixels
    assert mass_area(blob, 1.0) == pytest.approx(100 / 1600)
    assert mass_area(blob, 0.5) == pytest.approx(50 / 1600)
    assert np.isnan(mass_area(np.zeros((4, 4))))
    assert roughness(3 * blob) == pytest.approx(roughness(blob))  # scale-free
    speckle = np.random.default_rng(0).random((40, 40))
    smooth = np.outer(np.hanning(40), np.hanning(40))
    assert roughness(speckle) > 5 * roughness(smooth)
    z = np.zeros((4, 4))
    maps = {"similarity_a": z + 1, "dissimilarity_a": z, "similarity_b": z, "dissimilarity_b": z + 1}
    assert dissimilarity_share(maps, "a") == 0.0 and dissimilarity_share(maps, "b") == 1.0
    assert dissimilarity_share(maps) == 0.5
    assert np.isnan(dissimilarity_share({k: z for k in maps}))
