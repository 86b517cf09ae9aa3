"""Map agreement measures: known answers, and seed_stability on a real explainer."""

from __future__ import annotations

import numpy as np
import pytest

from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    map_agreement,
    seed_stability,
    spearman,
    top_k_iou,
    top_k_mask,
)


def test_spearman_known_answers():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(64, 64))
    assert spearman(m, m) == pytest.approx(1.0)
    assert spearman(m, -m) == pytest.approx(-1.0)
    assert spearman(m, np.exp(m)) == pytest.approx(1.0)  # ranks only: monotone maps agree
    shuffled = rng.permutation(m.ravel()).reshape(m.shape)
    assert abs(spearman(m, shuffled)) < 0.05  # 4096 pixels: |rho| ~ N(0, 1/64)
    assert np.isnan(spearman(m, np.ones_like(m)))


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, (20, 20)).astype(float)
    b = a + rng.integers(0, 3, (20, 20))
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)


def test_top_k_iou_known_answers():
    m = np.arange(100.0).reshape(10, 10)
    assert top_k_iou(m, m, 0.1) == 1.0
    assert top_k_iou(m, -m, 0.1) == 0.0
    shifted = np.roll(m.ravel(), 5).reshape(10, 10)  # top-10 of m: 90..99; of shifted: 95..99,0..4
    assert top_k_iou(m, shifted, 0.1) == pytest.approx(5 / 15)
    # A constant map: ties broken by index, exactly ceil(0.1 * 100) = 10 pixels.
    assert top_k_mask(np.zeros((10, 10)), 0.1).sum() == 10
    assert top_k_mask(np.zeros((7, 7)), 0.1).sum() == 5
    # ... but for the IoU, pixels at a map's minimum carry no signal.
    assert np.isnan(top_k_iou(np.zeros((10, 10)), np.zeros((10, 10)), 0.1))
    assert top_k_iou(np.zeros((10, 10)), m, 0.1) == 0.0
    sparse1, sparse2 = np.zeros((10, 10)), np.zeros((10, 10))
    sparse1.flat[[3, 50]] = 1.0
    sparse2.flat[[3, 77]] = 2.0
    assert top_k_iou(sparse1, sparse2, 0.1) == pytest.approx(1 / 3)  # not padded with zeros
    rng = np.random.default_rng(2)
    ious = [top_k_iou(rng.random((50, 50)), rng.random((50, 50))) for _ in range(20)]
    assert np.mean(ious) == pytest.approx(0.1 / 1.9, abs=0.02)  # chance level
    with pytest.raises(XfrError, match="frac"):
        top_k_iou(m, m, 0.0)
    with pytest.raises(XfrError, match="shape"):
        top_k_iou(m, m[:5], 0.1)


def test_map_agreement_and_seed_stability_on_dicts():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 30))

    def explain(seed):  # the same signal plus seed-dependent noise
        noise = np.random.default_rng(seed).normal(size=base.shape)
        return {"similarity_a": base + 0.3 * noise, "dissimilarity_a": noise}

    df = seed_stability(explain, [0, 1, 2], maps=("similarity_a", "dissimilarity_a"))
    assert len(df) == 6 and set(df["map"]) == {"similarity_a", "dissimilarity_a"}
    assert df[["seed_1", "seed_2"]].values.tolist()[:3] == [[0, 1], [0, 2], [1, 2]]
    sim = df[df["map"] == "similarity_a"]
    dis = df[df["map"] == "dissimilarity_a"]
    assert (sim.spearman > 0.8).all() and (dis.spearman.abs() < 0.15).all()
    assert sim.iou.mean() > dis.iou.mean()
    agree = map_agreement(explain(0), explain(0), maps=("similarity_a",))
    assert agree.spearman.item() == pytest.approx(1.0) and agree.iou.item() == 1.0
    with pytest.raises(XfrError, match="two distinct"):
        seed_stability(explain, [1, 1])
    with pytest.raises(XfrError, match="no map"):
        map_agreement(explain(0), explain(1), maps=("similarity_b",))

