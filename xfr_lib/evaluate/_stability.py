"""Agreement between saliency maps: how much does a map change with the seed, N or the model?

Two measures, both on the flattened maps:

* :func:`spearman`: Spearman rank correlation (:func:`scipy.stats.spearmanr`: Pearson
  correlation of the ranks, ties get their average rank), in [-1, 1]; 1 = the same ordering
  of pixels; NaN when a map is constant.
* :func:`top_k_iou`: intersection over union of the top ``frac`` of pixels of each map
  (the pixels a reader's eye goes to); ties at the cut are broken by pixel index, and pixels
  at the map's minimum never count (a sparse map, e.g. a dissimilarity map that is zero
  almost everywhere, has a smaller top set instead of one padded with arbitrary zeros).
  Chance level for two independent maps is about ``frac / (2 - frac)`` (0.053 at 10 %).

:func:`seed_stability` runs an explainer once per seed and compares every pair of runs;
:func:`map_agreement` compares the maps of two explanations (e.g. trained vs randomised model,
the sanity check of Adebayo et al. 2018, with the model from
:func:`xfr_lib.evaluate.randomized_copy`).

Example:
    >>> import numpy as np
    >>> m = np.arange(100.0).reshape(10, 10)
    >>> round(spearman(m, m), 6), top_k_iou(m, m, 0.1), round(spearman(m, -m), 6)
    (1.0, 1.0, -1.0)
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from xfr_lib.errors import XfrError
from xfr_lib.explainers import MAP_NAMES


def _pair(map1, map2) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(map1, dtype=np.float64)
    b = np.asarray(map2, dtype=np.float64)
    if a.shape != b.shape:
        raise XfrError(f"maps of different shapes {list(a.shape)} and {list(b.shape)} cannot be "
                       f"compared; compute both at the same chip size")
    if a.size < 2:
        raise XfrError("maps need at least two pixels to be compared")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise XfrError("a map contains NaN or inf")
    return a.ravel(), b.ravel()


def spearman(map1: np.ndarray, map2: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (NaN if one is constant).

    Args:
        map1: first map (any shape).
        map2: second map, same shape.
    """
    a, b = _pair(map1, map2)
    if a.min() == a.max() or b.min() == b.max():
        return float("nan")  # a constant map has no order to compare
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.clip(spearmanr(a, b).statistic, -1.0, 1.0))


def top_k_mask(saliency_map: np.ndarray, frac: float = 0.1) -> np.ndarray:
    """Boolean mask (same shape) of the ``ceil(frac * size)`` largest pixels of a map.

    Ties are broken by flat pixel index (earlier first), so the count is exact.

    Args:
        saliency_map: the map.
        frac: fraction of pixels to keep, in (0, 1].
    """
    if not 0 < frac <= 1:
        raise XfrError(f"frac={frac} must be in (0, 1]")
    m = np.asarray(saliency_map, dtype=np.float64)
    flat = m.ravel()
    k = math.ceil(frac * flat.size)
    order = np.lexsort((np.arange(flat.size), -flat))[:k]
    out = np.zeros(flat.size, bool)
    out[order] = True
    return out.reshape(m.shape)


def top_k_iou(map1: np.ndarray, map2: np.ndarray, frac: float = 0.1) -> float:
    """IoU of the top ``frac`` pixels of two maps (pixels at a map's minimum excluded).

    Returns NaN when both maps are constant; 0 when only one is.

    Args:
        map1: first map.
        map2: second map, same shape.
        frac: fraction of pixels in each top set, in (0, 1].
    """
    a, b = _pair(map1, map2)
    ta = top_k_mask(a, frac) & (a > a.min())
    tb = top_k_mask(b, frac) & (b > b.min())
    union = (ta | tb).sum()
    if union == 0:  # both maps constant: no top pixels to compare
        return float("nan")
    return float((ta & tb).sum() / union)


def _get_map(explanation: Any, name: str) -> np.ndarray:
    if isinstance(explanation, Mapping):
        if name not in explanation:
            raise XfrError(f"the explanation has no map {name!r}; it has {sorted(explanation)}")
        return np.asarray(explanation[name])
    if not hasattr(explanation, name):
        raise XfrError(f"the explanation ({type(explanation).__name__}) has no map {name!r}")
    return np.asarray(getattr(explanation, name))


def map_agreement(expl1: Any, expl2: Any, maps: Sequence[str] = MAP_NAMES,
                  frac: float = 0.1) -> pd.DataFrame:
    """Spearman and top-``frac`` IoU between same-named maps of two explanations.

    Args:
        expl1: an explanation object (maps as attributes) or a mapping name -> map.
        expl2: another one.
        maps: names of the maps to compare.
        frac: fraction of pixels for :func:`top_k_iou`.

    Returns:
        DataFrame with columns ``map``, ``spearman``, ``iou``; one row per map.
    """
    rows = []
    for name in maps:
        m1, m2 = _get_map(expl1, name), _get_map(expl2, name)
        rows.append({"map": name, "spearman": spearman(m1, m2), "iou": top_k_iou(m1, m2, frac)})
    return pd.DataFrame(rows, columns=["map", "spearman", "iou"])


