"""The analysis the chapters used to do in long cells, as library functions: selecting pairs,
joining embeddings into galleries, scoring identification, region tables, the occlusion
experiment and the convergence fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from xfr_lib.data import load_dataset, make_verification_protocol
from xfr_lib.errors import DatasetError, XfrError
from xfr_lib.evaluate import (
    OcclusionCase,
    agreement_fit,
    embed_dataset,
    identification_scores,
    mean_shares,
    occlusion_experiment,
    region_table,
    top_regions,
)
from xfr_lib.explainers import explain, explain_identification, get_explainer
from xfr_lib.faces import OUTSIDE, face_regions
from xfr_lib.models import load_model


@pytest.fixture(scope="module")
def model():
    return load_model("sface")


@pytest.fixture(scope="module")
def wild(model):
    return embed_dataset(model, load_dataset("wild"), progress=False)


def test_embedding_sets_join_select_and_name(wild):
    assert wild.identities[wild.index("macron_1")] == "Emmanuel Macron"
    (i, j), = wild.named_pairs(["macron_1:macron_2"])
    assert wild.identities[i] == wild.identities[j] and i != j
    with pytest.raises(XfrError, match="no image named 'nobody'.*macron_1"):
        wild.index("nobody")
    with pytest.raises(XfrError, match="not 'nameA:nameB'"):
        wild.named_pairs(["macron_1-macron_2"])
    sub = wild.subset([j, i])
    assert sub.paths == [wild.paths[j], wild.paths[i]]
    assert np.array_equal(sub.embeddings, wild.embeddings[[j, i]])
    both = sub + wild.subset([0])
    assert len(both) == 3 and both.identities[2] == wild.identities[0]
    assert np.array_equal(both.chips[2], wild.chips[0])
    gallery = both.gallery()
    assert gallery.identities == both.identities
    assert torch.allclose(gallery.embeddings[0], torch.from_numpy(wild.embeddings[j]))


def test_identification_scores_rank_mates_first(model, wild):
    probe = wild.index("obama_2")
    gallery = wild.subset([k for k in range(len(wild)) if k != probe])
    sc = identification_scores(wild.subset([probe]), gallery)
    assert sc.similarity.shape == (1, len(gallery)) and sc.gallery_missed == 0
    best = sc.gallery_ids[int(np.argmax(sc.similarity[0]))]
    assert best == "Barack Obama" == sc.probe_ids[0]
    # The gallery view gives the explainer the same ranking.
    ex = explain_identification("corrrise", model, wild.tensor(probe), gallery.gallery(), k=2,
                                n=8)
    assert ex.matches[0].identity == "Barack Obama"
    assert ex.matches[0].score == pytest.approx(float(sc.similarity[0].max()), abs=1e-5)


def test_protocol_draw_is_seeded_distinct_and_respects_kinds():
    protocol = make_verification_protocol(load_dataset("orl"), seed=0)
    drawn = protocol.draw(6, seed=3)
    assert np.array_equal(drawn, protocol.draw(6, seed=3))
    assert not np.array_equal(drawn, protocol.draw(6, seed=4))
    assert len(set(drawn.tolist())) == 6
    assert protocol.labels[drawn].tolist() == [True, False] * 3
    genuine = protocol.draw(4, seed=0, genuine=True)
    assert protocol.labels[genuine].all()
    valid = np.zeros(len(protocol), bool)
    valid[:5] = True  # the first pairs of fold 0 are genuine
    assert set(protocol.draw(3, genuine=True, valid=valid).tolist()) <= set(range(5))
    with pytest.raises(DatasetError, match="impostor pairs asked for"):
        protocol.draw(2, valid=valid)


def test_region_table_measures_each_map_on_its_own_chip(model, wild):
    i, j = wild.named_pairs(["ardern_1:ardern_2"])[0]
    expl = explain("corrrise", model, wild.tensor(i), wild.tensor(j), n=32, seed=0)
    table = region_table(expl, wild.landmarks[i], wild.landmarks[j])
    assert set(table.image) == {"A", "B"} and set(table["map"]) == {"similarity", "dissimilarity"}
    for (_, _), group in table.groupby(["image", "map"]):
        assert group["mass"].sum() == pytest.approx(1.0)
        assert group["area"].sum() == pytest.approx(1.0)
    regions = face_regions(wild.landmarks[j], expl.chip_b.shape[:2])
    nose = table[(table.image == "B") & (table["map"] == "similarity")
                 & (table.region == "nose")].iloc[0]
    m = expl.similarity_b
    assert nose["mass"] == pytest.approx(m[regions.mask("nose")].sum() / m.sum())


def test_mean_shares_and_top_regions():
    table = pd.DataFrame({
        "region": ["eyes", "nose", OUTSIDE] * 2,
        "area": [0.1, 0.1, 0.8] * 2,
        "mass": [0.5, 0.1, 0.4, 0.3, 0.1, 0.6],
        "ratio": [5.0, 1.0, 0.5, 3.0, 1.0, 0.75]})
    mean = mean_shares(table).set_index("region")
    assert mean.loc["eyes", "mass"] == pytest.approx(0.4)
    assert mean.loc["eyes", "ratio"] == pytest.approx(4.0) and mean.loc["eyes", "maps"] == 2
    assert top_regions(mean.reset_index(), k=3) == ["eyes"]  # nose only at its share
    assert top_regions(mean.reset_index(), k=3, min_ratio=1.0) == ["eyes", "nose"]
    assert OUTSIDE not in top_regions(mean.reset_index(), k=3, min_ratio=0.0)


def test_occlusion_experiment_finds_a_photo_occluder(model, wild):
    """A face cut from another person, pasted over B's mouth, lowers the score, and the
    dissimilarity map of the occluded B is concentrated on it (ratio > 1)."""
    i, j = wild.named_pairs(["macron_1:macron_2"])[0]
    other = wild.index("sunak_1")
    case = OcclusionCase("macron", wild.chips[i], wild.chips[j], wild.landmarks[j],
                         wild.chips[other])
    explainers = {"zero": get_explainer("corrrise", model, n=96, seed=0)}
    rows = occlusion_experiment(model, [case], explainers, ["mask"], ["photo", "black"],
                                seed=0, margin=5)
    assert list(rows.fill) == ["photo", "black"]
    photo = rows.iloc[0]
    assert photo["occluded score"] < photo["clean score"]
    assert photo["dissimilarity / chance"] > 1
    assert 0 < photo["dissimilarity next to it (%)"] < 100
    assert 0 < photo["area (%)"] < 50


def test_agreement_fit_recovers_a_power_law_and_refuses_too_little():
    n = np.array([50, 100, 200, 400])
    rho = 1 - 2.0 * n ** -0.5
    fit = agreement_fit(n, rho, target=0.9)
    assert fit["exponent"] == pytest.approx(-0.5)
    assert fit["n_at_target"] == pytest.approx(400.0)  # 2 / sqrt(400) = 0.1
    flat = agreement_fit(n, [0.6, 0.5, 0.4, 0.3])  # agreement falls with N
    assert math.isinf(flat["n_at_target"])
    assert math.isnan(agreement_fit([100], [0.5])["exponent"])


def test_stability_over_n_grows_with_n_when_noise_shrinks():
    from xfr_lib.evaluate import stability_over_n

    signal = np.linspace(0, 1, 400).reshape(20, 20)

    def fake(n, seed):  # a map estimated from n samples: noise falls like 1/sqrt(n)
        noise = np.random.default_rng([n, seed]).normal(size=(20, 20))
        return {"similarity_a": signal + noise / np.sqrt(n)}

    agree, runs, seconds = stability_over_n(fake, [4, 64, 1024], [0, 1, 2],
                                            maps=("similarity_a",))
    mean = agree.groupby("N").spearman.mean()
    assert mean[4] < mean[64] < mean[1024] and mean[1024] > 0.9
    assert set(runs) == {4, 64, 1024} and set(runs[64]) == {0, 1, 2}
    assert len(agree) == 3 * 3 and list(seconds.index) == [4, 64, 1024]
