"""Deletion / Insertion curves: known answers on a model that sees one quadrant, exact areas,
tie rules and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.toymodels import ConvQuadrantModel, quadrant_pair
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    bootstrap_interval,
    curve_area,
    identification_curve,
    pixel_order,
    removal_masks,
    step_fractions,
    verification_curve,
)
from xfr_lib.faces import tensor_to_chip
from xfr_lib.models import embed

H = W = 48
# The toy model's embeddings are alike for any input (cosine about 0.99 for unrelated chips,
# 0.9999 for a pair of quadrant_pair): a threshold between the two separates them.
THRESHOLD = 0.995


@pytest.fixture(scope="module")
def model():
    return ConvQuadrantModel(seed=0)


def _oracle() -> np.ndarray:
    """1 on the quadrant the model sees (with a falling ramp inside: no ties), 0 elsewhere."""
    m = np.zeros((H, W))
    yy, xx = np.mgrid[:24, :24]
    m[:24, :24] = 2.0 - (yy + xx) / 48.0
    return m


MAPS = {
    "oracle": _oracle,
    "random": lambda: np.random.default_rng(5).random((H, W)),
    "inverted": lambda: -_oracle(),
}


def _pairs(n: int = 6):
    return [tuple(tensor_to_chip(t) for t in quadrant_pair(seed=s, noise=0.1))
            for s in range(1, n + 1)]


def _area(model, kind: str, mode: str, fill: str = "grey") -> float:
    areas = []
    for a, b in _pairs():
        m = MAPS[kind]()
        curve = verification_curve(model, a, b, m, m, True, mode=mode, threshold=THRESHOLD,
                                   steps=12, fill=fill, images="one", seed=0)
        areas.append(curve_area(curve.fraction, curve.correct.astype(float)))
    return float(np.mean(areas))


@pytest.mark.parametrize("fill", ["grey", "road"])
def test_oracle_beats_random_beats_inverted(model, fill):
    # Every genuine pair is accepted before anything is modified: the curves start at 1.
    for a, b in _pairs():
        score = float(embed(model, np.stack([a, b])).prod(0).sum())
        assert score >= model.threshold
    deletion = {k: _area(model, k, "deletion", fill) for k in MAPS}
    insertion = {k: _area(model, k, "insertion", fill) for k in MAPS}
    assert deletion["oracle"] < deletion["random"] < deletion["inverted"], deletion
    assert insertion["oracle"] > insertion["random"] > insertion["inverted"], insertion


def test_curve_endpoints_and_columns(model):
    a, b = _pairs(1)[0]
    m = _oracle()
    dele = verification_curve(model, a, b, m, m, True, mode="deletion", threshold=THRESHOLD, steps=4,
                              fill="zero", images="one")
    assert list(dele.columns) == ["step", "fraction", "score", "accepted", "correct"]
    assert dele.fraction.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    clean = float(embed(model, np.stack([a, b])).prod(0).sum())
    assert dele.score.iloc[0] == pytest.approx(clean, abs=1e-5)  # p = 0: nothing modified
    ins = verification_curve(model, a, b, m, m, True, mode="insertion", threshold=THRESHOLD, steps=4,
                             fill="zero", images="one")
    assert ins.score.iloc[-1] == pytest.approx(clean, abs=1e-5)  # p = 1: everything inserted
    # With both images modified the same way, deleting every pixel leaves two identical plain
    # images: a score of 1 (why the runner's "auto" modifies one image of a genuine pair).
    both = verification_curve(model, a, b, m, m, True, mode="deletion", threshold=THRESHOLD, steps=4,
                              fill="zero", images="both")
    assert both.score.iloc[-1] == pytest.approx(1.0, abs=1e-5)
    # An impostor's decision is correct when rejected.
    imp = verification_curve(model, a, b, m, m, False, mode="deletion", threshold=THRESHOLD, steps=4,
                             fill="zero", images="one")
    assert (imp.correct == ~imp.accepted).all()


def test_constant_curves_give_exact_areas():
    for steps in (1, 4, 10, 17):
        x = step_fractions(steps)
        for c in (0.0, 0.3, 1.0):
            assert curve_area(x, np.full(len(x), c)) == pytest.approx(100 * c, abs=1e-12)
    # A step from 1 to 0 halfway (steps=2): trapezoid 0.5 * (1 + 0) / 2 + 0.5 * 0 = 0.25.
    assert curve_area([0, 0.5, 1], [1, 0, 0]) == pytest.approx(25.0)
    with pytest.raises(XfrError, match="two increasing fractions"):
        curve_area([0.0], [1.0])


def test_tie_rules():
    sal = np.zeros((4, 4))
    sal[0, 0] = 2.0
    signed = np.arange(16.0).reshape(4, 4) * -1.0  # ties broken: pixel 1 first, then 2, ...
    order = pixel_order(sal, ties="signed", signed=signed, seed=0)
    assert order[0] == 0 and order[1:].tolist() == list(range(1, 16))
    r1, r2, r3 = (pixel_order(sal, ties="random", seed=s) for s in (0, 0, 1))
    assert r1[0] == 0 and np.array_equal(r1, r2) and not np.array_equal(r1, r3)
    assert sorted(r1.tolist()) == list(range(16))
    with pytest.raises(XfrError, match="needs the signed map"):
        pixel_order(sal, ties="signed")
    with pytest.raises(XfrError, match="tie rule 'first' is unknown; use one of random, signed"):
        pixel_order(sal, ties="first")


def test_removal_masks_count_and_nest():
    order = pixel_order(np.random.default_rng(0).random((10, 10)), seed=0)
    fractions = step_fractions(4)
    dele = removal_masks(order, (10, 10), fractions, "deletion")
    ins = removal_masks(order, (10, 10), fractions, "insertion")
    assert dele.sum((1, 2)).tolist() == [0, 25, 50, 75, 100]
    assert np.array_equal(ins, ~dele)
    assert all((dele[k] <= dele[k + 1]).all() for k in range(4))  # deletions only grow
    assert dele[1].ravel()[order[:25]].all()  # the top of the order goes first


def test_identification_oracle_before_inverted(model):
    gen = torch.Generator().manual_seed(3)
    people = [torch.rand(3, H, W, generator=gen) for _ in range(5)]
    gallery = embed(model, torch.stack(people)).numpy()
    ids = [f"p{k}" for k in range(5)]
    areas = {"oracle": [], "inverted": []}
    for k, face in enumerate(people):
        probe = tensor_to_chip((face + 0.1 * (torch.rand(3, H, W, generator=gen) - 0.5)).clamp(0, 1))
        for kind, found in areas.items():
            curve = identification_curve(model, probe, MAPS[kind](), ids[k], gallery, ids,
                                         mode="deletion", steps=12, fill="grey", seed=k)
            assert bool(curve.correct.iloc[0])  # the clean probe is identified
            found.append(curve_area(curve.fraction, curve.correct.astype(float)))
    assert np.mean(areas["oracle"]) < np.mean(areas["inverted"])
    with pytest.raises(XfrError, match="no image in the gallery"):
        identification_curve(model, probe, _oracle(), "nobody", gallery, ids, mode="deletion")


def test_same_seed_same_curve_with_noisy_fill(model):
    a, b = _pairs(1)[0]
    m = np.random.default_rng(1).random((H, W))
    kw = {"mode": "deletion", "threshold": THRESHOLD, "steps": 5, "fill": "road", "images": "both"}
    c1 = verification_curve(model, a, b, m, m, True, seed=3, **kw)
    c2 = verification_curve(model, a, b, m, m, True, seed=3, **kw)
    c3 = verification_curve(model, a, b, m, m, True, seed=4, **kw)
    assert c1.equals(c2)
    assert not np.allclose(c1.score, c3.score)


def test_bad_arguments_are_one_line(model):
    a, b = _pairs(1)[0]
    m = _oracle()
    for kwargs, message in [({"mode": "erase"}, "mode 'erase' is unknown"),
                            ({"mode": "deletion", "images": "all"}, "images 'all' is unknown"),
                            ({"mode": "deletion", "steps": 0}, "at least 1 step")]:
        with pytest.raises(XfrError, match=message) as exc:
            verification_curve(model, a, b, m, m, True, threshold=THRESHOLD, **kwargs)
        assert "\n" not in str(exc.value)
    with pytest.raises(XfrError, match="finite"):
        pixel_order(np.full((4, 4), np.nan))


def test_bootstrap_interval():
    v = np.random.default_rng(0).normal(50, 10, size=40)
    low, high = bootstrap_interval(v, seed=0)
    assert low < v.mean() < high
    assert (low, high) == bootstrap_interval(v, seed=0)
    # about mean -+ 1.96 sd / sqrt(n)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
    assert high - low == pytest.approx(2 * half, rel=0.2)
    assert bootstrap_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert np.isnan(bootstrap_interval([1.0])).all()


def test_published_tables_name_xfr_methods():
    import xfr_lib
    from xfr_lib.evaluate import published_journal, published_table1, published_table2

    t1 = published_table1()
    assert set(t1.method) <= set(xfr_lib.list_methods())
    assert t1.groupby("dataset").size().to_dict() == {"CPLFW": 7, "LFW": 7, "Webface-OCC": 7}
    lfw = t1.query("dataset == 'LFW'").set_index("method")
    # The paper's reading: CorrRISE has the lowest deletion and highest insertion on LFW.
    assert lfw.deletion.idxmin() == "corrrise" and lfw.insertion.idxmax() == "corrrise"
    assert published_table2().deletion.between(23, 24).all()
    assert published_journal().set_index("task").loc["LFW", "deletion"] == 23.37
