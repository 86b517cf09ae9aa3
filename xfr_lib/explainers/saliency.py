"""Plain input gradients of the pair score (Simonyan, Vedaldi & Zisserman, ICLR-W 2014).

The gradient ``g = ds / dx`` of the pair's cosine ``s = cos(f(A), f(B))`` with respect to the
chip A (``[3, H, W]``; f(B) computed beforehand). This is the noisy baseline FGGB (Lu, Xu &
Ebrahimi 2024) sets out to improve on.

Simonyan et al.'s map is ``max_c |g_c|``: unsigned, so it has no dissimilarity part. xfr's
signed map is the channel sum ``sum_c g_c(i, j)``: the derivative of s along brightening
pixel (i, j) in all three channels at once. Positive where brightening raises the score
(similarity), negative where it lowers it (dissimilarity). With ``times_input=True`` it is
``sum_c x_c g_c`` ("gradient x input", Shrikumar et al. 2016): the first-order estimate of
how much the pixel's colour, against a black pixel, adds to the score.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int
from xfr_lib.explainers._gradients import repeat_image, require_gradients, score_function


@METHODS.register("saliency")
class Saliency(Explainer):
    """Input-gradient saliency of the pair score (Simonyan et al., "Deep inside
    convolutional networks: Visualising image classification models and saliency maps",
    ICLR workshop 2014), signed as in the module docstring.

    Parameters (``explain("saliency", model, a, b, **params)``):
        times_input (False): multiply the gradient by the chip before summing the channels
            (gradient x input).
        batch_size (32): references per forward pass.

    Cost: one forward and one backward pass per image side (per ``batch_size`` references).

    ``extras``: ``score``, ``backward_passes`` (1: one image's backward pass to the pixels).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> Saliency(model).signed_maps(chips[0], model.embed(chips[1:])).signed.shape
        (1, 112, 112)
    """

    summary = "gradient of the pair score with respect to the pixels (Simonyan et al. 2014)"
    black_box = False
    defaults: ClassVar[dict[str, Any]] = {"times_input": False, "batch_size": 32}

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        require_gradients(self.model, self.name)
        params["times_input"] = bool(params["times_input"])
        check_int(params, "batch_size", 1, "a positive number of references per pass")
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        maps, scores = [], []
        for refs in references.split(self.params["batch_size"]):
            x = repeat_image(image, len(refs), self.device)
            s = score_function(self.model, refs.to(self.device))(x)
            (grad,) = torch.autograd.grad(s.sum(), x)  # rows are independent
            if self.params["times_input"]:
                grad = grad * x.detach()
            maps.append(grad.sum(dim=1).float())
            scores.append(s.detach())
        score = torch.cat(scores).cpu().numpy()
        extras = [{"score": np.float32(v), "backward_passes": 1} for v in score]
        return SignedMaps(torch.cat(maps).cpu().numpy(), extras)
