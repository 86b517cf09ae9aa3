"""Face-recognition metrics: verification (accuracy, ROC, EER, FNMR at FMR) and identification.

Conventions used everywhere in this module:

* A *score* is a similarity (cosine similarity of embeddings): higher means more alike.
* A *label* is ``True`` for a genuine (mated, same-person) pair and ``False`` for an impostor pair.
* The decision rule is the one of :meth:`xfr_lib.models.FaceModel.decide`: a pair is
  accepted as a match when ``score >= threshold``. So at threshold ``t``
  ``FMR(t) = #{impostor scores >= t} / #impostors`` and
  ``FNMR(t) = #{genuine scores < t} / #genuines``; ``TMR = 1 - FNMR``.

Bad input (different lengths, NaN scores, a class missing) raises :class:`MetricInputError`,
which is both an :class:`xfr_lib.errors.DatasetError` and a :class:`ValueError`, with a
one-line message.

>>> import numpy as np
>>> scores = np.array([0.9, 0.7, 0.5, 0.8, 0.6, 0.4, 0.3])
>>> labels = np.array([True, True, True, False, False, False, False])
>>> round(eer(scores, labels).eer, 4)
0.3333
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from xfr_lib.errors import DatasetError

#: A FNMR@FMR level is ``reliable`` when it rests on at least this many expected false matches,
#: i.e. ``n_impostors * fmr >= RELIABLE_FALSE_MATCHES``.
RELIABLE_FALSE_MATCHES = 10


class MetricInputError(DatasetError, ValueError):
    """Scores, labels or identities that a metric cannot use (one-line message)."""


# --------------------------------------------------------------------------- validation


def check_scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores float64 [N], labels bool [N])`` or raise a one-line MetricInputError."""
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise MetricInputError(
            f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}; flatten them"
        )
    if len(s) != len(y):
        raise MetricInputError(
            f"scores ({len(s)}) and labels ({len(y)}) differ in length; pass one label per pair"
        )
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise MetricInputError(f"scores must be real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    bad = ~np.isfinite(s)
    if bad.any():
        raise MetricInputError(
            f"{int(bad.sum())} of {len(s)} scores are NaN or infinite (first at index "
            f"{int(np.flatnonzero(bad)[0])}); drop those pairs or fix the embeddings"
        )
    if y.dtype != np.bool_:
        if not np.issubdtype(y.dtype, np.number) or not np.isin(y, (0, 1)).all():
            raise MetricInputError(
                "labels must be booleans or 0/1 (True = genuine pair), got values like "
                f"{np.unique(y)[:3].tolist()}"
            )
        y = y.astype(bool)
    n_gen = int(y.sum())
    if n_gen == 0 or n_gen == len(y):
        kind = "genuine" if n_gen == 0 else "impostor"
        raise MetricInputError(
            f"no {kind} pairs among {len(y)} labels; a verification metric needs both "
            "genuine (True) and impostor (False) pairs"
        )
    return s, y


# --------------------------------------------------------------------------- ROC


def _roc_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC as counts, from :func:`sklearn.metrics.roc_curve` (``drop_intermediate=False``).

    Returns ``(thresholds, false_matches, false_non_matches)`` with one point per distinct score
    plus a first ``+inf`` point, ordered by decreasing threshold: at ``thresholds[i]`` (accept if
    ``score >= t``, scikit-learn's rule too) ``false_matches[i]`` impostors are accepted and
    ``false_non_matches[i]`` genuines rejected. ``s`` and ``y`` come from
    :func:`check_scores_labels` (both classes present).
    """
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    # roc_curve divides integer counts by the class sizes; undo that exactly (the counts are
    # far below 2**53) so that rates and operating points below are computed from integers.
    fm = np.rint(fpr * n_imp).astype(np.int64)
    fnm = n_gen - np.rint(tpr * n_gen).astype(np.int64)
    return thresholds, fm, fnm


def roc(scores, labels) -> pd.DataFrame:
    """Exact ROC of a verification experiment, from :func:`sklearn.metrics.roc_curve`.

    One row per distinct score (the threshold ``t`` is that score; accept if ``score >= t``),
    plus a first row at ``t = +inf`` where nothing is accepted. Rows are ordered by decreasing
    threshold, hence increasing FMR: the points of ``roc_curve(labels, scores,
    drop_intermediate=False)``, with ``fmr`` its ``fpr`` and ``tmr`` its ``tpr``. Cost: one
    sort, O(N log N).

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.

    Returns:
        DataFrame with columns ``threshold``, ``fmr``, ``fnmr``, ``tmr`` (``= 1 - fnmr``);
        ``attrs`` holds ``n_genuine`` and ``n_impostor``.
    """
    s, y = check_scores_labels(scores, labels)
    thresholds, fm, fnm = _roc_counts(s, y)
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    fnmr = fnm / n_gen
    df = pd.DataFrame(
        {"threshold": thresholds, "fmr": fm / n_imp, "fnmr": fnmr, "tmr": 1.0 - fnmr}
    )
    df.attrs.update(n_genuine=n_gen, n_impostor=n_imp)
    return df


# --------------------------------------------------------------------------- EER


class EERResult(NamedTuple):
    """Equal error rate and the (interpolated) threshold at which FMR = FNMR."""

    eer: float
    threshold: float


def eer_from_curve(thresholds: np.ndarray, fmr: np.ndarray, fnmr: np.ndarray) -> EERResult:
    """EER from ROC points ordered by decreasing threshold, the first at ``+inf`` (see :func:`eer`).

    ``thresholds``, ``fmr``, ``fnmr`` are the columns of a :func:`roc` frame (equivalently
    ``thresholds``, ``fpr`` and ``1 - tpr`` of :func:`sklearn.metrics.roc_curve`).
    """
    d = fnmr - fmr  # starts at 1 (t = +inf), ends at -1 (lowest threshold); non-increasing
    i = int(np.argmax(d <= 0))  # first point where FNMR no longer exceeds FMR
    if d[i] == 0:
        return EERResult(float(fmr[i]), float(thresholds[i]))
    # Linear interpolation between ROC points i-1 and i (both error rates move linearly along
    # the segment, so they meet at the same fraction alpha).
    alpha = d[i - 1] / (d[i - 1] - d[i])
    rate = fmr[i - 1] + alpha * (fmr[i] - fmr[i - 1])
    t_hi, t_lo = thresholds[i - 1], thresholds[i]
    threshold = t_lo if np.isinf(t_hi) else t_hi + alpha * (t_lo - t_hi)
    return EERResult(float(rate), float(threshold))


def eer(scores, labels) -> EERResult:
    """Equal error rate (EER): the error rate where FMR and FNMR are equal.

    Convention: walk the exact ROC (:func:`roc`) from the highest threshold down. At the first
    ROC point where ``FNMR <= FMR``: if they are equal there, that is the EER and its threshold
    (so a perfectly separable set gives EER 0.0 at the lowest genuine score). Otherwise FNMR and
    FMR are interpolated linearly between this point and the previous one, and the EER is the
    rate where the two straight lines cross; the threshold is interpolated with the same weight
    (if the previous point is the ``+inf`` point, the current point's threshold is returned).

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.

    Returns:
        ``EERResult(eer, threshold)``, EER as a fraction in [0, 1].
    """
    s, y = check_scores_labels(scores, labels)
    thresholds, fm, fnm = _roc_counts(s, y)
    return eer_from_curve(thresholds, fm / int((~y).sum()), fnm / int(y.sum()))


# --------------------------------------------------------------------------- FNMR @ FMR


def fnmr_at_fmr(scores, labels, fmr_levels: Sequence[float] = (1e-2, 1e-3, 1e-4)) -> pd.DataFrame:
    """FNMR at fixed FMR operating points, with a reliability flag.

    For each target ``a``, the threshold is the lowest ROC threshold whose empirical FMR is at
    most ``a`` (at most ``floor(a * n_impostors)`` impostors accepted); the FNMR at that threshold
    is reported. The threshold is a score value (accept if ``score >= threshold``); ``+inf``
    means that even rejecting everything above the top score is needed.

    Reliability rule: a level is ``reliable`` only if ``n_impostors >= 10 / a``, i.e. the
    threshold rests on at least 10 expected false matches (relative standard error of the FMR
    about 1/sqrt(10) = 32 %; Doddington's "rule of 30" is stricter). With fewer than ``1 / a``
    impostor pairs not even one false match is allowed, the level cannot be told apart from
    FMR = 0 and FNMR and threshold are NaN with the note
    ``"too few impostor pairs (N) for FMR a"``. (Comparisons use ``n * a`` with a 1e-9 relative
    tolerance so that e.g. 1000 impostors count as enough for FMR 1e-3.)

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.
        fmr_levels: target FMRs, each in (0, 1].

    Returns:
        DataFrame, one row per level, columns ``fmr_target``, ``fnmr``, ``threshold``,
        ``n_impostors``, ``reliable`` (bool), ``note`` (empty when reliable).
    """
    s, y = check_scores_labels(scores, labels)
    levels = np.atleast_1d(np.asarray(fmr_levels, dtype=np.float64))
    if levels.ndim != 1 or not ((levels > 0) & (levels <= 1)).all():
        raise MetricInputError(f"fmr_levels must be numbers in (0, 1], got {list(fmr_levels)}")
    thresholds, fm, fnm = _roc_counts(s, y)
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    rows = []
    for a in levels:
        expected = n_imp * a * (1 + 1e-9)
        allowed = int(np.floor(expected))
        if expected < 1:
            rows.append((a, np.nan, np.nan, n_imp, False,
                         f"too few impostor pairs ({n_imp}) for FMR {a:g}"))
            continue
        # fm is non-decreasing along decreasing thresholds: last index with fm <= allowed.
        i = int(np.searchsorted(fm, allowed, side="right")) - 1
        reliable = expected >= RELIABLE_FALSE_MATCHES
        note = "" if reliable else (
            f"only {n_imp} impostor pairs for FMR {a:g}: fewer than "
            f"{RELIABLE_FALSE_MATCHES} expected false matches, unreliable"
        )
        rows.append((a, fnm[i] / n_gen, float(thresholds[i]), n_imp, reliable, note))
    df = pd.DataFrame(
        rows, columns=["fmr_target", "fnmr", "threshold", "n_impostors", "reliable", "note"]
    )
    df["reliable"] = df["reliable"].astype(bool)
    df.attrs.update(n_genuine=n_gen, n_impostor=n_imp,
                    reliable_false_matches=RELIABLE_FALSE_MATCHES)
    return df


# --------------------------------------------------------------------------- accuracy


def accuracy_at(scores, labels, threshold: float) -> float:
    """Fraction of pairs decided correctly when accepting ``score >= threshold``.

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.
        threshold: decision threshold.

    Returns:
        Accuracy in [0, 1].
    """
    s, y = check_scores_labels(scores, labels)
    return float(np.mean((s >= threshold) == y))


def _best_threshold(s: np.ndarray, y: np.ndarray) -> float:
    """Threshold maximising accuracy on ``(s, y)``; the smallest one on ties.

    Candidates: the midpoints between consecutive distinct scores, plus one point below the
    lowest score (accept all) and one above the highest (reject all). Each candidate decides
    like one ROC point (:func:`_roc_counts`): the midpoint below a distinct score ``u`` accepts
    exactly the scores ``>= u``, so the accuracies are read off the ROC counts.
    """
    thresholds, fm, fnm = _roc_counts(s, y)
    correct = len(s) - fm - fnm  # accepted genuines + rejected impostors, per ROC point
    # ROC points run by decreasing threshold: the last maximum is the smallest threshold.
    i = len(correct) - 1 - int(np.argmax(correct[::-1]))
    u = thresholds[1:][::-1]  # the distinct scores, increasing
    span = max(float(u[-1] - u[0]), 1.0)
    if i == 0:  # the +inf point: reject all
        return float(u[-1] + span)
    if i == len(thresholds) - 1:  # the lowest score: accept all
        return float(u[0] - span)
    hi, lo = thresholds[i], thresholds[i + 1]
    mid = lo + (hi - lo) / 2
    return float(mid if mid > lo else hi)  # adjacent floats: the midpoint must not accept ``lo``


@dataclass(frozen=True, eq=False)
class VerificationResult:
    """k-fold verification accuracy (LFW View 2 protocol).

    Attributes:
        mean: mean of the per-fold accuracies.
        std: population standard deviation (``ddof=0``, as ``numpy.std``) of the per-fold
            accuracies.
        fold_accuracies: ``[n_folds]`` accuracy on each held-out fold.
        fold_thresholds: ``[n_folds]`` threshold chosen on the other folds and applied to it.
        n_folds: number of folds.
        n_pairs: number of pairs in all folds.
        fold_ids: the fold labels, in the order of the arrays above.
    """

    mean: float
    std: float
    fold_accuracies: np.ndarray
    fold_thresholds: np.ndarray
    n_folds: int
    n_pairs: int
    fold_ids: tuple

    def to_frame(self) -> pd.DataFrame:
        """One row per fold: ``fold``, ``accuracy``, ``threshold``."""
        return pd.DataFrame({"fold": list(self.fold_ids), "accuracy": self.fold_accuracies,
                             "threshold": self.fold_thresholds})

    def __str__(self) -> str:
        return (f"accuracy {100 * self.mean:.2f} % +- {100 * self.std:.2f} % "
                f"({self.n_folds} folds, {self.n_pairs} pairs)")


def verification_accuracy(scores, labels, folds: int | Sequence = 10) -> VerificationResult:
    """Verification accuracy by k-fold cross-validation of the threshold (LFW View 2 style).

    For each fold k, the threshold that maximises accuracy on all the *other* folds is applied
    to fold k, so fold k's scores never influence its own threshold. Candidate thresholds are
    the midpoints between consecutive distinct training scores (plus one below the lowest and
    one above the highest score); when several maximise the training accuracy, the smallest is
    taken. The result is the mean and the population std (``ddof=0``) over the folds.

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.
        folds: either ``[N]`` fold labels (any hashable values, one per pair), or an int ``k``:
            the pairs, in the given order, are cut into ``k`` contiguous nearly equal blocks
            (the order of LFW's ``pairs.txt``, whose 10 sets of 600 pairs are the folds).

    Returns:
        :class:`VerificationResult`.
    """
    s, y = check_scores_labels(scores, labels)
    if isinstance(folds, (int, np.integer)):
        k = int(folds)
        if not 2 <= k <= len(s):
            raise MetricInputError(f"folds={k} must be between 2 and the number of pairs {len(s)}")
        fold_of = np.repeat(np.arange(k), [len(b) for b in np.array_split(np.arange(len(s)), k)])
    else:
        fold_of = np.asarray(folds)
        if fold_of.ndim != 1 or len(fold_of) != len(s):
            raise MetricInputError(
                f"folds has shape {fold_of.shape} but there are {len(s)} scores; "
                "pass one fold label per pair or an int number of folds"
            )
    fold_ids = np.unique(fold_of)
    if len(fold_ids) < 2:
        raise MetricInputError(f"need at least 2 folds, got {len(fold_ids)}")
    accs, thrs = [], []
    for f in fold_ids:
        test = fold_of == f
        t = _best_threshold(s[~test], y[~test])
        thrs.append(t)
        accs.append(float(np.mean((s[test] >= t) == y[test])))
    accs_a = np.asarray(accs)
    return VerificationResult(
        mean=float(accs_a.mean()), std=float(accs_a.std(ddof=0)), fold_accuracies=accs_a,
        fold_thresholds=np.asarray(thrs), n_folds=len(fold_ids), n_pairs=len(s),
        fold_ids=tuple(fold_ids.tolist()),
    )


# --------------------------------------------------------------------------- identification


def _check_identification(similarity, probe_ids, gallery_ids):
    sim = np.asarray(similarity)
    p = np.asarray(probe_ids)
    g = np.asarray(gallery_ids)
    if sim.ndim != 2:
        raise MetricInputError(
            f"similarity must be a 2-D [n_probes, n_gallery] matrix, got shape {sim.shape}"
        )
    if p.ndim != 1 or g.ndim != 1 or sim.shape != (len(p), len(g)):
        raise MetricInputError(
            f"similarity has shape {sim.shape} but there are {p.shape} probe ids and "
            f"{g.shape} gallery ids; rows are probes, columns gallery items"
        )
    if sim.size == 0:
        raise MetricInputError(f"similarity matrix {sim.shape} is empty")
    if not np.issubdtype(sim.dtype, np.number):
        raise MetricInputError(f"similarity must be numeric, got dtype {sim.dtype}")
    sim = sim.astype(np.float64)
    if not np.isfinite(sim).all():
        r, c = np.argwhere(~np.isfinite(sim))[0]
        raise MetricInputError(
            f"similarity has {int((~np.isfinite(sim)).sum())} NaN/infinite entries "
            f"(first at probe {r}, gallery item {c}); fix the embeddings"
        )
    return sim, p, g


def ranks(similarity, probe_ids, gallery_ids, open_set: bool = False) -> np.ndarray:
    """Rank (1-based) of the first correct gallery match of each probe.

    Ties are broken pessimistically: every gallery item of another identity whose similarity
    equals (or exceeds) the best same-identity similarity is counted as ranked above it. So
    ``rank = 1 + #{non-mated gallery items with similarity >= best mated similarity}``.

    Args:
        similarity: ``[n_probes, n_gallery]`` similarities (higher = more alike).
        probe_ids: ``[n_probes]`` identity of each probe.
        gallery_ids: ``[n_gallery]`` identity of each gallery item.
        open_set: if False (default, closed-set identification), a probe whose identity is not
            in the gallery raises :class:`MetricInputError`. If True, such probes get rank 0
            (meaning "no mate in the gallery").

    Returns:
        ``int64 [n_probes]`` ranks.
    """
    sim, p, g = _check_identification(similarity, probe_ids, gallery_ids)
    mated = p[:, None] == g[None, :]
    has_mate = mated.any(axis=1)
    if not open_set and not has_mate.all():
        missing = np.unique(p[~has_mate])
        raise MetricInputError(
            f"{int((~has_mate).sum())} probes have no mate in the gallery (identities "
            f"{missing[:5].tolist()}{'...' if len(missing) > 5 else ''}); add them to the gallery "
            "or pass open_set=True to leave them out"
        )
    best = np.where(mated, sim, -np.inf).max(axis=1)
    above = ((sim >= best[:, None]) & ~mated).sum(axis=1)
    return np.where(has_mate, 1 + above, 0).astype(np.int64)


def _mated_ranks(similarity, probe_ids, gallery_ids, open_set: bool) -> tuple[np.ndarray, int]:
    r = ranks(similarity, probe_ids, gallery_ids, open_set=open_set)
    kept = r[r > 0]
    if len(kept) == 0:
        raise MetricInputError("no probe has a mate in the gallery; check the identity labels")
    return kept, int((r == 0).sum())


def rank_k_accuracy(similarity, probe_ids, gallery_ids, ks: Sequence[int] = (1, 5, 10),
                    open_set: bool = False) -> dict[int, float]:
    """Rank-k identification accuracy: fraction of probes with a mate among the top k.

    Ties are pessimistic (see :func:`ranks`). With ``open_set=True`` probes without a mate in
    the gallery are left out of the fraction (accuracy over mated probes only); by default they
    raise :class:`MetricInputError`.

    Args:
        similarity: ``[n_probes, n_gallery]`` similarities.
        probe_ids: ``[n_probes]`` identities.
        gallery_ids: ``[n_gallery]`` identities.
        ks: ranks k >= 1 to report.
        open_set: leave out probes without a mate instead of raising.

    Returns:
        ``{k: accuracy}`` with accuracies in [0, 1].
    """
    ks_list = [int(k) for k in np.atleast_1d(ks)]
    if any(k < 1 for k in ks_list):
        raise MetricInputError(f"ks must be ranks >= 1, got {ks_list}")
    r, _ = _mated_ranks(similarity, probe_ids, gallery_ids, open_set)
    return {k: float(np.mean(r <= k)) for k in ks_list}


def cmc(similarity, probe_ids, gallery_ids, max_rank: int | None = None,
        open_set: bool = False) -> pd.DataFrame:
    """Cumulative match characteristic: rank-k accuracy for k = 1..max_rank.

    Args:
        similarity: ``[n_probes, n_gallery]`` similarities.
        probe_ids: ``[n_probes]`` identities.
        gallery_ids: ``[n_gallery]`` identities.
        max_rank: last rank; default the gallery size (where a closed-set CMC reaches 1.0).
        open_set: leave out probes without a mate instead of raising (see :func:`ranks`).

    Returns:
        DataFrame with columns ``rank`` and ``accuracy``; ``attrs`` holds ``n_probes`` (used)
        and ``n_excluded``.
    """
    r, n_excluded = _mated_ranks(similarity, probe_ids, gallery_ids, open_set)
    n_gallery = np.asarray(similarity).shape[1]
    max_rank = n_gallery if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise MetricInputError(f"max_rank must be >= 1, got {max_rank}")
    counts = np.bincount(np.minimum(r, max_rank + 1), minlength=max_rank + 2)
    acc = np.cumsum(counts[1:max_rank + 1]) / len(r)
    df = pd.DataFrame({"rank": np.arange(1, max_rank + 1), "accuracy": acc})
    df.attrs.update(n_probes=len(r), n_excluded=n_excluded)
    return df
