"""hardest_cases on hand-made score lists with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from xfr_lib.errors import XfrError
from xfr_lib.evaluate import CASE_KINDS, HARD_KINDS, hardest_cases

#            0     1     2     3     4     5     6     7     8     9
SCORES = [0.95, 0.30, 0.62, 0.48, 0.51, 0.70, 0.10, 0.49, 0.62, np.nan]
LABELS = [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]
THRESHOLD = 0.5


def by_kind(df, kind):
    return df[df.kind == kind].pair.tolist()


def test_known_answer():
    df = hardest_cases(SCORES, LABELS, THRESHOLD, k=10)
    # Impostors accepted: 5 (0.70), then 2 and 8 tie at 0.62 -> lower index first, then 4.
    assert by_kind(df, "false_match") == [5, 2, 8, 4]
    # Genuine rejected, lowest first: 1 (0.30), 3 (0.48). Pair 9 (NaN) is left out.
    assert by_kind(df, "false_non_match") == [1, 3]
    # Correct decisions: genuine 0 accepted (margin .45), impostors 7 (.01) and 6 (.40) rejected.
    assert by_kind(df, "near_threshold") == [7, 6, 0]
    assert list(df.kind.unique()) == list(CASE_KINDS)
    fm = df[df.kind == "false_match"]
    assert fm.accepted.all() and not fm.genuine.any() and (fm.margin >= 0).all()
    fnm = df[df.kind == "false_non_match"]
    assert not fnm.accepted.any() and fnm.genuine.all()
    assert df["rank"].tolist() == [0, 1, 2, 3, 0, 1, 0, 1, 2]
    assert df.loc[df.pair == 7, "margin"].item() == pytest.approx(-0.01)


def test_k_limits_each_kind_and_pairs_are_copied():
    pairs = np.arange(20).reshape(10, 2)
    df = hardest_cases(SCORES, LABELS, THRESHOLD, k=1, pairs=pairs)
    assert df.pair.tolist() == [5, 1, 7]
    assert df.i.tolist() == [10, 2, 14] and df.j.tolist() == [11, 3, 15]


def test_threshold_is_inclusive_like_model_decide():
    df = hardest_cases([0.5, 0.5], [0, 1], 0.5, k=3)
    assert by_kind(df, "false_match") == [0]
    assert by_kind(df, "near_threshold") == [1]


def test_order_does_not_depend_on_input_order():
    rng = np.random.default_rng(0)
    s = np.round(rng.uniform(0, 1, 200), 2)  # many ties
    y = rng.integers(0, 2, 200)
    df = hardest_cases(s, y, 0.5, k=7)
    perm = rng.permutation(200)
    df2 = hardest_cases(s[perm], y[perm], 0.5, k=7)
    # The same sort keys in the same order; only tied pairs may differ (by their index).
    assert df.kind.tolist() == df2.kind.tolist()
    assert np.allclose(df.margin.abs(), df2.margin.abs())
    for kind in CASE_KINDS:
        part = df[df.kind == kind]
        key = -part.score if kind == "false_match" else (
            part.score if kind == "false_non_match" else part.margin.abs())
        assert list(key) == sorted(key)


def test_no_errors_gives_empty_kinds_and_bad_input_raises():
    df = hardest_cases([0.95, 0.1], [1, 0], 0.5, k=5)
    assert by_kind(df, "false_match") == [] and by_kind(df, "false_non_match") == []
    assert by_kind(df, "near_threshold") == [1, 0]
    with pytest.raises(XfrError, match="same length"):
        hardest_cases([0.1, 0.2], [1], 0.5)
    with pytest.raises(XfrError, match="labels"):
        hardest_cases([0.1], [2], 0.5)
    with pytest.raises(XfrError, match="pairs"):
        hardest_cases([0.1], [1], 0.5, pairs=np.zeros((2, 2)))


def test_errors_only_false_lists_all_impostors_and_genuine_pairs():
    df = hardest_cases(SCORES, LABELS, THRESHOLD, k=10, errors_only=False)
    assert list(df.kind.unique()) == list(HARD_KINDS)
    # All impostors by score, highest first (2 and 8 tie: index order), NaN left out.
    assert by_kind(df, "closest_impostor") == [5, 2, 8, 4, 7, 6]
    # All genuine pairs, lowest first; pair 0 is accepted, so not an error.
    assert by_kind(df, "hardest_genuine") == [1, 3, 0]
    hg = df[df.kind == "hardest_genuine"]
    assert hg.accepted.tolist() == [False, False, True]
    assert by_kind(df, "near_threshold") == by_kind(hardest_cases(SCORES, LABELS, THRESHOLD,
                                                                  k=10), "near_threshold")
