"""The stopping rule of CorrRISE and RISE (``converge``) and the nested masks it draws.

Known numbers pin the default (fixed-N) masks and maps; toy models check that stopping only
truncates the mask sequence, does not depend on the batch size, and that the split-half
estimate predicts the correlation with an independent large-N map; a real model on a real
pair checks that a run stops early.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers import PatchMasks, RiseMasks, explain, pearson_map
from xfr_lib.explainers._convergence import split_half_estimate
from xfr_lib.explainers._masks import NESTED_BLOCK, batch_bounds

sys.path.insert(0, str(Path(__file__).parent))
from test_explain_corrrise import QuadrantModel, images

TOY = {"corrrise": {"patch_size": 8}, "rise": {"s": 4, "debias": True}}
STOP = {"converge": 0.9, "check_every": 32, "min_n": 64}


@pytest.fixture(scope="module")
def toy():
    return QuadrantModel(), *images()


# --- the default stays the papers' algorithm, bit for bit -----------------------------------

def test_default_masks_and_maps_are_the_fixed_n_algorithms_own(toy):
    # Numbers of the code before the stopping rule existed: the default must not move.
    pm = PatchMasks(n=5, height=32, width=32, patch_size=8)
    assert pm._tops[0].tolist() == [26, 17, 12, 3, 5, -6, -5, -7, -1, 24]
    assert pm._lefts[0].tolist() == [22, 7, 10, 31, 24, 31, 7, 19, 30, 18]
    np.testing.assert_array_equal(pm._values[0, :3], np.float32([0.7870983, 0.23936944,
                                                                  0.87648422]))
    assert RiseMasks(n=3, height=32, width=32, s=4)._shifts.tolist() == [[0, 6], [0, 3], [3, 6]]
    # The maps to float32 rounding: the masks above are the same bits on every machine, but the
    # model's float32 arithmetic differs in its last bits between CPUs (seen: 4e-7 relative).
    model, a, b = toy
    e = explain("corrrise", model, a, b, n=64, patch_size=8)
    c = e.extras["correlation_a"]
    assert float(c.astype(np.float64).sum()) == pytest.approx(47.66146378833946, rel=1e-5)
    assert c[3, 5] == pytest.approx(0.4401943, rel=1e-5)
    assert "n_used_a" not in e.extras and e.params["converge"] is None
    r = explain("rise", model, a, b, n=64, s=4)
    assert float(r.similarity_a.astype(np.float64).sum()) == pytest.approx(454.77013289928436,
                                                                           rel=1e-5)


# --- nested masks -------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [PatchMasks, RiseMasks])
def test_nested_masks_are_prefixes_seeded_and_in_range(cls):
    long = cls(n=3 * NESTED_BLOCK + 5, height=40, width=40, seed=3, nested=True).all()
    short = cls(n=NESTED_BLOCK + 7, height=40, width=40, seed=3, nested=True).all()
    torch.testing.assert_close(long[: len(short)], short, rtol=0, atol=0)
    assert 0 <= long.min() and long.max() <= 1 and long.std() > 0.1
    other_seed = cls(n=len(short), height=40, width=40, seed=4, nested=True).all()
    fixed_n = cls(n=len(short), height=40, width=40, seed=3).all()
    assert not torch.equal(short, other_seed) and not torch.equal(short, fixed_n)


def test_batches_are_cut_at_checkpoints_whatever_the_batch_size():
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    bounds = batch_bounds(200, 48, 64)
    assert bounds[0] == (0, 48) and bounds[-1][1] == 200
    assert all(b - a <= 48 for a, b in bounds)
    ends = {b for _, b in bounds}
    assert {64, 128, 192} <= ends


# --- the estimate -------------------------------------------------------------------------

def test_estimate_is_spearman_brown_and_stays_in_unit_interval():
    g = np.random.default_rng(0)
    truth = g.normal(size=(1, 40, 40))
    assert split_half_estimate(truth, truth)[0] == pytest.approx(1.0)
    assert split_half_estimate(truth, -truth)[0] == 0.0
    assert split_half_estimate(truth, np.zeros_like(truth))[0] == 0.0
    # Halves = truth + unit noise with var(truth) = 1: half r = 0.5, full reliability 2/3.
    big = g.normal(size=(1, 300, 300))
    noisy = [big + g.normal(size=big.shape) for _ in range(2)]
    assert split_half_estimate(*noisy)[0] == pytest.approx(np.sqrt(2 / 3), abs=0.01)


@pytest.mark.parametrize("method", ["corrrise", "rise"])
def test_estimate_predicts_the_correlation_with_an_independent_large_n_map(toy, method):
    model, a, b = toy
    run = explain(method, model, a, b, n=256, converge=0.999, **TOY[method], seed=0,
                  check_every=32, min_n=64)
    ref = explain(method, model, a, b, n=4096, converge=0.999, **TOY[method], seed=1,
                  check_every=4096, min_n=4096)
    assert run.extras["n_used_a"] == 256 and ref.extras["n_used_a"] == 4096
    signed = [e.similarity_a - e.dissimilarity_a for e in (run, ref)]
    measured = np.corrcoef(signed[0].ravel(), signed[1].ravel())[0, 1]
    # Both maps' correlations with the infinite-N map multiply to theirs with each other.
    predicted = run.extras["convergence_a"] * ref.extras["convergence_a"]
    assert 0 < run.extras["convergence_a"] < ref.extras["convergence_a"] <= 1
    assert predicted == pytest.approx(measured, abs=0.04)


# --- stopping -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["corrrise", "rise"])
def test_stopping_only_truncates_and_does_not_depend_on_batch_size(toy, method):
    model, a, b = toy
    runs = {bs: explain(method, model, a, b, n=3000, **STOP, **TOY[method], batch_size=bs)
            for bs in (32, 7, 64)}
    e = runs[32]
    used = e.extras["n_used_a"]
    assert STOP["min_n"] <= used < 3000 and used % STOP["check_every"] == 0
    assert e.extras["convergence_a"] >= STOP["converge"]
    assert len(e.extras["scores_a"]) == used
    # A run capped at n_used (which it reaches either way) gives the very same maps.
    capped = explain(method, model, a, b, n=used, **STOP, **TOY[method])
    for key, m in e.maps.items():
        np.testing.assert_array_equal(capped.maps[key], m, err_msg=key)
    for bs in (7, 64):
        assert runs[bs].extras["n_used_a"] == used
        assert runs[bs].extras["n_used_b"] == e.extras["n_used_b"]
        for key, m in e.maps.items():  # float32 sums grouped by batch: equal to rounding
            np.testing.assert_allclose(runs[bs].maps[key], m, rtol=0, atol=1e-6, err_msg=key)
    assert e.params["converge"] == 0.9 and e.params["check_every"] == 32


@pytest.mark.parametrize("kwargs, word", [
    ({"converge": 1.0}, "converge"), ({"converge": 0}, "converge"),
    ({"converge": "0.9"}, "converge"), ({"converge": True}, "converge"),
    ({"converge": 0.9, "check_every": 63}, "check_every"),
    ({"check_every": 0}, "check_every"), ({"min_n": 4}, "min_n"),
    ({"converge": 0.9, "n": 100}, "min_n"),
])
@pytest.mark.parametrize("method", ["corrrise", "rise"])
def test_bad_stopping_parameters_are_one_line_errors(toy, method, kwargs, word):
    model, a, b = toy
    with pytest.raises(XfrError, match=word) as info:
        explain(method, model, a, b, **{**TOY[method], **kwargs})
    assert "\n" not in str(info.value)


def test_spearman_cannot_stop_early(toy):
    model, a, b = toy
    with pytest.raises(XfrError, match="pearson"):
        explain("corrrise", model, a, b, correlation="spearman", converge=0.9)


def test_a_real_pair_stops_early_on_the_first_masks():
    from xfr_lib import load_model
    from xfr_lib.data import load_dataset

    model = load_model("dlib_resnet29")
    paths = [im.path for im in load_dataset("wild") if im.identity == "Emmanuel Macron"]
    a, b = (model.align(p) for p in paths)
    e = explain("corrrise", model, a, b, n=2048, converge=0.75, check_every=32, min_n=64)
    h, w = model.input_size
    for side in "ab":
        used = e.extras[f"n_used_{side}"]
        assert used < 2048 and e.extras[f"convergence_{side}"] >= 0.75
        # The map is the plain Pearson map of the first n_used nested masks and their scores.
        masks = PatchMasks(n=used, height=h, width=w, seed=0, nested=True).all()
        want = pearson_map(e.extras[f"scores_{side}"], masks)
        np.testing.assert_allclose(e.extras[f"correlation_{side}"], want, rtol=0, atol=1e-5)
