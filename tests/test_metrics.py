"""Known-answer tests of xfr_lib.evaluate.metrics (verification and identification metrics)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_curve

from xfr_lib.errors import DatasetError
from xfr_lib.evaluate import (
    MetricInputError,
    accuracy_at,
    cmc,
    eer,
    fnmr_at_fmr,
    rank_k_accuracy,
    ranks,
    roc,
    verification_accuracy,
)


def gaussian_pairs(n: int, d_prime: float, seed: int, genuine_fraction: float = 0.5):
    """Impostor scores ~ N(0, 1), genuine ~ N(d', 1): EER = Phi(-d'/2) in the limit."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < genuine_fraction
    return rng.normal(labels * d_prime, 1.0), labels


def separable(n_gen: int, n_imp: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.uniform(0.6, 1.0, n_gen), rng.uniform(-1.0, 0.4, n_imp)])
    labels = np.concatenate([np.ones(n_gen, bool), np.zeros(n_imp, bool)])
    perm = rng.permutation(len(scores))
    return scores[perm], labels[perm]


# --------------------------------------------------------------------------- separable


def test_perfectly_separable_scores():
    scores, labels = separable(600, 2400)
    e = eer(scores, labels)
    assert e.eer == 0.0
    # The EER threshold separates the classes.
    assert scores[~labels].max() < e.threshold <= scores[labels].min()
    res = verification_accuracy(scores, labels, folds=10)
    assert res.mean == 1.0 and res.std == 0.0
    assert np.all(res.fold_accuracies == 1.0)
    assert np.all((res.fold_thresholds > 0.4) & (res.fold_thresholds < 0.6))
    table = fnmr_at_fmr(scores, labels)
    assert table["reliable"].tolist() == [True, False, False]
    assert (table.loc[table["reliable"], "fnmr"] == 0).all()
    assert table.loc[1, "fnmr"] == 0  # computed (not NaN) but flagged unreliable
    assert np.isnan(table.loc[2, "fnmr"])


# --------------------------------------------------------------------------- EER


def test_eer_hand_worked_interpolated():
    # threshold: inf   0.9   0.8   0.7   0.6   ...
    # FMR:       0     0     1/4   1/4   1/2
    # FNMR:      1     2/3   2/3   1/3   1/3
    # FNMR - FMR goes from +1/12 (t=0.7) to -1/6 (t=0.6): alpha = 1/3, EER = 1/4 + 1/12 = 1/3,
    # threshold = 0.7 - 0.1/3.
    scores = np.array([0.9, 0.7, 0.5, 0.8, 0.6, 0.4, 0.3])
    labels = np.array([True, True, True, False, False, False, False])
    e = eer(scores, labels)
    assert e.eer == pytest.approx(1 / 3)
    assert e.threshold == pytest.approx(0.7 - 0.1 / 3)


def test_eer_hand_worked_exact_crossing():
    # At t = 0.6: FMR = 1/4 (0.7 accepted), FNMR = 1/4 (0.4 rejected).
    scores = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    e = eer(scores, labels)
    assert e.eer == pytest.approx(0.25)
    assert e.threshold == pytest.approx(0.6)
    assert accuracy_at(scores, labels, e.threshold) == pytest.approx(0.75)


def test_eer_matches_gaussian_theory():
    scores, labels = gaussian_pairs(400_000, d_prime=2.0, seed=1)
    e = eer(scores, labels)
    assert e.eer == pytest.approx(norm.cdf(-1.0), abs=3e-3)  # 0.1587; sampling sd ~ 1e-3
    assert e.threshold == pytest.approx(1.0, abs=0.02)  # midway between the means


def test_eer_matches_independent_sklearn_interpolation():
    scores, labels = gaussian_pairs(3000, d_prime=1.3, seed=2)
    scores = np.round(scores, 2)  # many ties
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    # Independent crossing: the first segment where fnr - fpr changes sign.
    d = fnr - fpr
    j = next(i for i in range(1, len(d)) if d[i] <= 0)
    a = d[j - 1] / (d[j - 1] - d[j])
    expected = fpr[j - 1] + a * (fpr[j] - fpr[j - 1])
    e = eer(scores, labels)
    assert e.eer == pytest.approx(expected, abs=1e-12)
    assert e.eer == pytest.approx(fnr[j - 1] + a * (fnr[j] - fnr[j - 1]), abs=1e-12)
    assert thr[j] <= e.threshold <= thr[j - 1]


