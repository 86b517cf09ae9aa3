"""LIME (Ribeiro, Singh & Guestrin, "Why should I trust you?", KDD 2016) for face pairs,
through Captum's :class:`captum.attr.Lime`.

The features are SLIC superpixels (:func:`skimage.segmentation.slic`) of the aligned chip. A
sample switches each superpixel on or off at random (Captum's default: independent fair coin
flips, drawn from torch's global generator, which xfr seeds inside a forked RNG state so the
caller's state is untouched and a seed gives identical samples); hidden superpixels show the
``fill``. The model's output for a sample is the pair's score, the cosine similarity between the
perturbed chip's embedding and the reference. A weighted ridge regression of the scores on the
binary samples is the local surrogate, and each superpixel's coefficient, painted over it, is
the signed map: positive where showing the superpixel raises the score (similarity), negative
where it lowers it (dissimilarity, xfr's reading of LIME's negative weights).

Choices, following LIME's reference implementation for images (``lime_image``) where Captum's
defaults differ:

* fill "segment": a hidden superpixel shows its own mean colour (``lime_image``'s default,
  ``hide_color=None``): it removes the detail and keeps the chip's colours and layout, so the
  surrogate measures the superpixel's content, not a black hole's outline. Constant fills
  ("zero", "grey", "mean", ...) are available.
* sample weights: LIME's exponential kernel on the cosine distance between the binary sample
  and the all-on sample, ``exp(-d^2 / (2 w^2))`` (``lime_image``'s ``sqrt(exp(-d^2 / w^2))``),
  width w = 0.25; Captum's default measures that distance between the perturbed *images*.
* surrogate: ridge regression with alpha 1 (``lime_image``'s default; Captum's default Lasso
  with alpha 0.01 zeroes every coefficient when scores vary by a few hundredths, as cosines of
  one face do).

For R references (identification) the N perturbed chips are embedded once: Captum is called
once per reference with the same seed, hence identical samples, and a cache hands each later
call the embeddings of the first (it checks that the chips are the same), so there are N
forward passes whatever R and each reference's map equals its single-reference map.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._masks import check_fill
from xfr_lib.explainers._occluders import neutral_image


def superpixels(image: torch.Tensor, n_segments: int, compactness: float) -> np.ndarray:
    """``[H, W]`` int64 SLIC labels ``0 .. M-1`` of a ``[3, H, W]`` chip (deterministic)."""
    from skimage.segmentation import slic

    arr = image.permute(1, 2, 0).numpy().astype(np.float64)
    seg = slic(arr, n_segments=n_segments, compactness=compactness, start_label=0,
               channel_axis=-1)
    return np.unique(seg, return_inverse=True)[1].reshape(seg.shape).astype(np.int64)


def segment_means(image: torch.Tensor, segments: np.ndarray) -> torch.Tensor:
    """``[3, H, W]``: every pixel replaced by the mean colour of its superpixel."""
    seg = torch.from_numpy(segments).reshape(-1)
    m = int(seg.max()) + 1
    flat = image.reshape(3, -1).double()
    sums = torch.zeros(3, m, dtype=torch.float64).index_add_(1, seg, flat)
    counts = torch.bincount(seg, minlength=m).double()
    return (sums / counts)[:, seg].reshape(image.shape).float()


def lime_kernel(kernel_width: float):
    """LIME's sample weight: ``exp(-d^2 / (2 w^2))`` of the cosine distance ``d`` between the
    binary sample and the all-on sample (``d = 1 - sqrt(k / M)`` with k of M features on)."""

    def similarity(_original: Any, _perturbed: Any, sample: torch.Tensor, **_: Any) -> float:
        z = sample.double().reshape(-1)
        on = float(z.sum())
        d = 1.0 - math.sqrt(on / z.numel()) if on > 0 else 1.0
        return math.exp(-(d**2) / (2 * kernel_width**2))

    return similarity


class _SharedForward:
    """Captum's forward function, scoring perturbed chips against reference ``r``; embeddings
    computed in the first pass over the samples are replayed to the later ones."""

    def __init__(self, model: Any, references: torch.Tensor) -> None:
        self.model = model
        self.refs = references.float()
        self.batches: list[tuple[float, torch.Tensor]] = []
        self.ref = 0
        self.pos = 0
        self.passes = 0
        self.finite = True

    def start(self, r: int) -> None:
        self.ref, self.pos = r, 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = float(x.double().sum())
        if self.ref == 0:
            emb = F.normalize(self.model.embed(x).float(), dim=1).cpu()
            self.batches.append((key, emb))
            self.passes += len(x)
        else:
            stored, emb = self.batches[self.pos]
            if stored != key or len(emb) != len(x):  # a Captum change, never the user's fault
                raise XfrError("lime: Captum drew different samples for the same seed; "
                               "report this with the captum version")
            self.pos += 1
        scores = emb @ self.refs[self.ref]
        if not torch.isfinite(scores).all():
            # The regression cannot take NaN; the map becomes NaN instead (never hidden), and
            # the shared check reports it with the method's and model's names.
            self.finite = False
            scores = torch.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
        return scores


@METHODS.register("lime")
class LIME(Explainer):
    """LIME (Ribeiro et al., KDD 2016) via ``captum.attr.Lime`` on SLIC superpixels, the
    pair's score as the model output; see the module docstring for the choices.

    Parameters (``explain("lime", model, a, b, **params)``):
        n_samples (500): perturbed samples (forward passes) per image. ``lime_image`` uses
            1000; 500 keeps a pair near 4 s on dlib_resnet29 (2 cores).
        n_segments (50): SLIC's target number of superpixels (it returns about that many).
        compactness (10.0): SLIC's colour/space trade-off (higher: more square superpixels).
        kernel_width (0.25): width of LIME's exponential kernel on the cosine distance.
        alpha (1.0): ridge penalty of the surrogate.
        fill ("segment"): what a hidden superpixel shows: "segment" (its mean colour,
            ``lime_image``'s default), or "zero", "grey", "mean", "blur", "noise" (drawn from
            ``seed``) or a grey level.
        seed (0): seed of the samples.
        batch_size (32): perturbed chips per forward pass.
        progress (False): show Captum's progress bar.

    Cost: ``n_samples`` forward passes per image (1000 per pair at the defaults), shared by
    all references of an identification. ``extras``: ``segments`` (the label map),
    ``coefficients`` (one per superpixel), ``forward_passes``.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> lime = LIME(model, n_samples=40, n_segments=16, seed=0)
        >>> maps = lime.signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["forward_passes"]
        ((1, 112, 112), 40)
    """

    summary = "ridge surrogate of the pair's score on SLIC superpixels (LIME, via Captum)"
    defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 500,
        "n_segments": 50,
        "compactness": 10.0,
        "kernel_width": 0.25,
        "alpha": 1.0,
        "fill": "segment",
        "seed": 0,
        "batch_size": 32,
        "progress": False,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        check_int(params, "n_samples", 2, "at least 2 samples (LIME fits a regression)")
        check_int(params, "n_segments", 1, "a positive number of superpixels, e.g. 50")
        check_number(params, "compactness", 0.0, math.inf, "a positive SLIC compactness, "
                     "e.g. 10", open_low=True)
        check_number(params, "kernel_width", 0.0, math.inf, "a positive kernel width, e.g. "
                     "0.25", open_low=True)
        check_number(params, "alpha", 0.0, math.inf, "a non-negative ridge penalty")
        check_int(params, "seed", 0, "a non-negative integer seed")
        check_int(params, "batch_size", 1, "a positive batch size")
        if params["fill"] != "segment":
            try:
                params["fill"] = check_fill(params["fill"])
            except XfrError:
                raise XfrError(f"fill={params['fill']!r} is invalid; use 'segment' (each "
                               "superpixel's mean colour), 'zero', 'grey', 'mean', 'blur', "
                               "'noise' or a grey level in [0, 1]") from None
        params["progress"] = bool(params["progress"])
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime

        p = self.params
        segments = superpixels(image, p["n_segments"], p["compactness"])
        if p["fill"] == "segment":
            baseline = segment_means(image, segments)
        else:
            baseline = neutral_image(image, p["fill"], seed=p["seed"])
        mask = torch.from_numpy(segments)[None, None]  # broadcast over colour channels
        first = np.unique(segments, return_index=True)[1]  # one pixel of each superpixel
        forward = _SharedForward(self.model, references)
        signed = np.zeros((len(references), *self.input_size))
        coefs = []
        for r in range(len(references)):
            forward.start(r)
            lime = Lime(forward, interpretable_model=SkLearnRidge(alpha=p["alpha"]),
                        similarity_func=lime_kernel(p["kernel_width"]))
            # Captum draws with torch's global generator: seed a forked copy of it.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(p["seed"])
                attr = lime.attribute(
                    image[None], baselines=baseline[None], feature_mask=mask,
                    n_samples=p["n_samples"], perturbations_per_eval=p["batch_size"],
                    show_progress=p["progress"] and r == 0,
                )
            signed[r] = attr[0, 0].double().numpy() if forward.finite else np.nan
            coefs.append(signed[r].ravel()[first].astype(np.float32))
        extras = [{"segments": segments.astype(np.int32), "coefficients": coefs[r],
                   "forward_passes": forward.passes} for r in range(len(references))]
        return SignedMaps(signed, extras)
