"""Bootstrap intervals over pairs: how much a mean over a few dozen pairs can be trusted.

A Deletion area over 20 pairs is the mean of 20 per-pair areas (the trapezoid rule is linear),
so its uncertainty is that of a mean over pairs: :func:`bootstrap_interval` resamples the pairs
with replacement (percentile interval, seeded). With every value equal, the interval is that
value; with one value, there is nothing to resample and the interval is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xfr_lib.errors import XfrError

#: Resamples drawn by default.
N_BOOTSTRAP = 2000
#: Default coverage of the interval.
LEVEL = 0.95


def bootstrap_interval(values: Sequence[float], *, n_boot: int = N_BOOTSTRAP,
                       level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` of the mean of ``values``.

    Args:
        values: one number per pair (NaNs are dropped).
        n_boot: resamples.
        level: coverage, e.g. 0.95.
        seed: seed of the resampling.
    """
    if not 0 < level < 1:
        raise XfrError(f"level={level}: an interval's coverage is between 0 and 1, e.g. 0.95")
    if int(n_boot) < 1:
        raise XfrError(f"n_boot={n_boot}: draw at least one resample (e.g. {N_BOOTSTRAP})")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(int(n_boot), len(v)))
    means = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(min(low, v.mean())), float(max(high, v.mean()))
