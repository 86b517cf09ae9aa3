"""Mery's black-box family: removal and aggregation of Gaussian-weighted regions (D. Mery,
"True black-box explanation in facial analysis", CVPR-W 2022; D. Mery & B. Morris, "On
black-box explanation for face verification", WACV 2022). From Pixels to Words (arXiv
2409.16089) explains face pairs with five of them: single aggregation, greedy aggregation,
single removal, greedy removal and their average.

The papers leave kernels, steps, grid and the neutral image open; xfr implements this:

* Regions are Gaussian windows ``w_k(x) = exp(-|x - c_k|^2 / (2 sigma^2))`` (peak 1) centred on
  a square grid. A chip with the set S of regions hidden shows
  ``neutral + prod_{k in S}(1 - w_k) (image - neutral)``; with only S shown it shows
  ``neutral + (1 - prod_{k in S}(1 - w_k)) (image - neutral)``. The neutral image is the
  ``fill`` (default "mean": the chip's mean colour, an image with no face detail whose
  brightness matches the chip; "blur", "grey", "zero", "noise" or a grey level also work).
* S- (``single_removal``): hide one region at each position of a fine grid; its value is the
  score's drop ``s(image) - s(image without k)``.
* S+ (``single_aggregation``): show one region alone on the neutral image; its value is the
  score obtained relative to the neutral image's own, ``s(only k) - s(neutral)``.
* Greedy removal / aggregation: on a coarse grid, repeatedly hide (show) the one further
  region whose addition lowers (raises) the score most, accumulating the chosen regions,
  until ``steps`` regions are chosen (default: all). The step's *gain* g_t is the score drop
  (rise) it added. A region's value combines order and gain (:func:`greedy_credit`): the
  positive gain still to come from its step on, ``sum_{u >= t} max(g_u, 0)``, so regions
  taken earlier rank higher (a saturated cosine makes the first gains the smallest); a step
  with a negative gain keeps it. The order of selection, the gains and the score after each
  step are in ``extras`` (``order``, ``gains``, ``curve``). Regions never chosen (``steps``
  below the number of regions) get 0.
* A map paints the region values: each pixel is the window-weighted mean
  ``sum_k v_k w_k / sum_k w_k``.
* ``mery_average``: the mean of the four maps, each divided by its largest magnitude.

Signs: positive where hiding a region lowers the score / showing it raises the score
(similarity). Dissimilarity, which the papers do not define, is the negative part: regions
whose removal *raises* the score (S-, greedy removal: the step's gain is negative), or that
*lower* the score when shown on the neutral image (S+, greedy aggregation).

With R references (identification), the single methods share every perturbed pass across
the references. The greedy methods share their first step; afterwards each reference follows
its own choices (references that have chosen the same regions so far share passes).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._masks import check_fill, masked_scores
from xfr_lib.explainers._occluders import (
    StackMasks,
    gaussian_windows,
    neutral_image,
    paint,
    scaled,
)

#: Defaults at 112 px: fine-grid spacing and window radius of the single methods.
SINGLE_STRIDE = 8
SINGLE_SIGMA = 8.0


def _scores(ex: Explainer, image: torch.Tensor, refs: torch.Tensor, masks: torch.Tensor,
            neutral: torch.Tensor, progress: bool | None = None) -> torch.Tensor:
    """``[R, N]`` scores of the chips ``neutral + masks * (image - neutral)``."""
    p = ex.params
    return torch.cat([s for _, s in masked_scores(
        ex.model, image, refs, StackMasks(masks), batch_size=p["batch_size"], fill=neutral,
        progress=p["progress"] if progress is None else progress, desc=ex.name,
    )], dim=1)


def single_values(ex: Explainer, image: torch.Tensor, refs: torch.Tensor,
                  windows: np.ndarray, mode: str, neutral: torch.Tensor
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """S- / S+ region values ``[R, K]`` and by-products; ``K + 1`` forward passes."""
    w = torch.from_numpy(windows)
    masks = 1.0 - w if mode == "removal" else w
    # One more chip: the unmodified image (removal) or the neutral image (aggregation).
    anchor = torch.ones_like(w[:1]) if mode == "removal" else torch.zeros_like(w[:1])
    s = _scores(ex, image, refs, torch.cat([anchor, masks]), neutral).numpy()
    base, scores = s[:, :1], s[:, 1:]
    values = base - scores if mode == "removal" else scores - base
    return values, {"base": base[:, 0], "scores": scores, "values": values,
                    "forward_passes": len(windows) + 1}


def greedy_values(ex: Explainer, image: torch.Tensor, refs: torch.Tensor,
                  windows: np.ndarray, mode: str, neutral: torch.Tensor, steps: int
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """Greedy removal / aggregation region values ``[R, K]`` (:func:`greedy_credit` of the
    gains, 0 for regions never chosen) and by-products (order, gains, score curve, forward
    passes: all chips run, shared by the references)."""
    r_count, k = len(refs), len(windows)
    w = torch.from_numpy(windows)
    removal = mode == "removal"
    anchor = torch.ones_like(w[:1]) if removal else torch.zeros_like(w[:1])
    current = _scores(ex, image, refs, anchor, neutral, progress=False)[:, 0].numpy().copy()
    start = current.copy()
    passes = 1
    chosen: list[list[int]] = [[] for _ in range(r_count)]
    gains: list[list[float]] = [[] for _ in range(r_count)]
    curve: list[list[float]] = [[float(c)] for c in current]
    from tqdm.auto import tqdm

    # One bar over the greedy steps, not one per step.
    for _ in tqdm(range(steps), disable=not ex.params["progress"], desc=f"{ex.name} steps",
                  leave=False):
        # References that have chosen the same regions so far share their candidate chips.
        groups: dict[tuple[int, ...], list[int]] = {}
        for r in range(r_count):
            groups.setdefault(tuple(chosen[r]), []).append(r)
        blocks, masks = [], []
        for sel, members in groups.items():
            rest = [j for j in range(k) if j not in sel]
            keep = torch.prod(1.0 - w[list(sel)], dim=0) if sel else torch.ones_like(w[0])
            cand = keep[None] * (1.0 - w[rest])  # visible part with each candidate also hidden
            masks.append(cand if removal else 1.0 - cand)
            blocks.append((members, rest))
        scores = _scores(ex, image, refs, torch.cat(masks), neutral, progress=False).numpy()
        passes += scores.shape[1]
        offset = 0
        for members, rest in blocks:
            for r in members:
                s = scores[r, offset : offset + len(rest)]
                # Ties go to the lowest region index (argmin/argmax take the first).
                i = int(np.argmin(s)) if removal else int(np.argmax(s))
                gain = current[r] - s[i] if removal else s[i] - current[r]
                chosen[r].append(rest[i])
                gains[r].append(float(gain))
                current[r] = s[i]
                curve[r].append(float(s[i]))
            offset += len(rest)
    values = np.zeros((r_count, k))
    for r in range(r_count):
        values[r, chosen[r]] = greedy_credit(np.array(gains[r]))
    return values, {"base": start, "values": values, "order": [np.array(c) for c in chosen],
                    "gains": [np.array(g) for g in gains],
                    "curve": [np.array(c) for c in curve], "forward_passes": passes}


def greedy_credit(gains: np.ndarray) -> np.ndarray:
    """Region values from the gains of a greedy run, in selection order: a region whose step
    raised the score (removal: lowered it) gets the positive gain still to come from its step
    on, ``sum_{u >= t} max(g_u, 0)``; one whose step went the wrong way keeps its gain
    (negative: dissimilarity).

    Why not the gain alone: face scores saturate (a cosine near 1 hardly moves), so the first,
    most important region often gains least and the map would peak on the last ones; and a
    region whose partner (the other eye) is removed later shares the partner's gain."""
    g = np.asarray(gains, dtype=np.float64)
    remaining = np.cumsum(np.maximum(g, 0.0)[::-1])[::-1]
    return np.where(g > 0, remaining, g)


