"""CorrRISE: correlation-based randomized input sampling (Lu, Xu & Ebrahimi, 2023/2024).

For N random patch masks M_k (see :class:`~xfr_lib.explainers.PatchMasks`), the pair's
score is measured with one image masked at a time,

    s_A[k] = cos(f(A * M_k), f(B)),    s_B[k] = cos(f(B * M_k), f(A)),

and each pixel's map value is the Pearson correlation, over the N masks, between the score
and that pixel's mask value: the signed map. Positive correlation (showing the pixel raises the
score) is the similarity map; the magnitude of negative correlation is the dissimilarity map.

Two readings the papers leave open are parameters (ALGORITHMS.md): ``correlation="spearman"``
(a public re-implementation reports that the original code correlates ranked scores) and
``placement="inside"`` (patches wholly inside the chip instead of clipped by its border).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._convergence import (
    CONVERGENCE_DEFAULTS,
    SplitHalf,
    check_convergence,
    split_half_estimate,
)
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._masks import (
    PLACEMENTS,
    PatchMasks,
    check_fill,
    default_patch_size,
    fill_image,
    masked_scores,
)

#: How the score is correlated with the masks: the papers' Pearson, or Spearman's ranks.
CORRELATIONS = ("pearson", "spearman")

# Variances at or below these are "constant": a pixel no mask ever changed, or a score that
# float32 rounding alone moves (|ds| ~ 1e-7). Their correlation is set to 0.
_MASK_VAR_EPS = 1e-12
_SCORE_VAR_EPS = 1e-12


def pearson_map(scores: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-pixel Pearson correlation between scores and masks, as one matrix product.

    Args:
        scores: ``[N]`` or ``[R, N]`` scores.
        masks: ``[N, H, W]`` masks.

    Returns:
        ``[H, W]`` (or ``[R, H, W]``) float64 correlations; pixels whose mask value never
        varies, and score series that never vary, get 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    squeeze = s.ndim == 1
    s = np.atleast_2d(s)
    m = np.asarray(masks, dtype=np.float64)
    n, h, w = m.shape
    m = m.reshape(n, h * w)
    mc = m - m.mean(0)
    sc = s - s.mean(1, keepdims=True)
    m_norm = np.sqrt((mc**2).sum(0))
    s_norm = np.sqrt((sc**2).sum(1))
    m_ok = m_norm**2 / n > _MASK_VAR_EPS
    s_ok = ~(s_norm**2 / n <= _SCORE_VAR_EPS)  # NaN scores stay NaN: an error, not a zero
    mc = mc / np.where(m_ok, m_norm, 1.0)
    sc = sc / np.where(s_ok, s_norm, 1.0)[:, None]
    r = (sc @ mc) * m_ok[None] * s_ok[:, None]
    r = np.clip(r, -1.0, 1.0).reshape(-1, h, w)
    return r[0] if squeeze else r


class PearsonAccumulator:
    """Streaming form of :func:`pearson_map`: add masks and scores batch by batch.

    Keeps float64 running sums per pixel and per reference, so memory is O(R * H * W)
    whatever N is, and the result is the same centred, normalised product as
    :func:`pearson_map`. Per batch the work is one float32 ``[R, b] @ [b, H*W]`` product
    (float64 is 2-3x slower on CPU here). To keep float32 exact enough, the sums are of
    shifted quantities, which leaves correlations unchanged: the hidden amount ``1 - M``
    (mostly 0) instead of ``M``, and scores minus the first batch's mean score (so the
    covariance is not a small difference of two large numbers). Agreement with the float64
    :func:`pearson_map` is ~1e-6.
    """

    def __init__(self, n_refs: int, height: int, width: int) -> None:
        self.shape = (height, width)
        hw = height * width
        self.n = 0
        self.shift: torch.Tensor | None = None
        self.sum_h = torch.zeros(hw, dtype=torch.float64)
        self.sum_h2 = torch.zeros(hw, dtype=torch.float64)
        self.sum_s = torch.zeros(n_refs, dtype=torch.float64)
        self.sum_s2 = torch.zeros(n_refs, dtype=torch.float64)
        self.sum_sh = torch.zeros(n_refs, hw, dtype=torch.float64)

    def update(self, scores: torch.Tensor, masks: torch.Tensor,
               even: PearsonAccumulator | None = None, first: int = 0) -> None:
        """Add ``scores`` ``[R, b]`` and the masks ``[b, H, W]`` that produced them; with
        ``even``, also add the batch's rows ``first, first + 2, ...`` to it (with this
        accumulator's shift, so that :meth:`minus` gives the other rows'), reusing the work."""
        hidden = 1.0 - masks.reshape(len(masks), -1).to(device="cpu", dtype=torch.float32)
        s = scores.to(device="cpu", dtype=torch.float64)
        if self.shift is None:
            self.shift = s.mean(1, keepdim=True)
        s = s - self.shift
        self._add(s, hidden)
        if even is not None:
            even.shift = self.shift
            even._add(s[:, first::2], hidden[first::2])

    def _add(self, s: torch.Tensor, hidden: torch.Tensor) -> None:
        self.n += len(hidden)
        self.sum_h += hidden.sum(0).double()
        self.sum_h2 += (hidden * hidden).sum(0).double()
        self.sum_s += s.sum(1)
        self.sum_s2 += (s * s).sum(1)
        self.sum_sh += (s.float() @ hidden).double()

    def minus(self, part: PearsonAccumulator) -> PearsonAccumulator:
        """The accumulator of the masks added here but not to ``part`` (a subset of them,
        added with the same ``shift``): the split-half rule keeps one half, not both."""
        rest = PearsonAccumulator(0, *self.shape)
        rest.n, rest.shift = self.n - part.n, self.shift
        for key in ("sum_h", "sum_h2", "sum_s", "sum_s2", "sum_sh"):
            setattr(rest, key, getattr(self, key) - getattr(part, key))
        return rest

    def result(self) -> np.ndarray:
        """``[R, H, W]`` float64 correlations (0 where mask or score variance is ~0)."""
        n = self.n
        mean_h, mean_s = self.sum_h / n, self.sum_s / n
        var_h = (self.sum_h2 / n - mean_h**2).clamp_min(0)
        var_s = (self.sum_s2 / n - mean_s**2).clamp_min(0)
        cov = self.sum_sh / n - mean_s[:, None] * mean_h[None]
        # NaN scores stay NaN (the explainer reports them), they are not a constant series.
        h_ok, s_ok = var_h > _MASK_VAR_EPS, ~(var_s <= _SCORE_VAR_EPS)
        denom = torch.sqrt(var_s[:, None] * var_h[None])
        # corr(s, M) = -corr(s, 1 - M)
        r = torch.where(s_ok[:, None] & h_ok[None], -cov / denom.clamp_min(1e-300), 0.0)
        return r.clamp(-1, 1).reshape(-1, *self.shape).numpy()


def spearman_map(scores: np.ndarray | torch.Tensor,
                 masks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-pixel Spearman rank correlation between scores and masks.

    The Pearson correlation (:func:`pearson_map`) of the ranks: the scores ranked over the N
    masks, and each pixel's mask values ranked over the N masks, ties (e.g. the many masks
    that leave a pixel at 1) sharing their average rank. Holds all masks at once: about
    ``12 * N * H * W`` bytes (270 MB for N = 500 on 150 px chips).

    Args:
        scores: ``[N]`` or ``[R, N]`` scores.
        masks: ``[N, H, W]`` masks.

    Example:
        >>> masks = np.random.default_rng(0).random((30, 2, 2))
        >>> scores = np.exp(5 * masks[:, 0, 0])  # monotone in pixel (0, 0) alone
        >>> round(float(spearman_map(scores, masks)[0, 0]), 6)
        1.0
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(masks, dtype=np.float32)
    ranked_masks = rankdata(m.reshape(len(m), -1), axis=0).astype(np.float32)
    return pearson_map(rankdata(s, axis=-1), ranked_masks.reshape(m.shape))


def gaussian_regularize(
    correlation: np.ndarray, n: int, sigma: float, z: float
) -> np.ndarray:
    """xfr's "Gaussian regularisation" of a signed correlation map.

    Two steps, both resting on Gaussian models of the map's noise:

    1. Gaussian smoothing with ``sigma`` px. A patch mask cannot localise anything finer than
       a fraction of its side, so detail below that scale is sampling noise and the square
       patches' edge artefacts; smoothing at ``patch_size / 4`` removes them and keeps the
       structure the masks can resolve.
    2. Shrinkage towards 0 by the correlation's standard error. With no real effect, Fisher's
       ``atanh(r)`` is approximately Gaussian with standard deviation ``1 / sqrt(n - 3)``;
       each value is soft-thresholded by ``z`` such standard errors on that scale, so
       correlations the N masks cannot tell from 0 vanish and the rest shrink by the noise
       level. (Smoothing lowers the noise further, so this threshold is conservative.)

    Why: on a matching pair hardly any region lowers the score, and the negative correlations
    are mostly sampling noise that plots as confident-looking blobs. The journal version of
    CorrRISE reports that a "Gaussian regularisation" improves dissimilarity maps; its
    definition is not given in the material available to us (a summary of the journal paper),
    so this is xfr's definition. It acts on the whole signed map, so the similarity maps are
    smoothed and shrunk too; being strong on matching pairs, they change little.

    Args:
        correlation: ``[H, W]`` signed correlations.
        n: number of masks behind them.
        sigma: smoothing radius in px (0: no smoothing).
        z: threshold in standard errors (0: no shrinkage).
    """
    from scipy.ndimage import gaussian_filter

    r = np.asarray(correlation, dtype=np.float64)
    if sigma > 0:
        r = gaussian_filter(r, sigma, mode="nearest")
    if z > 0:
        fz = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
        fz = np.sign(fz) * np.maximum(np.abs(fz) - z / math.sqrt(n - 3), 0.0)
        r = np.tanh(fz)
    return r


@METHODS.register("corrrise")
class CorrRISE(Explainer):
    """CorrRISE (Lu, Xu & Ebrahimi, "Towards visual saliency explanations of face
    verification", WACV-W 2024; journal version arXiv:2407.05983).

    Model-agnostic: calls only ``model.embed``. A and B are masked separately with the same N
    masks (never together). Scores of each batch of masked chips are folded into a streaming
    Pearson correlation (:class:`PearsonAccumulator`), so masks are built per batch and never
    all held at once, and the extra cost over the 2N forward passes is small.

    Parameters (``explain("corrrise", model, a, b, **params)``):
        n (500): number of masks N.
        n_patches (10): square patches per mask.
        patch_size (None): patch side in px; None = 30 px scaled from 112 px to the model's
            input (40 px for the 150 px dlib chips). Recorded as the resolved value.
        low (0.0), high (1.0): range of the patches' uniform random values.
        seed (0): seed of the masks (and of the noise fill).
        fill ("zero"): what a hidden pixel shows. The paper says the masks multiply the
            input image, which is "zero" (black) on [0, 1] pixels; RISE's reference code
            multiplies the normalised tensor, which shows mid-grey instead: "grey" (0.5).
            Also "mean", "blur" (Gaussian, patch_size / 4 px), "noise" or a grey level in
            [0, 1]. Black masks cannot see a black occluder (hiding black with black changes
            nothing); other fills can.
        regularize (None): None (the paper's conference algorithm) or "gaussian": the signed
            map is :func:`gaussian_regularize` of the correlation (xfr's definition; the
            journal's is not given in the material available to us).
        sigma (None): smoothing of "gaussian" in px; None = patch_size / 4.
        z (2.0): shrinkage of "gaussian", in standard errors of the correlation.
        correlation ("pearson"): "pearson" (the papers' words) or "spearman": the rank
            correlation of :func:`spearman_map` (what a public re-implementation reports the
            original code computes). Spearman holds all N masks in memory at once.
        placement ("clipped"): "clipped" (patches may cross the chip's border: every pixel
            equally often covered) or "inside" (whole patches only); see
            :class:`~xfr_lib.explainers.PatchMasks`.
        converge (None): None (the papers' fixed N) or a target in (0, 1): stop drawing masks
            once the estimated correlation of the signed map with the infinite-N map reaches
            it; ``n`` is then the maximum (e.g. ``n=4000, converge=0.95``). The estimate is
            split-half reliability (``xfr_lib.explainers._convergence``): the maps of the even-
            and odd-numbered masks, no extra forward pass. Each image of a pair stops on its
            own. The masks are then drawn ``nested`` (mask k does not depend on n): other
            masks than a fixed-N run's of the same seed, and a stopped run's are exactly the
            first ``n_used`` of any longer run. Pearson correlation only. The estimate is of
            a Pearson correlation over pixels, and on ORL pairs it is fair (its prediction of
            the correlation with an N=4000 map is off by < 0.01; bench/bench_convergence.py).
            A Spearman correlation over pixels is lower at every N (near-zero pixels' ranks
            stay noisy): Spearman 0.95 with an N=4000 map for 90 % of maps takes
            ``converge=0.995`` (~3900 masks on average; a fixed N needs ~3200).
        check_every (64): masks between two checks (an even number); checks fall at these
            mask counts whatever ``batch_size`` is, so the stop does not depend on it.
        min_n (256): no stop before this many masks (few masks give a noisy estimate).
        batch_size (32): masked chips per forward pass.
        progress (False): show a tqdm progress bar.

    ``extras`` of a verification result: ``correlation_a``/``_b`` (the plain correlation,
    also when regularised) and ``scores_a``/``_b`` (the masked scores); with ``converge``,
    also ``n_used_a``/``_b`` (masks run per image) and ``convergence_a``/``_b`` (the final
    estimate).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> maps = CorrRISE(model, n=16, seed=0).signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, float(abs(maps.signed).max()) <= 1.0
        ((1, 112, 112), True)
    """

    summary = "Pearson correlation between random patch masks and the pair's score"
    defaults: ClassVar[dict[str, Any]] = {
        "n": 500,
        "n_patches": 10,
        "patch_size": None,
        "low": 0.0,
        "high": 1.0,
        "seed": 0,
        "fill": "zero",
        "regularize": None,
        "sigma": None,
        "z": 2.0,
        "correlation": "pearson",
        "placement": "clipped",
        **CONVERGENCE_DEFAULTS,
        "batch_size": 32,
        "progress": False,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        h, w = self.input_size
        if params["patch_size"] is None:
            params["patch_size"] = default_patch_size(h, w)
        if params["sigma"] is None:
            params["sigma"] = params["patch_size"] / 4.0
        check_int(params, "n", 4, "at least 4 masks (Pearson correlation and its standard error)")
        check_int(params, "n_patches", 0, "0 or more patches")
        check_int(params, "patch_size", 1, "a positive side in px")
        check_int(params, "batch_size", 1, "a positive batch size")
        check_int(params, "seed", 0, "a non-negative integer seed")
        params["fill"] = check_fill(params["fill"])
        if params["regularize"] not in (None, "gaussian"):
            raise XfrError(f"regularize={params['regularize']!r}: use None or 'gaussian'")
        if params["correlation"] not in CORRELATIONS:
            raise XfrError(f"correlation={params['correlation']!r} is unknown; use one of "
                           f"{', '.join(CORRELATIONS)}")
        if params["placement"] not in PLACEMENTS:
            raise XfrError(f"placement={params['placement']!r} is unknown; use one of "
                           f"{', '.join(PLACEMENTS)}")
        for key in ("sigma", "z", "low", "high"):
            check_number(params, key, 0.0, math.inf, "a non-negative number")
        check_convergence(params)
        if params["converge"] is not None and params["correlation"] != "pearson":
            raise XfrError("converge works with correlation='pearson' only (a Spearman map "
                           "holds all masks; re-ranking them at every check would cost more)")
        params["progress"] = bool(params["progress"])
        # PatchMasks checks low/high; build one now so bad values fail before any work.
        self._masks(params)
        return params

    def _masks(self, params: dict[str, Any]) -> PatchMasks:
        h, w = self.input_size
        return PatchMasks(
            n=params["n"], height=h, width=w, n_patches=params["n_patches"],
            patch_size=params["patch_size"], low=params["low"], high=params["high"],
            seed=params["seed"], placement=params["placement"],
            nested=params["converge"] is not None,
        )

    def _signed(self, corr: np.ndarray, n: int) -> np.ndarray:
        """The signed maps returned for correlations ``[R, H, W]`` from ``n`` masks."""
        p = self.params
        if p["regularize"] != "gaussian":
            return corr
        return np.stack([gaussian_regularize(c, n, p["sigma"], p["z"]) for c in corr])

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        p = self.params
        masks = self._masks(p)
        fill = fill_image(image, p["fill"], seed=p["seed"], sigma=p["patch_size"] / 4.0)
        acc = PearsonAccumulator(len(references), *self.input_size)
        spearman = p["correlation"] == "spearman"
        stop = None if p["converge"] is None else SplitHalf(p)
        # The even-numbered masks' sums, for the stopping rule only: the odd ones' are acc's
        # minus these, and acc's are the plain run's own (the same operations), so a stopped
        # run's map is exactly a plain run's on the same masks.
        even = None if stop is None else PearsonAccumulator(len(references), *self.input_size)
        scores, kept, n_seen, estimate = [], [], 0, None
        for m, s in masked_scores(
            self.model, image, references, masks, batch_size=p["batch_size"], fill=fill,
            progress=p["progress"], desc=self.name,
            split_every=None if stop is None else p["check_every"],
        ):
            if spearman:
                kept.append(m)
            else:  # n_seen % 2: the batch's first even-numbered mask
                acc.update(s, m, even, n_seen % 2)
            scores.append(s)
            n_seen += len(m)
            if stop is not None and stop.is_checkpoint(n_seen):
                halves = (even, acc.minus(even))
                estimate = split_half_estimate(*(self._signed(h.result(), h.n) for h in halves))
                if stop.done(estimate):
                    break
        all_scores = torch.cat(scores, dim=1).numpy()
        corr = spearman_map(all_scores, torch.cat(kept).numpy()) if spearman else acc.result()
        signed = self._signed(corr, n_seen)
        extras = [{"correlation": corr[r].astype(np.float32), "scores": all_scores[r]}
                  for r in range(len(references))]
        if stop is not None:
            for r, extra in enumerate(extras):
                extra |= {"n_used": n_seen, "convergence": float(estimate[r])}
        return SignedMaps(signed, extras)
