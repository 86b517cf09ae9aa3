"""xFace: systematic occlusion of a face pair (Knoche, Teepe, Hörmann & Rigoll, "Explainable
model-agnostic similarity and confidence in face verification", WACV-W 2023).

Square patches of three sizes (7, 14 and 28 px at 112 px) slide over the chip with a stride
of 5 px and are filled with 0 (black). For each patch k the pair's score is measured with the
patch occluded, and its deviation from the unoccluded score, divided by the patch's area,

    d_k = (s_0 - s_k) / area_k        (= (distance_k - distance_0) / area_k, distance = 1 - s)

is added to every pixel the patch covers; each pixel's value is the mean of the deviations of
the patches covering it (patches of all three sizes pooled, so small patches, whose per-area
deviation is larger, weigh more, as the paper's per-area normalisation implies). The map is then
blurred with a Gaussian whose kernel is the stride. The accumulation is one pass over four
corner updates per patch and two cumulative sums (a summed-area table), not a per-pixel loop.

Sign: a patch whose occlusion lowers the score (raises the distance) gives a positive value,
the similarity map; one whose occlusion raises the score gives a negative value, whose
magnitude is the dissimilarity map (xFace's maps are signed deviations; reading their negative
part as dissimilarity is xfr's choice).

Variants (``images``): "one" occludes the explained image only, against the other image's
unmodified embedding; "both" occludes the same region of both images at once, so both images'
maps come from the same scores and are equal. For identification, "both" would need the
gallery images inside the probe's explanation, which the shared protocol does not pass (it
gives the method the matches' embeddings only), so it is refused there with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int
from xfr_lib.explainers._masks import MaskSet, apply_masks, check_fill, masked_scores
from xfr_lib.explainers._occluders import (
    SquarePatches,
    gaussian_blur_kernel,
    neutral_image,
    patch_grid,
    scaled,
)

#: xFace's patch sides and stride at 112 px.
PAPER_SIZES = (7, 14, 28)
PAPER_STRIDE = 5


def accumulate_patches(values: np.ndarray, patches: SquarePatches) -> np.ndarray:
    """Each pixel's mean of the ``[R, N]`` patch values over the patches covering it.

    Summed-area accumulation: every patch adds its value at its four corners of a difference
    array, two cumulative sums give the per-pixel sums (and the same with ones, the counts).
    Pixels no patch covers get 0.
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    h, w = patches.height, patches.width
    t, l, s = patches.tops, patches.lefts, patches.sizes
    corners = ((t, l, 1.0), (t, l + s, -1.0), (t + s, l, -1.0), (t + s, l + s, 1.0))
    diff = np.zeros((len(v), h + 1, w + 1))
    count = np.zeros((h + 1, w + 1))
    for rows, cols, sign in corners:
        np.add.at(diff, (slice(None), rows, cols), sign * v)
        np.add.at(count, (rows, cols), sign)
    sums = diff.cumsum(1).cumsum(2)[:, :h, :w]
    n = np.rint(count.cumsum(0).cumsum(1)[:h, :w])
    return np.where(n > 0, sums / np.maximum(n, 1), 0.0)


def blur_map(maps: np.ndarray, ksize: int) -> np.ndarray:
    """Blur ``[R, H, W]`` maps with a ``ksize`` Gaussian (:func:`gaussian_blur_kernel`; even
    sizes are raised to the next odd one; mirrored borders, as OpenCV's default)."""
    if ksize <= 1:
        return maps
    from scipy.ndimage import convolve1d

    g = gaussian_blur_kernel(ksize + 1 - ksize % 2)
    out = convolve1d(maps, g, axis=-1, mode="mirror")
    return convolve1d(out, g, axis=-2, mode="mirror")


