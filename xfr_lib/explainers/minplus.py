"""MinPlus (D. Mery, "True black-box explanation in facial analysis", CVPR-W 2022; D. Mery &
B. Morris, "On black-box explanation for face verification", WACV 2022): the combination of
the removal ("minus") and aggregation ("plus") strategies of :mod:`xfr_lib.explainers.mery`.

The minus map says where hiding the face lowers the score; the plus map where showing the face
alone raises it. They fail in opposite ways: removal misses redundant regions (hiding one eye
leaves the other), aggregation misses regions that only count together with others. MinPlus
combines both. The exact combination rule is not in the material available to us; xfr's
definition (``combine``):

* "mean" (default): the mean of the two signed maps, each divided by its largest magnitude,
  ``(M / max|M| + P / max|P|) / 2``, in [-1, 1];
* "min": agreement only, the value with the smaller magnitude where both normalised maps
  have the same sign and 0 where they disagree (a conservative AND of the two strategies).

``strategy`` picks the minus/plus pair: "single" (S- and S+ on the fine grid, default) or
"greedy" (greedy removal and greedy aggregation on the coarse grid). Dissimilarity is the
negative part of the combined map, as for its parts: regions whose removal raises the score
and whose showing lowers it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import SignedMaps
from xfr_lib.explainers._occluders import paint
from xfr_lib.explainers.mery import (
    MeryExplainer,
    greedy_values,
    max_normalise,
    single_values,
)


def combine_maps(minus: np.ndarray, plus: np.ndarray, rule: str) -> np.ndarray:
    """MinPlus's combination of signed ``[R, H, W]`` minus and plus maps (see the module)."""
    m, p = max_normalise(minus), max_normalise(plus)
    if rule == "mean":
        return (m + p) / 2.0
    agree = np.sign(m) == np.sign(p)
    return np.where(agree, np.sign(m) * np.minimum(np.abs(m), np.abs(p)), 0.0)


@METHODS.register("minplus")
class MinPlus(MeryExplainer):
    """MinPlus (Mery 2022; Mery & Morris 2022): removal ("minus") and aggregation ("plus")
    maps of Gaussian regions, combined; see the module docstring for the rule.

    Parameters (``explain("minplus", model, a, b, **params)``):
        strategy ("single"): "single" (S- and S+) or "greedy" (greedy removal and greedy
            aggregation).
        combine ("mean"): "mean" of the max-normalised maps, or "min" (agreement only).
        stride (None), sigma (None): the single strategy's grid spacing and window radius;
            None = 8 px at 112 px scaled to the input (a 14 x 14 grid).
        grid (5), steps (None): the greedy strategy's regions per side and steps (None = all);
            its windows' radius is half a cell.
        fill ("mean"): the neutral image (the chip's mean colour; also "blur", "grey",
            "zero", "noise" or a grey level).
        batch_size (32): perturbed chips per forward pass.
        progress (False): show a tqdm progress bar.

    Cost: "single" 2 x 197 = 394 forward passes per image, 788 per pair; "greedy" 2 x 326 =
    652 per image at grid 5. ``extras``: ``forward_passes`` and the two normalised maps
    (``minus``, ``plus``).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> maps = MinPlus(model, stride=28).signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["forward_passes"]
        ((1, 112, 112), 34)
    """

    summary = "MinPlus: removal and aggregation maps of Gaussian regions combined (Mery 2022)"
    defaults: ClassVar[dict[str, Any]] = {
        "strategy": "single", "combine": "mean", "stride": None, "sigma": None, "grid": 5,
        "steps": None, "fill": "mean", "batch_size": 32, "progress": False,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["strategy"] not in ("single", "greedy"):
            raise XfrError(f"strategy={params['strategy']!r} is invalid; use 'single' (S- and "
                           "S+) or 'greedy' (greedy removal and aggregation)")
        if params["combine"] not in ("mean", "min"):
            raise XfrError(f"combine={params['combine']!r} is invalid; use 'mean' or 'min'")
        self._resolve_single(params)
        # The greedy windows' radius is half a cell (not the single methods' sigma).
        self._resolve_greedy(params, None)
        self._check_common(params)
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        refs = references.float()
        neutral = self._neutral(image)
        if self.params["strategy"] == "single":
            windows = self._single_windows()
            runs = [single_values(self, image, refs, windows, mode, neutral)
                    for mode in ("removal", "aggregation")]
        else:
            windows = self._greedy_windows()
            runs = [greedy_values(self, image, refs, windows, mode, neutral,
                                  self.params["steps"]) for mode in ("removal", "aggregation")]
        minus, plus = (paint(values, windows) for values, _ in runs)
        signed = combine_maps(minus, plus, self.params["combine"])
        passes = sum(info["forward_passes"] for _, info in runs)
        m, p = max_normalise(minus), max_normalise(plus)
        extras = [{"forward_passes": passes, "minus": m[r].astype(np.float32),
                   "plus": p[r].astype(np.float32)} for r in range(len(references))]
        return SignedMaps(signed, extras)
