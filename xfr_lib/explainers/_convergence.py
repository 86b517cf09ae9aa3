"""Stopping rule of the mask-sampling explainers (CorrRISE, RISE): split-half reliability.

A map from N random masks is the converged (N -> infinity) map plus sampling noise. The
masks are independent, so the maps of the even- and odd-numbered masks are two independent
noisy copies of the same converged map, each from N/2 masks. Their Pearson correlation over
pixels ``r`` is the reliability of a half map; the Spearman-Brown formula ``2r / (1 + r)``
gives that of the full map (noise variance halves), and in the classical model (map = truth +
independent noise) the correlation of a map with its truth is the square root of its
reliability:

    estimate = sqrt(2r / (1 + r)),   the estimated correlation with the infinite-N map.

The halves are by-products of the same forward passes (only their sums are kept apart), so
the estimate costs no model call. At every ``check_every`` masks (from ``min_n`` on) the
explainer computes it and stops once it reaches ``converge``; ``n`` is then the maximum.
Checkpoints are mask counts, not batches (batches are cut there), so where a run stops does
not depend on ``batch_size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfr_lib.errors import XfrError

#: The parameters every stopping explainer accepts, with their defaults (``converge`` off).
CONVERGENCE_DEFAULTS: dict[str, Any] = {"converge": None, "check_every": 64, "min_n": 256}


def check_convergence(params: dict[str, Any]) -> None:
    """Validate ``converge``, ``check_every`` and ``min_n`` in ``params`` (in place)."""
    value = params["converge"]
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not 0.0 < float(value) < 1.0:
            raise XfrError(f"converge={value!r} is invalid; use None (fixed n) or a target "
                           "correlation with the infinite-N map in (0, 1), e.g. 0.95")
        params["converge"] = float(value)
    # Each half of min_n masks needs 4 of them (the regularisation's standard error).
    for key, minimum in (("check_every", 2), ("min_n", 8)):
        v = params[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise XfrError(f"{key}={v!r} is invalid; use an integer >= {minimum}")
        params[key] = int(v)
    if params["check_every"] % 2:
        raise XfrError(f"check_every={params['check_every']} is odd; use an even number of "
                       "masks (each check splits them into two equal halves)")
    if value is not None and params["n"] < params["min_n"]:
        raise XfrError(f"n={params['n']} is below min_n={params['min_n']}: with converge, n is "
                       "the maximum number of masks; raise n (e.g. 4000)")


def split_half_estimate(even: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """Estimated correlation with the infinite-N map of the map made from both halves.

    Args:
        even: ``[R, H, W]`` maps from the even-numbered masks.
        odd: ``[R, H, W]`` maps from the odd-numbered masks.

    Returns:
        ``[R]`` estimates in [0, 1] (0 where the halves do not correlate positively, or a
        half map is constant).

    Example:
        >>> truth = np.random.default_rng(0).normal(size=(1, 50, 50))
        >>> noise = np.random.default_rng(1).normal(size=(2, 1, 50, 50))
        >>> est = split_half_estimate(truth + noise[0], truth + noise[1])  # half r ~ 0.5
        >>> bool(0.75 < est[0] < 0.88)  # sqrt(2 * 0.5 / 1.5) = 0.82
        True
    """
    a = even.reshape(len(even), -1).astype(np.float64)
    b = odd.reshape(len(odd), -1).astype(np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    norm = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    r = np.where(norm > 0, (a * b).sum(1) / np.where(norm > 0, norm, 1.0), 0.0)
    r = np.clip(r, 0.0, 1.0)
    return np.sqrt(2 * r / (1 + r))


class SplitHalf:
    """When a stopping explainer checks and stops: checks every ``check_every`` masks from
    ``min_n`` on, and at ``n`` (the last, so a finished run always has an estimate); it stops
    once every reference's estimate is at ``converge`` or above."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.n, self.target = params["n"], params["converge"]
        self.every, self.min_n = params["check_every"], params["min_n"]

    def is_checkpoint(self, n_seen: int) -> bool:
        return n_seen >= self.min_n and (n_seen % self.every == 0 or n_seen == self.n)

    def done(self, estimate: np.ndarray) -> bool:
        return bool(np.all(estimate >= self.target))