def max_normalise(maps: np.ndarray) -> np.ndarray:
    """Each ``[H, W]`` map of ``[R, H, W]`` divided by its largest magnitude (all-zero maps
    stay 0)."""
    peak = np.abs(maps).reshape(len(maps), -1).max(1)
    return maps / np.where(peak > 0, peak, 1.0)[:, None, None]


class MeryExplainer(Explainer):
    """Shared parameters and region grids of Mery's family (not registered itself)."""

    def _check_common(self, params: dict[str, Any]) -> None:
        check_int(params, "batch_size", 1, "a positive batch size")
        params["fill"] = check_fill(params["fill"])
        params["progress"] = bool(params["progress"])

    def _resolve_single(self, params: dict[str, Any]) -> None:
        h, w = self.input_size
        if params["stride"] is None:
            params["stride"] = scaled(SINGLE_STRIDE, h, w)
        check_int(params, "stride", 1, "a positive grid spacing in px")
        if params["sigma"] is None:
            params["sigma"] = SINGLE_SIGMA * min(h, w) / 112
        check_number(params, "sigma", 0.0, math.inf, "a positive window radius in px",
                     open_low=True)

    def _resolve_greedy(self, params: dict[str, Any], sigma_key: str | None) -> None:
        h, w = self.input_size
        check_int(params, "grid", 1, "a positive number of regions per side, e.g. 5")
        if params["grid"] > min(h, w):
            raise XfrError(f"grid={params['grid']} is finer than the {min(h, w)} px input; "
                           "use at most one region per pixel")
        if sigma_key is not None:
            if params[sigma_key] is None:
                params[sigma_key] = min(h, w) / params["grid"] / 2.0
            check_number(params, sigma_key, 0.0, math.inf, "a positive window radius in px",
                         open_low=True)
        n = params["grid"] ** 2
        if params["steps"] is None:
            params["steps"] = n
        check_int(params, "steps", 1, f"between 1 and grid**2 = {n} greedy steps")
        if params["steps"] > n:
            raise XfrError(f"steps={params['steps']} exceeds the {n} regions of grid="
                           f"{params['grid']}; use at most {n}")

    def _single_windows(self) -> np.ndarray:
        return gaussian_windows(*self.input_size, self.params["stride"], self.params["sigma"])

    def _greedy_windows(self, sigma: float | None = None) -> np.ndarray:
        """The coarse grid's windows; ``sigma`` None = half a cell."""
        h, w = self.input_size
        # Square cells of the shorter side; a rectangular chip gets the same cell everywhere.
        cell = min(h, w) / self.params["grid"]
        return gaussian_windows(h, w, cell, cell / 2.0 if sigma is None else sigma)

    def _neutral(self, image: torch.Tensor) -> torch.Tensor:
        return neutral_image(image, self.params["fill"], seed=0, sigma=4.0)


