"""Grad-CAM++ (Chattopadhyay et al., WACV 2018) of the pair score, and of its negation.

Captum has no Grad-CAM++; its weights are a closed form, computed here once
(:func:`gradcampp_weights`). For a layer with activation maps ``A_c`` and the gradient
``g = dS/dA`` of a score S (here the pair's cosine ``s``, or ``-s``),

    alpha_c(i, j) = g_c(i, j)^2 / (2 g_c(i, j)^2 + sum_ab A_c(a, b) g_c(i, j)^3),
    w_c = sum_ij alpha_c(i, j) ReLU(g_c(i, j)),       L = sum_c w_c A_c.

Choices the paper leaves to the implementer, and xfr's:

* The exponential score. The paper differentiates ``Y = exp(S)`` and, for a network that is
  piecewise linear in A (ReLU), writes Y's second and third derivatives as ``exp(S) g^2`` and
  ``exp(S) g^3``; the ``exp(S)`` factors cancel in alpha and leave one positive factor
  ``exp(S)`` on every ``w_c``. xfr uses the formula above, i.e. that factor dropped (as common
  implementations do): for one map it only scales it, but ``exp(s)`` vs ``exp(-s)`` would
  weigh the similarity part ``e^(2s)`` times more than the dissimilarity part. The cosine is
  not piecewise linear in A (its normalisation is curved); like every Grad-CAM++ on such
  scores, the higher derivatives are taken as powers of the gradient anyway.
* alpha where its denominator is 0 (where ``g = 0``, so the numerator is 0 too, or
  ``sum A * g = -2``): 0. alpha is not renormalised.
* Sign. Unlike Grad-CAM, Grad-CAM++ is not linear in the gradient (``g^3`` and ``ReLU(g)``
  change with the sign of S), so the negated score has its own map. With ``L+`` from ``s``
  and ``L-`` from ``-s`` (both from the one forward and backward pass: ``-s`` has gradient
  ``-g``), the signed map is

      ReLU(L+) - ReLU(L-),

  upsampled bilinearly: the similarity map is ``ReLU(L+)`` where the dissimilarity map is
  0, and the dissimilarity map is ``ReLU(L-)`` where the similarity map is 0; where both
  are positive, the larger wins, by the difference (the net evidence).
"""

from __future__ import annotations

import numpy as np
import torch

from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import SignedMaps
from xfr_lib.explainers._gradients import (
    LayerExplainer,
    layer_activations_and_gradients,
    upsample,
)


def gradcampp_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights ``[B, C]`` of activations and score gradients
    ``[B, C, h, w]`` (the closed form of the module docstring, ``exp(S)`` dropped)."""
    g2 = gradient * gradient
    g3 = g2 * gradient
    denom = 2.0 * g2 + activation.sum(dim=(2, 3), keepdim=True) * g3
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where(denom != 0, g2 / safe, torch.zeros_like(denom))
    return (alpha * torch.relu(gradient)).sum(dim=(2, 3))


def gradcampp_map(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ maps ``[B, h, w]`` before ReLU: ``sum_c w_c A_c``."""
    weights = gradcampp_weights(activation, gradient)
    return (weights[:, :, None, None] * activation).sum(dim=1)


@METHODS.register("gradcam++")
class GradCAMPlusPlus(LayerExplainer):
    """Grad-CAM++ (Chattopadhyay, Sarkar, Howlader & Balasubramanian, "Grad-CAM++:
    Generalized gradient-based visual explanations for deep convolutional networks", WACV
    2018) of the pair score and its negation; see the module docstring for the choices.

    Parameters (``explain("gradcam++", model, a, b, **params)``):
        layer (None): the convolutional layer; None = the model's ``cam_default`` (dlib
            ``block_8x8``, SFace ``conv_7x7``), or a label of ``model.cam_layers`` or a
            dotted module path. Recorded as the resolved value.
        batch_size (32): references per forward pass.

    Cost: one forward and one backward pass per image side (per ``batch_size`` references).

    ``extras``: ``cam_similarity``/``cam_dissimilarity`` (``L+``, ``L-`` before ReLU, at the
    layer's resolution), ``score``, ``backward_passes`` (1: one image's backward pass, from
    the score down to the layer; ``-s`` reuses it).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> maps = GradCAMPlusPlus(model).signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["cam_similarity"].shape
        ((1, 112, 112), (7, 7))
    """

    summary = ("Grad-CAM++ of the pair score and of its negation, closed-form weights "
               "(Chattopadhyay et al. 2018)")
    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        pos, neg, scores = [], [], []
        for refs in references.split(self.params["batch_size"]):
            act, grad, s = layer_activations_and_gradients(
                self.model, self.params["layer"], image, refs, self.device)
            act, grad = act.float(), grad.float()
            pos.append(gradcampp_map(act, grad))  # score s
            neg.append(gradcampp_map(act, -grad))  # score -s: gradient -g
            scores.append(s)
        cam_pos, cam_neg = torch.cat(pos), torch.cat(neg)
        signed = upsample(torch.relu(cam_pos) - torch.relu(cam_neg), self.input_size)
        cam_pos, cam_neg = cam_pos.cpu().numpy(), cam_neg.cpu().numpy()
        score = torch.cat(scores).cpu().numpy()
        extras = [{"cam_similarity": cam_pos[r], "cam_dissimilarity": cam_neg[r],
                   "score": np.float32(score[r]), "backward_passes": 1}
                  for r in range(len(score))]
        return SignedMaps(signed.cpu().numpy(), extras)
