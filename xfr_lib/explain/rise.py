"""RISE (Petsiuk, Das & Saenko, BMVC 2018) adapted to face verification.

The class score of RISE becomes the pair's score: for N random smooth masks M_k
(:class:`~xfr_lib.explain.masks.RiseMasks`, keep probability p),

    s_k = cos(f(A * M_k), f(B)),     S(i) = sum_k s_k M_k(i) / (N p),

i.e. Petsiuk's Monte-Carlo estimate of the expected score when pixel i is visible. The
similarity map is S itself (clipped at 0): the plain adaptation that the CorrRISE papers
compare against.

Dissimilarity (xfr's definition; RISE has none): the *negative deviation* of S from what it
would be if the score did not depend on pixel i, ``base(i) = mean(s) * sum_k M_k(i) / (N p)``:

    dissimilarity(i) = max(base(i) - S(i), 0) = max(-N cov(s, M(i)) / (N p), 0),

pixels whose visibility lowers the expected score. Weighting the masks by ``1 - s_k`` instead
would give ``sum_k M_k / (N p) - S``, which after normalisation is just the inverted
similarity map and says nothing new. With ``debias=True`` the similarity map is the positive
deviation ``max(S - base, 0)``, which removes RISE's mask-density noise (the term
``mean(s) * sum_k M_k(i) / (N p)``, different per pixel by chance); this is a covariance, i.e.
CorrRISE without the variance normalisation and with RISE's masks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explain.base import Explainer, SideMaps, register_explainer
from xfr_lib.explain.corrrise import _check_int
from xfr_lib.explain.masks import RiseMasks, check_fill, fill_image, masked_scores


@register_explainer
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
        debias (False): similarity map = positive deviation from the pixel's baseline
            instead of the plain RISE saliency.
        batch_size (32): masked chips per forward pass.
        progress (False): show a tqdm progress bar.

    ``extras``: ``saliency_a``/``_b`` (the plain S) and ``scores_a``/``_b``.

    Example:
        >>> expl = explain("rise", model, "a.jpg", "b.jpg", n=1000, seed=0)  # doctest: +SKIP
    """

    name = "rise"
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
        _check_int(params, "n", 1, "a positive number of masks")
        _check_int(params, "s", 1, "a positive number of grid cells")
        _check_int(params, "batch_size", 1, "a positive batch size")
        _check_int(params, "seed", 0, "a non-negative integer seed")
        p = params["p"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise XfrError(f"p={p!r} must be a keep probability in (0, 1]")
        params["p"] = float(p)
        params["fill"] = check_fill(params["fill"])
        params["debias"] = bool(params["debias"])
        params["progress"] = bool(params["progress"])
        return params

    def side_maps(self, image: torch.Tensor, references: torch.Tensor) -> SideMaps:
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
        saliency = (sum_sm / norm).numpy()
        base = (all_scores.mean(1, keepdim=True) * sum_m[None] / norm).numpy()
        sim = saliency - base if prm["debias"] else saliency
        shape = (len(references), h, w)
        extras = [{"saliency": saliency[r].reshape(h, w).astype(np.float32),
                   "scores": all_scores[r].numpy()} for r in range(len(references))]
        return SideMaps(
            np.maximum(sim, 0).reshape(shape).astype(np.float32),
            np.maximum(base - saliency, 0).reshape(shape).astype(np.float32),
            extras,
        )