def _extras(info: dict[str, Any], r_count: int) -> list[dict[str, Any]]:
    out = []
    for r in range(r_count):
        e: dict[str, Any] = {"forward_passes": info["forward_passes"],
                             "base_score": float(info["base"][r]),
                             "values": info["values"][r].astype(np.float32)}
        for key in ("order", "gains", "curve"):
            if key in info:
                e[key] = info[key][r]
        if "scores" in info:
            e["scores"] = info["scores"][r].astype(np.float32)
        out.append(e)
    return out


_COMMON = {"fill": "mean", "batch_size": 32, "progress": False}

_COMMON_DOC = """
        fill ("mean"): the neutral image, what hidden pixels show (the chip's mean colour;
            also "blur", "grey", "zero", "noise" (one fixed noise image) or a grey level).
        batch_size (32): perturbed chips per forward pass.
        progress (False): show a tqdm progress bar.
"""


class _Single(MeryExplainer):
    mode: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {"stride": None, "sigma": None, **_COMMON}

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        self._resolve_single(params)
        self._check_common(params)
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        windows = self._single_windows()
        values, info = single_values(self, image, references.float(), windows, self.mode,
                                     self._neutral(image))
        return SignedMaps(paint(values, windows), _extras(info, len(references)))


class _Greedy(MeryExplainer):
    mode: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {"grid": 5, "sigma": None, "steps": None, **_COMMON}

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        self._resolve_greedy(params, "sigma")
        self._check_common(params)
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        windows = self._greedy_windows(self.params["sigma"])
        values, info = greedy_values(self, image, references.float(), windows, self.mode,
                                     self._neutral(image), self.params["steps"])
        return SignedMaps(paint(values, windows), _extras(info, len(references)))


