"""RISE (Petsiuk, Das & Saenko, BMVC 2018) adapted to face verification.

The class score of RISE becomes the pair's score: for N random smooth masks M_k
(:class:`~xfr_lib.explainers.RiseMasks`, keep probability p),

    s_k = cos(f(A * M_k), f(B)),     S(i) = sum_k s_k M_k(i) / (N p),

i.e. Petsiuk's Monte-Carlo estimate of the expected score when pixel i is visible. The plain
adaptation, the one the CorrRISE papers compare against, takes S itself as the signed map: its
positive part is the similarity map, and it has a dissimilarity map only where the expected
score is negative (an impostor pair with a negative cosine).

S mixes two things: how the score depends on pixel i, and how often the masks happened to
show pixel i (``mean(s) * sum_k M_k(i) / (N p)``, a different number for each pixel by
chance). When the scores vary little around a high mean (a cosine near 1), that mask-density
term dominates at N = 500. With ``debias=True`` the signed map is the deviation from it,

    S(i) - mean(s) * sum_k M_k(i) / (N p)  =  N cov(s, M(i)) / (N p),

positive where showing pixel i raises the expected score (similarity) and negative where it
lowers it (dissimilarity): a covariance, i.e. CorrRISE without the variance normalisation and
with RISE's masks. That is xfr's definition; RISE has no dissimilarity map of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._convergence import (
    CONVERGENCE_DEFAULTS,
    SplitHalf,
    check_convergence,
    split_half_estimate,
)
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._masks import RiseMasks, check_fill, fill_image, masked_scores


@METHODS.register("rise")
class RISE(Explainer):
    """RISE adapted to verification (Petsiuk et al., "RISE: Randomized input sampling for
    explanation of black-box models", BMVC 2018); see the module docstring for the maps.

    Parameters (``explain("rise", model, a, b, **params)``):
        n (500): number of masks.
        s (8): grid cells per side of the coarse random grids.
        p (0.5): probability that a grid cell is kept.
        seed (0): seed of the masks.
        fill ("zero"): what a hidden pixel shows ("zero" = multiplicative masking, as in
            RISE; "mean", "blur", "noise" or a grey level; see ``masks.fill_image``).
        debias (False): the signed map is the deviation from each pixel's mask-density
            baseline instead of the plain RISE saliency (see the module doc).
        converge (None): None (Petsiuk's fixed N) or a target in (0, 1): stop drawing masks
            once the estimated correlation of the signed map with the infinite-N map reaches
            it; ``n`` is then the maximum. Split-half reliability of the even- and
            odd-numbered masks' maps (``xfr_lib.explainers._convergence``), no extra forward
            pass; each image of a pair stops on its own. The masks are then drawn ``nested``
            (mask k does not depend on n): other masks than a fixed-N run's of the same seed.
        check_every (64): masks between two checks (an even number), at mask counts that do
            not depend on ``batch_size``.
        min_n (256): no stop before this many masks.
        batch_size (32): masked chips per forward pass.
        progress (False): show a tqdm progress bar.

    ``extras``: ``saliency_a``/``_b`` (the plain S) and ``scores_a``/``_b``; with
    ``converge``, also ``n_used_a``/``_b`` and ``convergence_a``/``_b`` (the final estimate).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> maps = RISE(model, n=16, seed=0).signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape
        (1, 112, 112)
    """

    summary = "score-weighted mean of random smooth masks (Petsiuk et al. 2018)"
    defaults: ClassVar[dict[str, Any]] = {
        "n": 500,
        "s": 8,
        "p": 0.5,
        "seed": 0,
        "fill": "zero",
        "debias": False,
        **CONVERGENCE_DEFAULTS,
        "batch_size": 32,
        "progress": False,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        check_int(params, "n", 1, "a positive number of masks")
        check_int(params, "s", 1, "a positive number of grid cells")
        check_int(params, "batch_size", 1, "a positive batch size")
        check_int(params, "seed", 0, "a non-negative integer seed")
        check_number(params, "p", 0.0, 1.0, "a keep probability in (0, 1]", open_low=True)
        params["fill"] = check_fill(params["fill"])
        params["debias"] = bool(params["debias"])
        check_convergence(params)
        params["progress"] = bool(params["progress"])
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        prm = self.params
        h, w = self.input_size
        stop = None if prm["converge"] is None else SplitHalf(prm)
        masks = RiseMasks(n=prm["n"], height=h, width=w, s=prm["s"], p=prm["p"], seed=prm["seed"],
                          nested=stop is not None)
        fill = fill_image(image, prm["fill"], seed=prm["seed"], sigma=min(h, w) / prm["s"] / 2)
        sum_sm = torch.zeros(len(references), h * w, dtype=torch.float64)
        sum_m = torch.zeros(h * w, dtype=torch.float64)
        # The even-numbered masks' [sum_sm, sum_m, sum_s, n], for the stopping rule only; the
        # odd ones' are the totals minus these.
        even: list = [0.0, 0.0, 0.0, 0]
        scores, n_seen, estimate = [], 0, None
        for m, s in masked_scores(
            self.model, image, references, masks, batch_size=prm["batch_size"], fill=fill,
            progress=prm["progress"], desc=self.name,
            split_every=None if stop is None else prm["check_every"],
        ):
            m = m.reshape(len(m), -1).double()
            sum_sm += s @ m
            sum_m += m.sum(0)
            scores.append(s)
            if stop is not None:
                hs, hm = s[:, n_seen % 2 :: 2], m[n_seen % 2 :: 2]  # the even-numbered masks
                even = [even[0] + hs @ hm, even[1] + hm.sum(0),
                        even[2] + hs.sum(1, keepdim=True), even[3] + len(hm)]
            n_seen += len(m)
            if stop is not None and stop.is_checkpoint(n_seen):
                sum_s = torch.cat(scores, dim=1).sum(1, keepdim=True)
                odd = [sum_sm - even[0], sum_m - even[1], sum_s - even[2], n_seen - even[3]]
                estimate = split_half_estimate(*(
                    self._signed(sm, m_, ss / n, n).numpy() for sm, m_, ss, n in (even, odd)))
                if stop.done(estimate):
                    break
        all_scores = torch.cat(scores, dim=1)
        saliency = sum_sm / (n_seen * prm["p"])
        signed = self._signed(sum_sm, sum_m, all_scores.mean(1, keepdim=True), n_seen)
        extras = [{"saliency": saliency[r].reshape(h, w).numpy().astype(np.float32),
                   "scores": all_scores[r].numpy()} for r in range(len(references))]
        if stop is not None:
            for r, extra in enumerate(extras):
                extra |= {"n_used": n_seen, "convergence": float(estimate[r])}
        return SignedMaps(signed.reshape(len(references), h, w).numpy(), extras)

    def _signed(self, sum_sm: torch.Tensor, sum_m: torch.Tensor, mean_s: torch.Tensor,
                n: int) -> torch.Tensor:
        """Signed maps ``[R, H*W]`` from the sums over ``n`` masks and the mean scores."""
        norm = n * self.params["p"]
        saliency = sum_sm / norm
        return saliency - mean_s * sum_m[None] / norm if self.params["debias"] else saliency
