"""What replaces the removed pixels of a chip in Deletion/Insertion: constant fills, a blur, ROAD.

Deletion and insertion (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation
of Black-box Models") rank a chip's pixels by a saliency map and remove the top p (deletion)
or all but the top p (insertion). :func:`fill_removed` builds the modified chips; every pixel
not removed is the chip's own. The fills (:data:`EVALUATION_FILLS`):

* ``"zero"``: 0 (black); ``"grey"``: 128; ``"mean"``: the chip's per-channel mean colour
  (over the whole unmodified chip, rounded).
* ``"blur"``: the same pixel of the chip blurred by a Gaussian (:func:`cv2.GaussianBlur`,
  default sigma :func:`blur_sigma_for`), RISE's canvas for insertion.
* ``"road"``: noisy linear imputation, from ROAD (Rong et al. 2022, "A Consistent and
  Efficient Evaluation Strategy for Attribution Methods", ICML). A constant fill leaves a hole
  with sharp edges: the model can read the shape of the hole, which carries the saliency
  map's own information, and the curve then measures the mask as much as the pixels under it.
  ROAD fills each removed pixel with the weighted mean of its 8 neighbours (weight 1/6 for
  the 4 edge neighbours, 1/12 for the 4 diagonal ones; at the image border only the
  neighbours that exist, renormalised), solved jointly for all removed pixels per channel
  with the kept pixels as fixed boundary values; then Gaussian noise of std ``noise``
  (default :data:`ROAD_NOISE`) is added to the removed pixels only. The result is smooth
  across the hole's edge, so its shape is much harder to see. When every pixel is removed
  there are no boundary values: the fill falls back to the chip's mean colour plus noise.

The ROAD system (symmetric, positive definite when at least one pixel is kept) is solved on
the box around the holes by conjugate gradients preconditioned by a geometric multigrid
V-cycle on the pixel grid (float32, OpenCV filters for the stencil, the 3 channels together);
systems of at most 2500 unknowns, and the coarsest multigrid level, are solved directly
(SuperLU). It stops when the multigrid estimate of the remaining error is under 0.02 grey
levels on every pixel. A direct sparse solve of the whole system is faster only for small
systems: about 8 times slower with 90 % of a 150x150 chip removed (``bench/bench_fills.py``).

Example:
    >>> chip = np.full((8, 8, 3), 200, np.uint8)
    >>> removed = np.zeros((8, 8), bool); removed[2:5, 2:5] = True
    >>> out = fill_removed(chip, removed, "road", noise=0.0)
    >>> int(out[3, 3, 0]), int(fill_removed(chip, removed, "grey")[3, 3, 0])
    (200, 128)
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from xfr_lib.errors import UnknownNameError, XfrError

EVALUATION_FILLS = ("zero", "grey", "mean", "blur", "road")

#: Default std of ROAD's noise in 0-255 units. ROAD's ``NoisyLinearImputer`` adds noise of
#: std 0.01 in the units of the image it is given; its ``ImputedDataset`` imputes before the
#: transforms (normalisation), i.e. on images in [0, 1], so 0.01 * 255 = 2.55 here.
ROAD_NOISE = 0.01 * 255

#: RISE's blurred insertion canvas: a Gaussian of sigma 5 px on 224-pixel ImageNet images.
_RISE_SIGMA, _RISE_SIZE = 5.0, 224

# ROAD's weights: 1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal ones.
_OFFSETS = [((dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
            for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
_STENCIL = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], np.float32) / 12
# Cell-centred bilinear prolongation = nearest-neighbour upsampling then this filter.
_HALF = np.array([0.25, 0.5, 0.25], np.float32)

_DIRECT_MAX = 400  # unknowns of the coarsest multigrid level (solved directly)
_DIRECT_TOP = 2500  # systems this small are solved directly (faster than multigrid)
_TOL = 0.02  # grey levels: far below the rounding to uint8
_MAX_ITER = 200


def check_evaluation_fill(fill: str) -> str:
    """``fill`` if it is one of :data:`EVALUATION_FILLS`, else a one-line :class:`XfrError`."""
    if not isinstance(fill, str) or fill not in EVALUATION_FILLS:
        raise UnknownNameError("evaluation fill", str(fill), EVALUATION_FILLS)
    return fill


def blur_sigma_for(height: int) -> float:
    """Default sigma (px) of the ``"blur"`` fill for a chip ``height`` pixels high.

    RISE's blurred insertion canvas (Petsiuk et al. 2018) uses sigma 5 on 224-pixel images;
    scaled to the chip: ``5 * height / 224`` (3.35 at 150 px, 2.5 at 112 px). RISE cuts its
    kernel to 11 x 11 (about one sigma either side, a milder blur); this fill uses OpenCV's
    full kernel for uint8 (about three sigma either side).
    """
    if height < 1:
        raise XfrError(f"height={height} must be a positive number of pixels")
    return _RISE_SIGMA * height / _RISE_SIZE


def fill_removed(chip: np.ndarray, removed: np.ndarray, fill: str, *, seed: int = 0,
                 noise: float = ROAD_NOISE, blur_sigma: float | None = None) -> np.ndarray:
    """The chip with its removed pixels replaced by ``fill``; kept pixels are untouched.

    Args:
        chip: ``HxWx3`` uint8, the aligned face.
        removed: bool ``HxW`` (one mask) or ``SxHxW`` (S masks); True = removed.
        fill: one of :data:`EVALUATION_FILLS` (see the module docstring).
        seed: seed of ``"road"``'s noise. One ``HxWx3`` field of standard normals is drawn
            from ``numpy.random.default_rng(seed)`` per call and each mask takes it at its
            removed pixels: a stack gives the same images as its masks one at a time with the
            same seed, and nested masks (the steps of one curve) share the noise on the
            pixels they both remove. Use another seed per image.
        noise: std of ``"road"``'s noise in 0-255 units (0 for plain linear imputation).
        blur_sigma: sigma of ``"blur"`` in pixels; default :func:`blur_sigma_for` (H).

    Returns:
        uint8 ``HxWx3`` for one mask, ``SxHxWx3`` for a stack.
    """
    fill = check_evaluation_fill(fill)
    chip = np.asarray(chip)
    if chip.ndim != 3 or chip.shape[2] != 3 or chip.dtype != np.uint8 or 0 in chip.shape:
        raise XfrError(f"chip must be an HxWx3 uint8 array (an aligned face), got shape "
                       f"{list(chip.shape)} dtype {chip.dtype}")
    h, w = chip.shape[:2]
    masks = np.asarray(removed)
    if masks.dtype != bool or masks.ndim not in (2, 3) or masks.shape[-2:] != (h, w):
        raise XfrError(f"removed must be a bool array HxW or SxHxW with HxW = {h}x{w} (the "
                       f"chip's), got shape {list(masks.shape)} dtype {masks.dtype}")
    if not (math.isfinite(noise) and noise >= 0):
        raise XfrError(f"noise={noise} must be a finite std >= 0 (0-255 units)")
    single = masks.ndim == 2
    stack = masks[None] if single else masks

    if fill == "road":
        # One noise field per call: the same pixel gets the same draw in every mask.
        field = (np.random.default_rng(seed).standard_normal((h, w, 3), np.float32)
                 * np.float32(noise) if noise > 0 else None)
        out = np.stack([_road(chip, m, field) for m in stack]) if len(stack) else \
            np.empty((0, h, w, 3), np.uint8)
    else:
        source = _source(chip, fill, blur_sigma)
        out = np.where(stack[..., None], source, chip)
    return out[0] if single else out


def _source(chip: np.ndarray, fill: str, blur_sigma: float | None) -> np.ndarray:
    """What a removed pixel becomes under a non-ROAD fill (broadcastable to HxWx3)."""
    if fill == "zero":
        return np.zeros(3, np.uint8)
    if fill == "grey":
        return np.full(3, 128, np.uint8)
    if fill == "mean":
        return np.round(chip.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    sigma = blur_sigma_for(chip.shape[0]) if blur_sigma is None else float(blur_sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise XfrError(f"blur_sigma={blur_sigma} must be a positive number of pixels")
    return cv2.GaussianBlur(chip, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _road(chip: np.ndarray, removed: np.ndarray, field: np.ndarray | None) -> np.ndarray:
    """ROAD's noisy linear imputation of one mask (``field``: the noise, or None)."""
    if not removed.any():
        return chip.copy()
    if removed.all():  # no boundary values: nothing to interpolate from
        values = np.empty(chip.shape, np.float32)
        values[:] = chip.reshape(-1, 3).mean(axis=0)
    else:
        # Only the box around the holes (plus a kept 1-pixel margin) enters the system; where
        # the box meets the image border the border weights are the image's, as they should.
        rows, cols = np.flatnonzero(removed.any(axis=1)), np.flatnonzero(removed.any(axis=0))
        y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, removed.shape[0])
        x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, removed.shape[1])
        values = np.zeros(chip.shape, np.float32)
        values[y0:y1, x0:x1] = _solve(chip[y0:y1, x0:x1], removed[y0:y1, x0:x1])
    if field is not None:
        values += field
    np.clip(values, 0, 255, out=values)
    np.rint(values, out=values)
    # Whole-array operations: boolean indexing of ~20 000 pixels costs more than the solve's steps.
    return np.where(removed[..., None], values.astype(np.uint8), chip)