def seed_stability(explain_fn: Callable[[int], Any], seeds: Iterable[int],
                   maps: Sequence[str] = MAP_NAMES, frac: float = 0.1,
                   explanations: dict[int, Any] | None = None) -> pd.DataFrame:
    """Pairwise agreement of the maps an explainer gives with different seeds.

    Args:
        explain_fn: ``seed -> explanation`` (an object with the maps as attributes, or a
            mapping name -> map), e.g. ``lambda s: xfr_lib.explain("corrrise", model, a, b,
            seed=s, n=200)``.
        seeds: at least two distinct seeds.
        maps: names of the maps to compare.
        frac: fraction of pixels for :func:`top_k_iou`.
        explanations: if given, filled with seed -> explanation (to reuse the runs).

    Returns:
        DataFrame with one row per map and unordered pair of seeds: ``map``, ``seed_1``,
        ``seed_2``, ``spearman``, ``iou``.
    """
    seeds = list(seeds)
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        raise XfrError(f"seed_stability needs at least two distinct seeds, got {seeds}")
    runs = {s: explain_fn(s) for s in seeds}
    if explanations is not None:
        explanations.update(runs)
    rows = []
    for name in maps:
        for s1, s2 in itertools.combinations(seeds, 2):
            m1, m2 = _get_map(runs[s1], name), _get_map(runs[s2], name)
            rows.append({"map": name, "seed_1": s1, "seed_2": s2, "spearman": spearman(m1, m2),
                         "iou": top_k_iou(m1, m2, frac)})
    return pd.DataFrame(rows, columns=["map", "seed_1", "seed_2", "spearman", "iou"])


def agreement_fit(n_values: Sequence[float], agreement: Sequence[float],
                  target: float = 0.9) -> dict[str, float]:
    """Fit how seed-to-seed agreement grows with the number of samples N, and extrapolate.

    The sampling noise of a correlation estimated from N masks shrinks like a power of N, so
    ``1 - rho`` against N is a straight line on log-log axes: ``log(1 - rho) = a + b log N``.
    The fit uses the points with ``rho < 1`` and gives the N at which the line reaches
    ``target``.

    Args:
        n_values: the numbers of samples (masks) measured.
        agreement: the mean agreement (e.g. Spearman between seeds) at each of them.
        target: the agreement to extrapolate to.

    Returns:
        ``exponent`` (``b``; negative when agreement grows with N), ``n_at_target`` (inf when
        the exponent is not negative: no convergence in sight) and ``points`` (how many
        measurements the fit used; NaN results with fewer than two).

    Example:
        >>> fit = agreement_fit([100, 400], [0.6, 0.8])
        >>> round(fit["exponent"], 3), round(fit["n_at_target"])
        (-0.5, 1600)
    """
    n = np.asarray(n_values, dtype=np.float64)
    rho = np.asarray(agreement, dtype=np.float64)
    good = np.isfinite(rho) & (rho < 1) & (n > 0)
    if good.sum() < 2:
        return {"exponent": float("nan"), "n_at_target": float("nan"), "points": int(good.sum())}
    slope, intercept = np.polyfit(np.log(n[good]), np.log(1 - rho[good]), 1)
    n_at = float(np.exp((np.log(1 - target) - intercept) / slope)) if slope < 0 else math.inf
    return {"exponent": float(slope), "n_at_target": n_at, "points": int(good.sum())}


def stability_over_n(explain_fn: Callable[[int, int], Any], n_values: Iterable[int],
                     seeds: Iterable[int], maps: Sequence[str] = MAP_NAMES,
                     frac: float = 0.1) -> tuple[pd.DataFrame, dict[int, dict[int, Any]],
                                                 pd.Series]:
    """:func:`seed_stability` at each number of samples N: how agreement grows with N.

    Args:
        explain_fn: ``(n, seed) -> explanation`` (maps as attributes or a mapping).
        n_values: the numbers of samples (e.g. masks) to compare.
        seeds: at least two distinct seeds.
        maps: names of the maps to compare.
        frac: fraction of pixels for :func:`top_k_iou`.

    Returns:
        ``(agreement, runs, seconds)``: the rows of :func:`seed_stability` with a column ``N``;
        ``runs[n][seed]``, every explanation; and the mean seconds per explanation for each N.
    """
    frames, runs, seconds = [], {}, {}
    seeds = list(seeds)
    for n in n_values:
        store: dict[int, Any] = {}
        start = time.perf_counter()
        df = seed_stability(lambda s, n=n: explain_fn(n, s), seeds, maps=maps, frac=frac,
                            explanations=store)
        seconds[n] = (time.perf_counter() - start) / len(seeds)
        runs[n] = store
        frames.append(df.assign(N=n))
    return pd.concat(frames, ignore_index=True), runs, pd.Series(seconds, name="seconds")