@torch.no_grad()
def both_scores(model: Any, a: torch.Tensor, b: torch.Tensor, masks: MaskSet, *,
                fill_a: torch.Tensor, fill_b: torch.Tensor, batch_size: int = 32,
                progress: bool = False, desc: str = "masks") -> Iterator[torch.Tensor]:
    """Yield ``[b]`` float64 scores ``cos(f(A * M_k), f(B * M_k))``: the same mask applied to
    both images at once, batch by batch (only ``model.embed`` is called)."""
    from tqdm.auto import tqdm

    from xfr_lib.models import model_device

    device = model_device(model)
    a, b = a.to(device), b.to(device)
    fa, fb = fill_a.to(device), fill_b.to(device)
    n_batches = -(-len(masks) // batch_size)
    for _, m in tqdm(masks.batches(batch_size, device), total=n_batches, disable=not progress,
                     desc=desc, leave=False):
        emb = F.normalize(model.embed(torch.cat([apply_masks(a, m, fa),
                                                 apply_masks(b, m, fb)])).float(), dim=1)
        ea, eb = emb[: len(m)], emb[len(m):]
        yield (ea * eb).sum(1).double().cpu()


@METHODS.register("xface")
class XFace(Explainer):
    """xFace (Knoche, Teepe, Hörmann & Rigoll, WACV-W 2023): per-area score deviations of
    systematic square occlusions, averaged per pixel and blurred; see the module docstring.

    Parameters (``explain("xface", model, a, b, **params)``):
        sizes (None): patch sides in px; None = (7, 14, 28) at 112 px scaled to the input
            ((9, 19, 38) at 150 px). Recorded resolved.
        stride (None): patch stride in px; None = 5 at 112 px scaled (7 at 150 px).
        fill ("zero"): what an occluded pixel shows; the paper's 0 (black) is "zero"; also
            "grey", "mean", "blur", "noise" (one fixed noise image, seed 0) or a grey level.
        blur (None): Gaussian blur kernel size in px; None = the stride (the paper); 0 or 1 =
            no blur.
        images ("one"): "one" occludes the explained image only; "both" occludes the same
            region of both images at once (verification only).
        batch_size (32): occluded chips per forward pass.
        progress (False): show a tqdm progress bar.

    Cost: one forward pass per patch per image side plus one (the unoccluded score):
    1249 patches at 112 px and 1173 at 150 px, so 2500 passes per pair on sface and 2348 on
    dlib_resnet29 with "one" (about 8 s per pair on dlib_resnet29 on 2 cores; the paper's
    settings, above the ~5 s of the other methods: a larger ``stride`` or fewer ``sizes``
    cut it). With "both": 2 x patches passes, each on an occluded chip of A or B.
    ``extras["forward_passes"]`` records the count per image side.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> xf = XFace(model, sizes=(28,), stride=28)
        >>> maps = xf.signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["forward_passes"]
        ((1, 112, 112), 17)
    """

    summary = "per-area score deviation of systematic square occlusions (Knoche et al. 2023)"
    defaults: ClassVar[dict[str, Any]] = {
        "sizes": None,
        "stride": None,
        "fill": "zero",
        "blur": None,
        "images": "one",
        "batch_size": 32,
        "progress": False,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        h, w = self.input_size
        if params["sizes"] is None:
            params["sizes"] = tuple(scaled(s, h, w) for s in PAPER_SIZES)
        if params["stride"] is None:
            params["stride"] = scaled(PAPER_STRIDE, h, w)
        sizes = params["sizes"]
        if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if not isinstance(sizes, (tuple, list)) or not sizes or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= min(h, w)
            for s in sizes
        ):
            raise XfrError(f"sizes={params['sizes']!r} is invalid; use patch sides in px "
                           f"between 1 and {min(h, w)}, e.g. (7, 14, 28)")
        params["sizes"] = tuple(int(s) for s in sizes)
        check_int(params, "stride", 1, "a positive stride in px")
        if params["blur"] is None:
            params["blur"] = params["stride"]
        check_int(params, "blur", 0, "a blur kernel size in px (0 = no blur)")
        check_int(params, "batch_size", 1, "a positive batch size")
        params["fill"] = check_fill(params["fill"])
        if params["images"] not in ("one", "both"):
            raise XfrError(f"images={params['images']!r} is invalid; use 'one' (occlude the "
                           "explained image) or 'both' (occlude both images at once)")
        params["progress"] = bool(params["progress"])
        return params

    def _patches(self) -> SquarePatches:
        return patch_grid(*self.input_size, self.params["sizes"], self.params["stride"])

    def _fill(self, image: torch.Tensor) -> torch.Tensor:
        return neutral_image(image, self.params["fill"], seed=0,
                             sigma=self.params["stride"])

    def _finish(self, deviations: np.ndarray, patches: SquarePatches, base: np.ndarray,
                scores: np.ndarray, passes: int) -> SignedMaps:
        per_area = deviations / (patches.sizes.astype(np.float64) ** 2)[None]
        signed = blur_map(accumulate_patches(per_area, patches), self.params["blur"])
        extras = [{"scores": scores[r].astype(np.float32), "score": float(base[r]),
                   "n_patches": patches.n, "forward_passes": passes}
                  for r in range(len(scores))]
        return SignedMaps(signed, extras)

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        p = self.params
        if p["images"] == "both":
            raise XfrError(
                "xface with images='both' occludes both images of a pair and is defined for "
                "verification (explain) only; use images='one' for identification"
            )
        patches = self._patches()
        refs = references.float()
        base = (refs @ self.embed(image[None])[0]).double().numpy()
        scores = torch.cat([s for _, s in masked_scores(
            self.model, image, refs, patches, batch_size=p["batch_size"],
            fill=self._fill(image), progress=p["progress"], desc=self.name,
        )], dim=1).numpy()
        return self._finish(base[:, None] - scores, patches, base, scores, patches.n + 1)

    def pair_maps(self, a: torch.Tensor, b: torch.Tensor, emb_a: torch.Tensor,
                  emb_b: torch.Tensor) -> tuple[SignedMaps, SignedMaps]:
        if self.params["images"] == "one":
            return super().pair_maps(a, b, emb_a, emb_b)
        p = self.params
        patches = self._patches()
        base = np.array([float((emb_a * emb_b).sum())])
        scores = torch.cat(list(both_scores(
            self.model, a, b, patches, fill_a=self._fill(a), fill_b=self._fill(b),
            batch_size=p["batch_size"], progress=p["progress"], desc=self.name,
        ))).numpy()[None]
        # Two occluded chips (one of each image) per patch, counted one per side; the
        # unoccluded score comes from the protocol.
        maps = self._finish(base[:, None] - scores, patches, base, scores, patches.n)
        return maps, SignedMaps(maps.signed.copy(), [dict(e) for e in maps.extras])
