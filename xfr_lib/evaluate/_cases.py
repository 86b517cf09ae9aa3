"""The pairs worth explaining: a model's errors and its narrowest correct decisions.

Given the scores and labels of a verification protocol and a threshold (accept when
``score >= threshold``, as :meth:`xfr_lib.models.FaceModel.decide`), three kinds of
cases are picked:

* ``false_match``: impostor pairs accepted, highest score first (the closest impostors);
* ``false_non_match``: genuine pairs rejected, lowest score first (the hardest genuine pairs);
* ``near_threshold``: correct decisions closest to the threshold, smallest ``|margin|`` first.

With ``errors_only=False`` the first two kinds are not limited to errors: they become
``closest_impostor`` (all impostor pairs, highest score first) and ``hardest_genuine`` (all
genuine pairs, lowest score first), useful when a model makes few or no errors of a kind;
the ``accepted`` column still says which of them are errors.

Order is deterministic: ties are broken by the pair index (smaller first). Pairs with a NaN
score (a face not found) are left out.

Example:
    >>> hardest_cases([0.9, 0.2, 0.6, 0.45], [1, 0, 0, 1], threshold=0.5, k=1)[
    ...     ["kind", "pair", "score"]].to_string(index=False)
    '           kind  pair  score\\n    false_match     2   0.60\\nfalse_non_match     3   0.45\\n near_threshold     1   0.20'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xfr_lib.errors import XfrError

CASE_KINDS = ("false_match", "false_non_match", "near_threshold")
#: The kinds with ``errors_only=False``.
HARD_KINDS = ("closest_impostor", "hardest_genuine", "near_threshold")


def hardest_cases(scores, labels, threshold: float, k: int = 5,
                  pairs: np.ndarray | None = None, errors_only: bool = True) -> pd.DataFrame:
    """Up to ``k`` false matches, ``k`` false non-matches and ``k`` near-threshold correct pairs.

    Args:
        scores: ``[P]`` similarity of each pair.
        labels: ``[P]`` 1/True for genuine (same person), 0/False for impostor.
        threshold: decision threshold (accept if ``score >= threshold``).
        k: maximum number of cases of each kind.
        pairs: optional ``[P, 2]`` image indices of each pair, copied into columns ``i``, ``j``.
        errors_only: True: false matches and false non-matches only; False: the closest
            impostors and hardest genuine pairs whatever their decision (kinds
            :data:`HARD_KINDS`).

    Returns:
        DataFrame with columns ``kind`` (one of :data:`CASE_KINDS`, or :data:`HARD_KINDS`
        with ``errors_only=False``), ``rank`` (0 = hardest
        within its kind), ``pair`` (index into ``scores``), ``score``, ``genuine`` (bool),
        ``accepted`` (bool), ``margin`` (``score - threshold``) and, when ``pairs`` is given,
        ``i`` and ``j``. Kinds appear in that order.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise XfrError(f"scores ({s.size}) and labels ({y.size}) must have the same length")
    if not np.isin(y, [0, 1]).all():
        raise XfrError("labels must be 1/True (genuine pair) or 0/False (impostor pair)")
    if int(k) != k or k < 0:
        raise XfrError(f"k={k} must be a non-negative integer")
    y = y.astype(bool)
    if pairs is not None:
        pairs = np.asarray(pairs)
        if pairs.shape != (s.size, 2):
            raise XfrError(f"pairs must have shape [{s.size}, 2], got {list(pairs.shape)}")
    idx = np.arange(s.size)
    valid = np.isfinite(s)
    accepted = s >= threshold
    margin = s - threshold
    kinds = CASE_KINDS if errors_only else HARD_KINDS
    impostor, genuine = valid & ~y, valid & y
    if errors_only:
        impostor, genuine = impostor & accepted, genuine & ~accepted
    selections = {
        # np.lexsort sorts by the last key first; the pair index breaks ties.
        kinds[0]: (impostor, -s),
        kinds[1]: (genuine, s),
        "near_threshold": (valid & (y == accepted), np.abs(margin)),
    }
    rows = []
    for kind in kinds:
        chosen, key = selections[kind]
        cand = idx[chosen]
        order = cand[np.lexsort((cand, key[cand]))][: int(k)]
        for rank, p in enumerate(order):
            row = {"kind": kind, "rank": rank, "pair": int(p), "score": float(s[p]),
                   "genuine": bool(y[p]), "accepted": bool(accepted[p]),
                   "margin": float(margin[p])}
            if pairs is not None:
                row["i"], row["j"] = int(pairs[p, 0]), int(pairs[p, 1])
            rows.append(row)
    columns = ["kind", "rank", "pair", "score", "genuine", "accepted", "margin"]
    if pairs is not None:
        columns += ["i", "j"]
    return pd.DataFrame(rows, columns=columns)
