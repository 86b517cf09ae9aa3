"""Grad-CAM (Selvaraju et al., ICCV 2017) of the pair score, through Captum's ``LayerGradCam``.

The class score of Grad-CAM becomes the pair's score ``s = cos(f(A), f(B))``, with f(B)
computed beforehand (outside the explained forward pass; see
:mod:`xfr_lib.explainers._gradients`). For a convolutional layer with activation maps
``A_c`` (``h x w``),

    w_c = mean_ij ds / dA_c(i, j),     L = sum_c w_c A_c,

and ``L`` is upsampled to the chip (bilinear). xfr's signed map is the upsampled ``L``: its
positive part is the similarity map. Grad-CAM is linear in the gradient, so the Grad-CAM of the
negated score, the usual way to explain dissimilarity (ALGORITHMS.md), is ``-L``: its positive
part, the dissimilarity map, comes from the same single forward and backward pass.

One difference from Grad-CAM's own map: Grad-CAM takes ``ReLU(L)`` at the layer's resolution
and upsamples that; xfr upsamples ``L`` and then splits it (a pixel is in one map only). The
two agree except between cells of opposite sign, where the interpolated positive and negative
values net out instead of both showing.
"""

from __future__ import annotations

import numpy as np
import torch

from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import SignedMaps
from xfr_lib.explainers._gradients import (
    LayerExplainer,
    layer_module,
    repeat_image,
    score_function,
    upsample,
)


@METHODS.register("gradcam")
class GradCAM(LayerExplainer):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via
    gradient-based localization", ICCV 2017) of the pair score; see the module docstring.

    Parameters (``explain("gradcam", model, a, b, **params)``):
        layer (None): the convolutional layer; None = the model's ``cam_default`` (the last
            usable spatial map: dlib ``block_8x8``, SFace ``conv_7x7``), or a label of
            ``model.cam_layers`` or a dotted module path. Recorded as the resolved value.
        batch_size (32): references per forward pass (identification explains the probe
            against the K matches in one batch).

    Cost: one forward and one backward pass per image side (per ``batch_size`` references).

    ``extras``: ``cam`` (``L`` at the layer's resolution, before upsampling), ``score``,
    ``backward_passes`` (1: one image's backward pass, from the score down to the layer).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> maps = GradCAM(model).signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["cam"].shape
        ((1, 112, 112), (7, 7))
    """

    summary = "Grad-CAM of the pair score at a conv layer, via Captum (Selvaraju et al. 2017)"
    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        from captum.attr import LayerGradCam  # imported on use: Captum takes ~1 s to import

        module = layer_module(self.model, self.params["layer"])
        cams, scores = [], []
        for refs in references.split(self.params["batch_size"]):
            score_fn = score_function(self.model, refs.to(self.device))

            def forward(x: torch.Tensor, score_fn=score_fn) -> torch.Tensor:
                s = score_fn(x)
                scores.append(s.detach())  # kept for extras: no second forward pass
                return s

            x = repeat_image(image, len(refs), self.device)
            # relu_attributions=False: the signed sum; its ReLU is Grad-CAM's map.
            cam = LayerGradCam(forward, module).attribute(x, relu_attributions=False)
            cams.append(cam[:, 0].detach().float())
        cam = torch.cat(cams)
        signed = upsample(cam, self.input_size).cpu().numpy()
        cam_np = cam.cpu().numpy()
        score = torch.cat(scores).cpu().numpy()
        extras = [{"cam": cam_np[r], "score": np.float32(score[r]), "backward_passes": 1}
                  for r in range(len(cam_np))]
        return SignedMaps(signed, extras)