_SINGLE_DOC = """
    Parameters:
        stride (None): spacing of the window centres in px; None = 8 px at 112 px scaled to
            the input (11 px at 150 px): a 14 x 14 grid.
        sigma (None): the windows' Gaussian radius in px; None = 8 px at 112 px scaled.
""" + _COMMON_DOC

_GREEDY_DOC = """
    Parameters:
        grid (5): regions per side (grid**2 regions, cells of side/grid px).
        sigma (None): the windows' Gaussian radius; None = half a cell.
        steps (None): greedy steps (regions chosen); None = all grid**2.
""" + _COMMON_DOC


@METHODS.register("single_removal")
class SingleRemoval(_Single):
    __doc__ = """S- (Mery 2022): hide one Gaussian window at each grid position; a region's
    value is the drop of the score (negative: hiding it raises the score, dissimilarity).
    See :mod:`xfr_lib.explainers.mery`.
""" + _SINGLE_DOC + """
    Cost: 196 + 1 forward passes per image (14 x 14 windows, plus the unmodified chip), 394
    per pair at 112 and at 150 px (``extras["forward_passes"]``).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)  # two aligned chips (noise, for speed)
        >>> sr = SingleRemoval(model, stride=28)
        >>> maps = sr.signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["forward_passes"]
        ((1, 112, 112), 17)
    """
    summary = "S-: score drop when one Gaussian region is hidden (Mery 2022)"
    mode = "removal"


@METHODS.register("single_aggregation")
class SingleAggregation(_Single):
    __doc__ = """S+ (Mery 2022): show one Gaussian window alone on the neutral image; a
    region's value is the score obtained minus the neutral image's score (negative: showing
    it lowers the score, dissimilarity). See :mod:`xfr_lib.explainers.mery`.
""" + _SINGLE_DOC + """
    Cost: 196 + 1 forward passes per image (14 x 14 windows, plus the neutral image), 394
    per pair.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)
        >>> maps = SingleAggregation(model, stride=28).signed_maps(chips[0],
        ...                                                        model.embed(chips[1:]))
        >>> maps.signed.shape
        (1, 112, 112)
    """
    summary = "S+: score of one Gaussian region shown on a neutral image (Mery 2022)"
    mode = "aggregation"


@METHODS.register("greedy_removal")
class GreedyRemoval(_Greedy):
    __doc__ = """Greedy removal (Mery 2022): hide, one at a time, the region whose removal
    lowers the score most, accumulating hidden regions; a region's value is the score drop
    still to come from its step on (:func:`greedy_credit`; ``extras``: ``order``, ``gains``,
    ``curve``). See :mod:`xfr_lib.explainers.mery`.
""" + _GREEDY_DOC + """
    Cost: 1 + K + (K - 1) + ... + (K - steps + 1) forward passes per image for K = grid**2
    regions: 326 at the defaults (K = 25, all steps), 652 per pair.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)
        >>> gr = GreedyRemoval(model, grid=3, steps=2)
        >>> maps = gr.signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, maps.extras[0]["forward_passes"], len(maps.extras[0]["order"])
        ((1, 112, 112), 18, 2)
    """
    summary = "greedy removal of Gaussian regions; value = score drop when chosen (Mery 2022)"
    mode = "removal"


