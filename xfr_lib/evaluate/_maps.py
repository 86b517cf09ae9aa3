"""Properties of single maps that make "broad", "noisy" and "explains the rejection" numbers.

Each is scale-free, so maps of methods with different units (a correlation, a gradient, a
score drop) compare directly:

* :func:`mass_area`: the share of the chip that holds a given share of a map's mass (small =
  concentrated, 0.5 for a flat map at ``share=0.5``);
* :func:`roughness`: mean absolute difference between neighbouring pixels over the mean
  value (0 for a flat map; large for speckle: the "noisy gradients" of gradient methods);
* :func:`dissimilarity_share`: the share of a pair's total map mass that is dissimilarity
  (how much of the explanation says "different").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def mass_area(saliency_map: np.ndarray, share: float = 0.5) -> float:
    """Smallest fraction of the pixels that holds ``share`` of a non-negative map's mass.

    NaN for an empty (all-zero) map.

    Example:
        >>> m = np.zeros((10, 10)); m[:2, :5] = 1.0   # all mass on 10 % of the chip
        >>> mass_area(m, 0.5)
        0.05
        >>> mass_area(np.ones((10, 10)), 0.5)
        0.5
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share} must be in (0, 1]")
    flat = np.sort(np.asarray(saliency_map, dtype=np.float64).ravel())[::-1]
    total = flat.sum()
    if not total > 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(flat), share * total * (1 - 1e-12))) + 1
    return min(k, flat.size) / flat.size


def roughness(saliency_map: np.ndarray) -> float:
    """Mean absolute difference between 4-neighbour pixels, over the map's mean value.

    Scale-free (a map times 10 is as rough); 0 for a constant map; NaN for an empty one. A
    smooth blob of radius r has roughness about ``1 / r``; independent speckle about 1 or more.

    Example:
        >>> roughness(np.ones((8, 8)))
        0.0
        >>> rng = np.random.default_rng(0)
        >>> roughness(rng.random((64, 64))) > 5 * roughness(np.outer(np.hanning(64), np.hanning(64)))
        True
    """
    m = np.asarray(saliency_map, dtype=np.float64)
    mean = m.mean()
    if not mean > 0:
        return float("nan")
    dy = np.abs(np.diff(m, axis=0)).mean()
    dx = np.abs(np.diff(m, axis=1)).mean()
    return float((dx + dy) / 2 / mean)


def dissimilarity_share(maps: Mapping[str, np.ndarray], side: str | None = None) -> float:
    """Share of the dissimilarity maps in the total mass of an explanation's maps.

    Args:
        maps: the four maps by name (``VerificationExplanation.maps``).
        side: ``"a"`` or ``"b"`` for one image's maps, None for both.

    Returns:
        ``sum(dissimilarity) / (sum(similarity) + sum(dissimilarity))``; NaN if all are 0.

    Example:
        >>> ones = np.ones((4, 4))
        >>> dissimilarity_share({"similarity_a": ones, "dissimilarity_a": 3 * ones,
        ...                      "similarity_b": ones, "dissimilarity_b": 0 * ones})
        0.6
    """
    sides = ("a", "b") if side is None else (side,)
    sim = sum(float(np.sum(maps[f"similarity_{s}"])) for s in sides)
    dis = sum(float(np.sum(maps[f"dissimilarity_{s}"])) for s in sides)
    return dis / (sim + dis) if sim + dis > 0 else float("nan")