def _neighbours(x: np.ndarray) -> np.ndarray:
    """Weighted sum of the 8 neighbours (zero outside the image)."""
    return cv2.filter2D(x, -1, _STENCIL, borderType=cv2.BORDER_CONSTANT)


class _Level:
    """One multigrid level: the unknowns (a mask) and the operator on the full grid."""

    def __init__(self, mask: np.ndarray):
        self.mask = mask
        self.shape = mask.shape
        # Full HxWx3 copies: numpy is much slower broadcasting an HxWx1 array over 3 channels.
        self.m = np.repeat(mask.astype(np.float32)[..., None], 3, axis=2)
        # Sum of the weights of the neighbours inside the image (1 away from the border).
        self.s = _neighbours(np.ones(mask.shape + (3,), np.float32))
        self.inv_s = 1.0 / self.s  # Jacobi smoother (damping 1: eigenvalues in (0, 4/3])
        self.lu = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The system matrix times x (x zero outside the mask), on the full grid."""
        y = self.s * x
        y -= _neighbours(x)
        y *= self.m
        return y

    def factorise(self) -> None:
        if self.mask.any():
            self.lu = splu(_stencil_matrix(self.mask))

    def direct(self, r: np.ndarray) -> np.ndarray:
        z = np.zeros_like(r)
        if self.lu is not None:
            z[self.mask] = self.lu.solve(r[self.mask].astype(np.float64))
        return z


def _stencil_matrix(mask: np.ndarray) -> sp.csc_matrix:
    """The sparse system matrix on the True pixels of ``mask`` (kept pixels eliminated)."""
    h, w = mask.shape
    n = int(mask.sum())
    index = np.full((h + 2, w + 2), -2, np.int64)  # -2: outside the image
    inner = np.full((h, w), -1, np.int64)  # -1: a known (kept) pixel
    inner[mask] = np.arange(n)
    index[1:-1, 1:-1] = inner
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    var = np.arange(n)
    for (dy, dx), weight in _OFFSETS:
        nb = index[1 + dy:1 + dy + h, 1 + dx:1 + dx + w][mask]
        diag += weight * (nb != -2)
        unknown = nb >= 0
        rows.append(var[unknown])
        cols.append(nb[unknown])
        vals.append(np.full(int(unknown.sum()), -weight))
    rows.append(var)
    cols.append(var)
    vals.append(diag)
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


def _hierarchy(removed: np.ndarray) -> list[_Level]:
    """Levels from the chip's grid down to one with at most ``_DIRECT_MAX`` unknowns.

    A coarse cell is an unknown only when all its fine cells are: the coarse domain never
    covers the whole grid unless the fine one does, so every level's matrix is non-singular.
    """
    levels = [_Level(removed)]
    mask = removed
    if mask.sum() <= _DIRECT_TOP:
        levels[0].factorise()
        return levels
    while mask.sum() > _DIRECT_MAX and min(mask.shape) >= 4:
        h, w = mask.shape
        padded = np.pad(mask, ((0, h % 2), (0, w % 2)), constant_values=True)
        mask = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).all(axis=(1, 3))
        levels.append(_Level(mask))
    levels[-1].factorise()
    return levels


def _prolong(fine: _Level, coarse_z: np.ndarray) -> np.ndarray:
    h, w = fine.shape
    up = cv2.resize(coarse_z, (2 * coarse_z.shape[1], 2 * coarse_z.shape[0]),
                    interpolation=cv2.INTER_NEAREST)[:h, :w]
    return fine.m * cv2.sepFilter2D(up, -1, _HALF, _HALF, borderType=cv2.BORDER_REPLICATE)


def _restrict(fine: _Level, coarse: _Level, r: np.ndarray) -> np.ndarray:
    """The transpose of :func:`_prolong` (keeps the preconditioner symmetric)."""
    h, w = fine.shape
    hc, wc = coarse.shape
    x = cv2.sepFilter2D(fine.m * r, -1, _HALF, _HALF, borderType=cv2.BORDER_REPLICATE)
    if (2 * hc, 2 * wc) != (h, w):
        x = np.pad(x, ((0, 2 * hc - h), (0, 2 * wc - w), (0, 0)))
    return 4 * cv2.resize(x, (wc, hc), interpolation=cv2.INTER_AREA)  # 2x2 block sums


def _vcycle(levels: list[_Level], k: int, r: np.ndarray) -> np.ndarray:
    """One symmetric V-cycle from level k (one Jacobi step before and after)."""
    level = levels[k]
    if k == len(levels) - 1:
        return level.direct(r)
    z = r * level.inv_s
    coarse = levels[k + 1]
    z += _prolong(level, _vcycle(levels, k + 1, _restrict(level, coarse, r - level.apply(z))))
    z += (r - level.apply(z)) * level.inv_s
    return z


def _solve(chip: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The linear imputation (float32 HxWx3; meaningful on the removed pixels)."""
    levels = _hierarchy(removed)
    top = levels[0]
    c = chip.astype(np.float32)
    keep = 1.0 - top.m
    b = top.m * _neighbours(c * keep)  # the kept neighbours' share, moved to the right side
    x = top.m * ((c * keep).sum(axis=(0, 1)) / keep.sum())  # start from the kept mean
    r = b - top.apply(x)
    z = _vcycle(levels, 0, r)
    p = z.copy()
    rz = float(np.vdot(r, z))
    # Conjugate gradients on the 3 channels at once (a block-diagonal system: one step size
    # for all three costs no more iterations here and keeps every operation on one array).
    for _ in range(_MAX_ITER):
        if np.abs(z).max() < _TOL:
            break
        ap = top.apply(p)
        pap = float(np.vdot(p, ap))
        if not pap > 0:
            break
        alpha = rz / pap
        x += alpha * p
        r -= alpha * ap
        z = _vcycle(levels, 0, r)
        rz_new = float(np.vdot(r, z))
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x
