"""A saliency map against a region whose pixels are known to matter (e.g. a synthetic occluder).

Two scores besides the share of the map's mass in the region
(:func:`xfr_lib.faces.mass_ratio_to_chance`):

* :func:`pointing_game` (Zhang et al. 2016, "Top-down neural attention by excitation
  backprop"): does the map's single strongest pixel fall inside the region (optionally
  dilated by a tolerance)? A hit or a miss per map; over many maps, a hit rate. It only looks
  at the peak, so a map that is right at its maximum and wrong everywhere else still hits.
* :func:`detector_auroc`: the map's values used as a per-pixel detector of the region, scored
  by the area under the ROC curve: the probability that a random pixel of the region has a
  higher value than a random pixel outside it (ties count half). 1 = every region pixel above
  every other pixel, 0.5 = no better than chance (a constant map scores exactly 0.5), 0 = the
  map ranks the region below everything else. It uses the whole ranking, not the peak, and
  does not depend on how the values are scaled.

Example:
    >>> import numpy as np
    >>> region = np.zeros((8, 8), bool); region[2:4, 2:4] = True
    >>> saliency = region.astype(float)
    >>> pointing_game(saliency, region), detector_auroc(saliency, region)
    (True, 1.0)
    >>> pointing_game(np.zeros((8, 8)), region) is None, detector_auroc(np.ones((8, 8)), region)
    (True, 0.5)
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.stats import rankdata

from xfr_lib.errors import XfrError


def _check(saliency: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(saliency, dtype=np.float64)
    r = np.asarray(region)
    if r.dtype != bool:
        if not np.isin(r, (0, 1)).all():
            raise XfrError("the region must be a boolean HxW mask (or 0/1 values)")
        r = r.astype(bool)
    if s.ndim != 2 or s.shape != r.shape:
        raise XfrError(f"saliency map {list(s.shape)} and region {list(r.shape)} must be the "
                       f"same HxW shape (maps at chip resolution)")
    if not np.isfinite(s).all():
        raise XfrError("the saliency map contains NaN or inf")
    return s, r


def pointing_game(saliency: np.ndarray, region: np.ndarray, tolerance: float = 0) -> bool | None:
    """Whether the map's maximum lies inside ``region`` dilated by ``tolerance`` pixels.

    Args:
        saliency: ``[H, W]`` map (e.g. a dissimilarity map).
        region: ``[H, W]`` boolean ground truth (e.g. the occluder's pixels).
        tolerance: grow the region by every pixel within this Euclidean distance (px) of it
            before the test (Zhang et al. use 15 px on ImageNet-sized images); 0: the region
            itself.

    Returns:
        True (a hit) or False (a miss); None when the map is all zero, or constant: it points
        nowhere. When several pixels share the maximum (a plateau, as coarse maps have), the
        hit counts when at least half of them lie in the (dilated) region.

    Raises:
        XfrError: shapes differ, the map is not finite, the region is empty or the tolerance
            negative.
    """
    s, r = _check(saliency, region)
    if not r.any():
        raise XfrError("the region is empty (no pixel is True); the pointing game needs a "
                       "target")
    if not tolerance >= 0:
        raise XfrError(f"tolerance={tolerance!r} must be a distance in pixels >= 0")
    peak = s.max()
    if peak == s.min():
        return None
    if tolerance > 0:
        r = distance_transform_edt(~r) <= float(tolerance)
    at_peak = s == peak
    return bool(2 * int((at_peak & r).sum()) >= int(at_peak.sum()))


def detector_auroc(saliency: np.ndarray, region: np.ndarray) -> float:
    """AUROC of the map's values as a detector of the region's pixels (ties count half).

    Computed from ranks (the Mann-Whitney U statistic over the pixels): the probability that a
    pixel drawn from the region has a higher value than one drawn from outside it, plus half
    the probability of a tie. Equal to ``sklearn.metrics.roc_auc_score(region.ravel(),
    saliency.ravel())``.

    Args:
        saliency: ``[H, W]`` map.
        region: ``[H, W]`` boolean ground truth.

    Returns:
        The AUROC in [0, 1]: 1 = the map ranks every region pixel above every other pixel, 0.5
        = chance (a constant map, an all-zero one included), 0 = the region ranks lowest. NaN
        when the region is empty or covers the whole chip (no pixels of one class).

    Raises:
        XfrError: shapes differ or the map is not finite.
    """
    s, r = _check(saliency, region)
    n_pos = int(r.sum())
    n_neg = r.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s.ravel())  # average ranks: a tie counts half
    u = ranks[r.ravel()].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
