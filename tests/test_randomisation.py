"""The model-randomisation check for any method: identical models give identical maps (same
explainer seed for every model), a randomised real model changes a gradient method's maps, the
cascade counts layers, and each randomised copy is built once."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from toymodels import ConvQuadrantModel

import xfr_lib
from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    _randomisation,
    embed_dataset,
    map_ssim,
    randomisation_check,
    randomised_copies,
    randomization_layers,
    randomized_copy,
)
from xfr_lib.explainers import MAP_NAMES
from xfr_lib.faces import chip_to_tensor, tensor_to_chip
from xfr_lib.models import embed


def _toy_pairs(n: int = 2) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for k in range(n):
        a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
        pairs.append((f"pair {k}", a, b))
    return pairs


class _CountCopies:
    """Stands in for randomized_copy: counts the calls, returns ``make(model, seed, top)``."""

    def __init__(self, make):
        self.make, self.calls = make, []

    def __call__(self, model, seed=0, top=None, **kwargs):
        self.calls.append(top)
        return self.make(model, seed, top)


def test_map_ssim_is_one_for_the_same_map_at_any_scale_and_nan_for_an_empty_one():
    rng = np.random.default_rng(0)
    m = rng.random((40, 50))
    assert map_ssim(m, m) == pytest.approx(1.0)
    assert map_ssim(m, 4.0 * m) == pytest.approx(1.0)
    assert map_ssim(m, rng.random((40, 50))) < 0.2
    assert math.isnan(map_ssim(m, np.zeros_like(m)))
    assert math.isnan(map_ssim(np.zeros_like(m), np.zeros_like(m)))
    assert map_ssim(m[:5, :5], m[:5, :5]) == pytest.approx(1.0)  # a smaller window
    with pytest.raises(XfrError, match="non-negative"):
        map_ssim(m - 0.5, m)
    with pytest.raises(XfrError, match="shape"):
        map_ssim(m, m[:, :-1])


@pytest.mark.parametrize("method,params", [("corrrise", {"n": 24, "seed": 3}),
                                           ("saliency", {})])
def test_an_unchanged_model_gives_spearman_and_ssim_one(monkeypatch, method, params):
    """With 'randomised' copies that are the trained model itself, every map must come back the
    same: this holds only if every model is explained with the same parameters and seed."""
    model = ConvQuadrantModel()
    fake = _CountCopies(lambda m, seed, top: copy.deepcopy(m))
    monkeypatch.setattr(_randomisation, "randomized_copy", fake)
    pairs = _toy_pairs(3)
    rows = randomisation_check(model, method, pairs, params=params, cascade=(1, 2))
    assert len(rows) == len(pairs) * 3 * len(MAP_NAMES)
    assert fake.calls == [None, 1, 2]  # one copy per randomisation, not one per pair
    assert np.array_equal(rows["score trained"], rows["score randomised"])
    compared = rows.dropna(subset=["spearman"])
    assert set(compared["map"]) >= {"similarity_a", "similarity_b"}
    assert np.allclose(compared["spearman"], 1.0)
    assert np.allclose(rows.dropna(subset=["ssim"])["ssim"], 1.0)
    assert rows.attrs["params"]["seed" if method == "corrrise" else "batch_size"] == \
        params.get("seed", 32)


def test_cascade_rows_name_and_count_the_randomised_layers():
    model = ConvQuadrantModel()
    n_layers = len(randomization_layers(model))
    assert n_layers == 3  # conv1, conv2, head
    rows = randomisation_check(model, "saliency", _toy_pairs(2), cascade=(1, 2), seed=5)
    counts = rows.groupby("randomisation", sort=False)["layers randomised"].agg(["min", "max"])
    assert list(counts.index) == ["all", "top 1", "top 2"]
    assert counts["min"].tolist() == counts["max"].tolist() == [n_layers, 1, 2]
    assert set(rows.columns) >= {"pair", "method", "model", "randomisation", "layers randomised",
                                 "map", "spearman", "ssim", "score trained", "score randomised"}
    assert set(rows["method"]) == {"saliency"} and set(rows["model"]) == {model.name}
    assert rows.groupby(["randomisation", "pair"]).size().eq(len(MAP_NAMES)).all()
    # The randomised scores are those of the copies randomized_copy builds with that seed.
    a, b = _toy_pairs(2)[0][1:]
    for label, top in (("all", None), ("top 1", 1)):
        e = embed(randomized_copy(model, seed=5, top=top), chip_to_tensor(np.stack([a, b])))
        got = rows[(rows["randomisation"] == label) & (rows["pair"] == "pair 0")]
        assert got["score randomised"].iloc[0] == pytest.approx(float(e[0] @ e[1]), abs=1e-5)
    with pytest.raises(XfrError, match="cascade"):
        randomisation_check(model, "saliency", _toy_pairs(1), cascade=(n_layers + 1,))
    with pytest.raises(XfrError, match="at least one pair"):
        randomisation_check(model, "saliency", [], cascade=())
    with pytest.raises(XfrError, match="uint8"):
        randomisation_check(model, "saliency",
                            [("x", np.zeros((48, 48, 3)), np.zeros((48, 48, 3)))], cascade=())


@pytest.mark.slow
def test_randomising_a_real_model_changes_gradient_maps_each_copy_built_once(monkeypatch):
    model = xfr_lib.load_model("dlib_resnet29")
    wild = load_dataset("wild")
    keep = [i for i, im in enumerate(wild) if im.identity in ("Emmanuel Macron", "Rishi Sunak")]
    emb = embed_dataset(model, wild.subset(keep), progress=False)
    assert emb.ok.all() and len(emb) >= 3
    pairs = [("p0", emb.chips[0], emb.chips[1]), ("p1", emb.chips[1], emb.chips[2])]
    counter = _CountCopies(lambda m, seed, top: randomized_copy(m, seed=seed, top=top))
    monkeypatch.setattr(_randomisation, "randomized_copy", counter)
    rows = randomisation_check(model, "saliency", pairs, cascade=(1,))
    assert counter.calls == [None, 1]
    full = rows[rows["randomisation"] == "all"]
    assert full["layers randomised"].eq(len(randomization_layers(model))).all()
    # Trained maps are far from the fully randomised model's: Spearman well below 1.
    sim = full[full["map"].str.startswith("similarity")]
    assert sim["spearman"].notna().all()
    assert sim["spearman"].median() < 0.5 and sim["spearman"].max() < 0.9
    assert sim["ssim"].median() < 0.6
    # The scores are the models' own: trained as embedded, randomised different.
    e = embed(model, np.stack([emb.chips[0], emb.chips[1]]))
    assert full["score trained"].iloc[0] == pytest.approx(float(e[0] @ e[1]), abs=1e-5)
    assert (full["score randomised"] - full["score trained"]).abs().min() > 1e-3
    # Tensors in [0, 1] are taken as they are and give the same rows.
    label, a, b = pairs[0]
    tensors = [(label, chip_to_tensor(a), chip_to_tensor(b))]
    assert np.array_equal(tensor_to_chip(tensors[0][1]), a)
    again = randomisation_check(model, "saliency", tensors, cascade=())
    first = full[full["pair"] == label].reset_index(drop=True)
    assert np.allclose(again["spearman"], first["spearman"], equal_nan=True)


def test_shared_copies_are_used_instead_of_building_new_ones(monkeypatch):
    model = ConvQuadrantModel()
    copies = randomised_copies(model, cascade=(1, 2), seed=4)
    assert list(copies) == ["all", "top 1", "top 2"]
    built = randomisation_check(model, "saliency", _toy_pairs(2), cascade=(1, 2), seed=4)
    counter = _CountCopies(lambda m, seed, top: randomized_copy(m, seed=seed, top=top))
    monkeypatch.setattr(_randomisation, "randomized_copy", counter)
    shared = randomisation_check(model, "saliency", _toy_pairs(2), cascade=(1, 2), seed=4,
                                 copies=copies)
    assert counter.calls == []  # nothing built
    assert np.allclose(shared["spearman"], built["spearman"], equal_nan=True)
    partial = randomisation_check(model, "saliency", _toy_pairs(1), cascade=(1, 2), seed=4,
                                  copies={"all": copies["all"]})
    assert counter.calls == [1, 2] and len(partial) == 3 * len(MAP_NAMES)
    with pytest.raises(XfrError, match="seed=5"):
        randomisation_check(model, "saliency", _toy_pairs(1), cascade=(1, 2), seed=5,
                            copies=copies)
    with pytest.raises(XfrError, match="randomised_copies"):
        randomisation_check(model, "saliency", _toy_pairs(1), cascade=(1,), seed=4,
                            copies={"top 1": copies["top 2"]})
