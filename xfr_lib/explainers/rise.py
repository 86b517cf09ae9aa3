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
        batch_size (32): masked chips per forward pass.
        progress (False): show a tqdm progress bar.

    ``extras``: ``saliency_a``/``_b`` (the plain S) and ``scores_a``/``_b``.

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
        params["progress"] = bool(params["progress"])
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        prm = self.params
        h, w = self.input_size
        masks = RiseMasks(n=prm["n"], height=h, width=w, s=prm["s"], p=prm["p"], seed=prm["seed"])
        fill = fill_image(image, prm["fill"], seed=prm["seed"], sigma=min(h, w) / prm["s"] / 2)
        sum_sm = torch.zeros(len(references), h * w, dtype=torch.float64)
        sum_m = torch.zeros(h * w, dtype=torch.float64)
        scores = []
        for m, s in masked_scores(
            self.model, image, references, masks, batch_size=prm["batch_size"], fill=fill,
            progress=prm["progress"], desc=self.name,
        ):
            m = m.reshape(len(m), -1).double()
            sum_sm += s @ m
            sum_m += m.sum(0)
            scores.append(s)
        all_scores = torch.cat(scores, dim=1)
        norm = prm["n"] * prm["p"]
        saliency = sum_sm / norm
        signed = saliency - all_scores.mean(1, keepdim=True) * sum_m[None] / norm \
            if prm["debias"] else saliency
        extras = [{"saliency": saliency[r].reshape(h, w).numpy().astype(np.float32),
                   "scores": all_scores[r].numpy()} for r in range(len(references))]
        return SignedMaps(signed.reshape(len(references), h, w).numpy(), extras)