# --------------------------------------------------------------------------- ROC


def test_roc_equals_sklearn_at_same_thresholds():
    scores, labels = gaussian_pairs(5000, d_prime=1.5, seed=3)
    scores = np.round(scores, 2)  # ties between and within classes
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    df = roc(scores, labels)
    assert list(df.columns) == ["threshold", "fmr", "fnmr", "tmr"]
    np.testing.assert_array_equal(df["threshold"].to_numpy(), thr)
    np.testing.assert_allclose(df["fmr"].to_numpy(), fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(df["tmr"].to_numpy(), tpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(df["tmr"] + df["fnmr"], 1.0)


def test_roc_is_exact_at_each_threshold():
    scores, labels = gaussian_pairs(400, d_prime=1.0, seed=4)
    scores = np.round(scores, 1)
    df = roc(scores, labels)
    assert df.attrs == {"n_genuine": int(labels.sum()), "n_impostor": int((~labels).sum())}
    for t, fmr, fnmr in df[["threshold", "fmr", "fnmr"]].itertuples(index=False):
        assert fmr == np.mean(scores[~labels] >= t)
        assert fnmr == np.mean(scores[labels] < t)
    assert (np.diff(df["fmr"]) >= 0).all() and (np.diff(df["fnmr"]) <= 0).all()
    assert df.iloc[0][["fmr", "fnmr"]].tolist() == [0.0, 1.0]
    assert df.iloc[-1][["fmr", "fnmr"]].tolist() == [1.0, 0.0]


# --------------------------------------------------------------------------- FNMR @ FMR


def test_fnmr_at_fmr_too_few_impostors_gives_nan_and_note():
    scores, labels = gaussian_pairs(1000, d_prime=2.0, seed=5, genuine_fraction=0.5)
    n_imp = int((~labels).sum())
    assert 100 <= n_imp < 1000
    table = fnmr_at_fmr(scores, labels, fmr_levels=(1e-1, 1e-2, 1e-3))
    assert list(table.columns) == ["fmr_target", "fnmr", "threshold", "n_impostors", "reliable",
                                   "note"]
    assert table["reliable"].tolist() == [True, False, False]
    assert table.loc[0, "note"] == ""
    assert not np.isnan(table.loc[1, "fnmr"]) and "unreliable" in table.loc[1, "note"]
    assert np.isnan(table.loc[2, "fnmr"]) and np.isnan(table.loc[2, "threshold"])
    assert table.loc[2, "note"] == f"too few impostor pairs ({n_imp}) for FMR 0.001"
    assert (table["n_impostors"] == n_imp).all()


def test_fnmr_at_fmr_reliability_boundary_is_exact():
    # 1000 impostors: FMR 1e-2 needs 1000 (reliable), 1e-3 needs 10000 (not); 7e-4 and 1e-4 < 1/FMR.
    rng = np.random.default_rng(6)
    scores = np.concatenate([rng.normal(2, 1, 50), rng.normal(0, 1, 1000)])
    labels = np.arange(1050) < 50
    table = fnmr_at_fmr(scores, labels, (1e-2, 1e-3, 7e-4, 1e-4))
    assert table["reliable"].tolist() == [True, False, False, False]
    assert table["fnmr"].notna().tolist() == [True, True, False, False]  # 0.7 false matches


def test_fnmr_at_fmr_operating_point_is_the_lowest_admissible_threshold():
    scores, labels = gaussian_pairs(20_000, d_prime=2.5, seed=7)
    scores = np.round(scores, 3)
    imp, gen = scores[~labels], scores[labels]
    distinct = np.unique(scores)
    for _, row in fnmr_at_fmr(scores, labels, (0.05, 1e-2, 1e-3)).iterrows():
        t = row["threshold"]
        assert np.mean(imp >= t) <= row["fmr_target"]
        assert row["fnmr"] == np.mean(gen < t)
        lower = distinct[distinct < t].max()  # the next lower threshold breaks the target
        assert np.mean(imp >= lower) > row["fmr_target"]


# --------------------------------------------------------------------------- k-fold accuracy


def brute_force_threshold(s: np.ndarray, y: np.ndarray) -> float:
    """Loop over candidates in increasing order and keep the first best (the smallest)."""
    u = np.unique(s)
    cands = [u[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(u)]
    cands.append(u[-1] + 1.0)
    best, best_t = -1.0, None
    for t in cands:
        acc = np.mean((s >= t) == y)
        if acc > best:
            best, best_t = acc, t
    return best_t


def test_fold_thresholds_match_brute_force_and_ignore_their_own_fold():
    scores, labels = gaussian_pairs(1200, d_prime=1.5, seed=8)
    folds = np.repeat(np.arange(10), 120)
    res = verification_accuracy(scores, labels, folds)
    assert res.n_folds == 10 and res.n_pairs == 1200 and res.fold_ids == tuple(range(10))
    for k in range(10):
        train = folds != k
        assert res.fold_thresholds[k] == pytest.approx(
            brute_force_threshold(scores[train], labels[train]), abs=1e-12)
        assert res.fold_accuracies[k] == accuracy_at(
            scores[~train], labels[~train], res.fold_thresholds[k])
    assert res.mean == pytest.approx(res.fold_accuracies.mean())
    assert res.std == pytest.approx(np.std(res.fold_accuracies, ddof=0))

    k = 3
    perturbed = scores.copy()
    rng = np.random.default_rng(9)
    perturbed[folds == k] = rng.normal(0.5, 3.0, (folds == k).sum())
    res2 = verification_accuracy(perturbed, labels, folds)
    assert res2.fold_thresholds[k] == res.fold_thresholds[k]
    others = np.arange(10) != k
    # The perturbation does reach the other folds' thresholds (the test could fail).
    assert not np.array_equal(res2.fold_thresholds[others], res.fold_thresholds[others])


def test_fold_threshold_ties_choose_smallest():
    # Training fold 0: I 0.1, G 0.3, I 0.5, G 0.9 -> thresholds 0.2 and 0.7 both give 3/4.
    scores = np.array([0.1, 0.3, 0.5, 0.9, 0.25, 0.6])
    labels = np.array([False, True, False, True, True, False])
    folds = np.array([0, 0, 0, 0, 1, 1])
    res = verification_accuracy(scores, labels, folds)
    assert res.fold_thresholds[1] == pytest.approx(0.2)
    assert res.fold_accuracies[1] == 0.5  # 0.25 accepted (right), 0.6 accepted (wrong)


def test_integer_folds_are_contiguous_blocks():
    scores, labels = gaussian_pairs(1000, d_prime=1.0, seed=10)
    by_int = verification_accuracy(scores, labels, 10)
    by_ids = verification_accuracy(scores, labels, np.repeat(np.arange(10), 100))
    np.testing.assert_array_equal(by_int.fold_thresholds, by_ids.fold_thresholds)
    np.testing.assert_array_equal(by_int.fold_accuracies, by_ids.fold_accuracies)
    frame = by_int.to_frame()
    assert list(frame.columns) == ["fold", "accuracy", "threshold"] and len(frame) == 10
    assert "10 folds" in str(by_int)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("scores", "labels", "needle"),
    [
        ([0.1, 0.2, 0.3], [True, False], "differ in length"),
        ([0.1, np.nan, 0.3], [True, False, True], "NaN"),
        ([0.1, 0.2, 0.3], [False, False, False], "no genuine"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "no impostor"),
        ([0.1, 0.2, 0.3], [0, 2, 1], "labels must be"),
    ],
)
@pytest.mark.parametrize("fn", [roc, eer, fnmr_at_fmr, verification_accuracy])
def test_bad_verification_input_raises_one_line(fn, scores, labels, needle):
    args = (np.array(scores), np.array(labels))
    with pytest.raises(MetricInputError, match=needle) as info:
        fn(*args) if fn is not verification_accuracy else fn(*args, folds=2)
    assert isinstance(info.value, DatasetError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- identification


def constructed_identification():
    """4 probes x 5 gallery items with ranks worked out by hand."""
    gallery_ids = np.array(["a", "b", "c", "d", "a"])
    probe_ids = np.array(["a", "b", "c", "d"])
    sim = np.array([
        [0.9, 0.1, 0.2, 0.3, 0.5],  # a: best mate 0.9 at top -> rank 1
        [0.8, 0.6, 0.7, 0.1, 0.2],  # b: 0.6 below 0.8, 0.7 -> rank 3
        [0.5, 0.5, 0.5, 0.1, 0.2],  # c: 0.5 tied with two others -> pessimistic rank 3
        [0.9, 0.8, 0.7, 0.1, 0.6],  # d: lowest of all -> rank 5
    ])
    return sim, probe_ids, gallery_ids, np.array([1, 3, 3, 5])


def test_ranks_on_constructed_matrix_with_pessimistic_ties():
    sim, p, g, expected = constructed_identification()
    np.testing.assert_array_equal(ranks(sim, p, g), expected)
    acc = rank_k_accuracy(sim, p, g, ks=(1, 2, 3, 4, 5))
    assert acc == {1: 0.25, 2: 0.25, 3: 0.75, 4: 0.75, 5: 1.0}


def test_ranks_match_argsort_without_ties():
    rng = np.random.default_rng(11)
    g = np.arange(30)
    p = rng.integers(0, 30, 200)
    sim = rng.normal(size=(200, 30))
    r = ranks(sim, p, g)
    order = np.argsort(-sim, axis=1)
    expected = 1 + np.argmax(order == p[:, None], axis=1)
    np.testing.assert_array_equal(r, expected)


def test_cmc_monotone_and_reaches_one_in_closed_set():
    rng = np.random.default_rng(12)
    g = np.repeat(np.arange(25), 2)  # two gallery images per identity
    p = rng.integers(0, 25, 300)
    sim = rng.normal(size=(300, 50)) + 1.0 * (p[:, None] == g[None, :])
    curve = cmc(sim, p, g)
    assert list(curve.columns) == ["rank", "accuracy"]
    assert curve["rank"].tolist() == list(range(1, 51))
    assert (np.diff(curve["accuracy"]) >= 0).all()
    assert curve["accuracy"].iloc[-1] == 1.0
    # Consistent with rank_k_accuracy and with the ranks themselves.
    acc = rank_k_accuracy(sim, p, g, ks=(1, 5, 10))
    for k, a in acc.items():
        assert curve.loc[curve["rank"] == k, "accuracy"].item() == a
    assert curve["accuracy"].iloc[0] == np.mean(ranks(sim, p, g) == 1)
    short = cmc(sim, p, g, max_rank=5)
    pd.testing.assert_frame_equal(short, curve.iloc[:5])


def test_probes_without_mates():
    sim, _, g, _ = constructed_identification()
    p_open = np.array(["a", "b", "zz", "d"])
    with pytest.raises(MetricInputError, match=r"no mate in the gallery.*open_set=True"):
        ranks(sim, p_open, g)
    with pytest.raises(DatasetError):
        cmc(sim, p_open, g)
    r = ranks(sim, p_open, g, open_set=True)
    np.testing.assert_array_equal(r, [1, 3, 0, 5])
    assert rank_k_accuracy(sim, p_open, g, ks=(1, 3), open_set=True) == {1: 1 / 3, 3: 2 / 3}
    curve = cmc(sim, p_open, g, open_set=True)
    assert curve.attrs == {"n_probes": 3, "n_excluded": 1}


@pytest.mark.parametrize(
    ("sim", "p", "g", "needle"),
    [
        (np.zeros((2, 3)), ["a", "b", "c"], ["a", "b", "c"], "rows are probes"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), ["a", "b"], ["a", "b"], "NaN"),
        (np.zeros(3), ["a"], ["a", "b", "c"], "2-D"),
    ],
)
def test_bad_identification_input(sim, p, g, needle):
    with pytest.raises(MetricInputError, match=needle):
        ranks(sim, np.array(p), np.array(g))