@METHODS.register("greedy_aggregation")
class GreedyAggregation(_Greedy):
    __doc__ = """Greedy aggregation (Mery 2022): starting from the neutral image, show, one
    at a time, the region that raises the score most, accumulating shown regions; a region's
    value is the score rise still to come from its step on (:func:`greedy_credit`). See
    :mod:`xfr_lib.explainers.mery`.
""" + _GREEDY_DOC + """
    Cost: as greedy removal, 326 forward passes per image at the defaults, 652 per pair.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)
        >>> maps = GreedyAggregation(model, grid=3, steps=2).signed_maps(
        ...     chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape
        (1, 112, 112)
    """
    summary = "greedy aggregation of Gaussian regions on a neutral image (Mery 2022)"
    mode = "aggregation"


def four_maps(ex: MeryExplainer, image: torch.Tensor, references: torch.Tensor
              ) -> tuple[dict[str, np.ndarray], int]:
    """The S-, S+, greedy-removal and greedy-aggregation signed maps ``[R, H, W]`` by name,
    and the forward passes they took."""
    refs = references.float()
    neutral = ex._neutral(image)
    fine, coarse = ex._single_windows(), ex._greedy_windows(ex.params["greedy_sigma"])
    maps, passes = {}, 0
    for name, fn, windows, mode in (
        ("single_removal", single_values, fine, "removal"),
        ("single_aggregation", single_values, fine, "aggregation"),
        ("greedy_removal", greedy_values, coarse, "removal"),
        ("greedy_aggregation", greedy_values, coarse, "aggregation"),
    ):
        args = () if fn is single_values else (ex.params["steps"],)
        values, info = fn(ex, image, refs, windows, mode, neutral, *args)
        maps[name] = paint(values, windows)
        passes += info["forward_passes"]
    return maps, passes


@METHODS.register("mery_average")
class MeryAverage(MeryExplainer):
    """The average of Mery's four maps (as in From Pixels to Words): the mean of the S-, S+,
    greedy-removal and greedy-aggregation signed maps, each divided by its largest magnitude
    (so the result is in [-1, 1]; its sign defines similarity and dissimilarity). See
    :mod:`xfr_lib.explainers.mery`.

    Parameters:
        stride (None), sigma (None): the single methods' grid and window (see
            ``single_removal``).
        grid (4): the greedy methods' regions per side. 4, not the greedy methods' own 5, so
            that the four maps together stay near 5 s per pair on dlib_resnet29.
        greedy_sigma (None): the greedy windows' radius; None = half a cell.
        steps (None): greedy steps; None = all grid**2.
        fill ("mean"), batch_size (32), progress (False): as for the other methods.

    Cost per image: 197 + 197 + 137 + 137 = 668 forward passes at the defaults, 1336 per pair.
    ``extras`` holds the four normalised maps (``single_removal``, ...).

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> chips = torch.rand(2, 3, 112, 112)
        >>> avg = MeryAverage(model, stride=28, grid=2)
        >>> maps = avg.signed_maps(chips[0], model.embed(chips[1:]))
        >>> maps.signed.shape, float(abs(maps.signed).max()) <= 1.0
        ((1, 112, 112), True)
    """

    summary = "mean of the four max-normalised maps of Mery's family"
    defaults: ClassVar[dict[str, Any]] = {
        "stride": None, "sigma": None, "grid": 4, "greedy_sigma": None, "steps": None,
        **_COMMON,
    }

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        self._resolve_single(params)
        self._resolve_greedy(params, "greedy_sigma")
        self._check_common(params)
        return params

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        maps, passes = four_maps(self, image, references)
        normed = {k: max_normalise(v) for k, v in maps.items()}
        signed = np.mean(list(normed.values()), axis=0)
        extras = [{"forward_passes": passes, **{k: v[r].astype(np.float32)
                                                for k, v in normed.items()}}
                  for r in range(len(references))]
        return SignedMaps(signed, extras)
