"""The model-randomisation sanity check of Adebayo et al. (2018) for any explanation method.

An explanation that describes the *model* must change when the model does. The check explains
the same pairs with the trained model and with copies whose learned weights are random, and
compares each map with its trained-model counterpart: a faithful method's maps change a lot
(rank correlation and structural similarity near 0); a method whose maps barely change is
showing something that does not depend on what the model learned (the image's edges or
brightness, the shape of its own perturbations).

What is randomised, and how: :func:`xfr_lib.evaluate.randomized_copy` (its module,
``xfr_lib/evaluate/_sanity.py``, tabulates the distributions). Every learned tensor of the
randomised layers is *re-drawn*: convolution and linear weights He-normal with the gain of the
next non-linearity, small biases and shifts, affine scales around 1, PReLU slopes in
[0, 0.5]; fixed input-normalisation constants are kept. This is not PyTorch's own
re-initialisation (``reset_parameters``), which on these models makes the embedding
independent of the input, so that every map of a black-box method would be empty; and not a
shuffle of the trained weights. Two schemes:

* ``"all"``: every layer re-drawn at once;
* ``"top k"``: Adebayo et al.'s *cascading* randomisation, only the ``k`` layers nearest the
  output re-drawn (the rest trained); the copy with ``top=k`` equals the fully randomised one
  in those ``k`` layers, so the cascade adds layers to the same random draw.

How maps are compared: :func:`xfr_lib.evaluate.spearman` (rank correlation of the pixels; NaN
when a map is constant, e.g. all zero) and :func:`map_ssim` (structural similarity, SSIM, of
the two maps each scaled to [0, 1] by its own maximum; NaN when a map is all zero). Both are 1
for identical maps.

What to expect from a perturbation method. Its map is built from how the model's score reacts
when parts of the image are hidden, and how much hiding a part changes the *input* depends on
the image (hiding a bright pixel changes more than hiding a dark one, hiding an edge more than
hiding a flat patch). So part of a perturbation map can come from the image itself, and a
randomised model can still produce a map that resembles the trained model's on some pairs and
not on others: report the distribution over pairs and maps (what :func:`randomisation_check`
returns), not one example.

Example:
    >>> import math
    >>> import numpy as np
    >>> m = np.outer(np.hanning(32), np.hanning(32))
    >>> round(map_ssim(m, m), 6), round(map_ssim(m, 3 * m), 6), math.isnan(map_ssim(m, 0 * m))
    (1.0, 1.0, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity
from tqdm.auto import tqdm

from xfr_lib.errors import XfrError
from xfr_lib.evaluate._sanity import randomization_layers, randomized_copy
from xfr_lib.evaluate._stability import spearman
from xfr_lib.explainers import MAP_NAMES, get_explainer
from xfr_lib.faces import chip_to_tensor

#: SSIM's window side (scikit-image's default), made smaller (odd) for smaller maps.
SSIM_WINDOW = 7


def map_ssim(map1: np.ndarray, map2: np.ndarray) -> float:
    """Structural similarity (SSIM) of two non-negative maps, each scaled to [0, 1] by its max.

    Each map is divided by its own maximum, so the comparison ignores the maps' overall scale
    (a randomised model's scores change far less than the trained model's, and so do the
    magnitudes of its maps); then :func:`skimage.metrics.structural_similarity` with
    ``data_range=1`` and a 7x7 window (the largest odd window that fits in smaller maps).

    Args:
        map1: ``[H, W]`` non-negative map (a similarity or dissimilarity map).
        map2: another one, same shape.

    Returns:
        SSIM in [-1, 1] (1 = the same map up to scale); NaN when either map is all zero (it has
        no maximum to scale by, and no structure).

    Raises:
        XfrError: shapes differ, a map is not 2-D, not finite, or has negative values, or the
            maps are smaller than 3 px on a side.
    """
    a = np.asarray(map1, dtype=np.float64)
    b = np.asarray(map2, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise XfrError(f"maps of shapes {list(a.shape)} and {list(b.shape)} cannot be compared; "
                       f"SSIM needs two HxW maps of the same shape")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise XfrError("a map contains NaN or inf")
    if (a < 0).any() or (b < 0).any():
        raise XfrError("SSIM of maps scaled by their maximum needs non-negative maps (a "
                       "similarity or dissimilarity map, not a signed one)")
    win = min(SSIM_WINDOW, *a.shape)
    win -= 1 - win % 2  # odd
    if win < 3:
        raise XfrError(f"maps of shape {list(a.shape)} are too small for SSIM (3 px at least)")
    if a.max() == 0 or b.max() == 0:
        return float("nan")
    return float(structural_similarity(a / a.max(), b / b.max(), data_range=1.0, win_size=win))


def _chip(chip: Any) -> torch.Tensor:
    if isinstance(chip, torch.Tensor):
        return chip
    arr = np.asarray(chip)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise XfrError(f"pairs need aligned HxWx3 uint8 chips (e.g. EmbeddingSet.chips[i]), got "
                       f"{arr.dtype} {list(arr.shape)}")
    return chip_to_tensor(arr)


def _schemes(model: Any, cascade: Sequence[int]) -> list[tuple[str, int | None, int]]:
    """``(label, top, layers randomised)`` of the full randomisation and each cascade step."""
    layers = randomization_layers(model)
    for k in cascade:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or not 1 <= k <= len(layers):
            raise XfrError(f"cascade value {k!r} must be a number of top layers from 1 to "
                           f"{len(layers)} (the model's layers: randomization_layers(model))")
    return [("all", None, len(layers))] + [(f"top {int(k)}", int(k), int(k)) for k in cascade]


def _record(model: Any, seed: int, top: int | None) -> dict[str, Any]:
    return {"model": str(getattr(model, "name", type(model).__name__)), "seed": int(seed),
            "top": top}


def randomised_copies(model: Any, cascade: Sequence[int] = (1, 2, 4),
                      seed: int = 0) -> dict[str, Any]:
    """The randomised copies :func:`randomisation_check` explains with, built once to share.

    Building a copy costs a deep copy of the model and a forward pass to check it, so a
    notebook that checks several methods builds them once and passes them to every call
    (``randomisation_check(..., copies=copies)``).

    Args:
        model: the trained face model; left unchanged.
        cascade: numbers of top layers to randomise (see :func:`randomisation_check`).
        seed: seed of the random weights.

    Returns:
        ``{"all": randomized_copy(model, seed), "top k": randomized_copy(model, seed, top=k),
        ...}``; each copy records how it was made (its ``xfr_randomisation`` attribute).
    """
    out = {}
    for label, top, _ in _schemes(model, cascade):
        copy = randomized_copy(model, seed=seed, top=top)
        copy.xfr_randomisation = _record(model, seed, top)
        out[label] = copy
    return out


def randomisation_check(model: Any, method: str, pairs: Sequence[tuple[str, Any, Any]], *,
                        params: Mapping[str, Any] | None = None,
                        cascade: Sequence[int] = (1, 2, 4), seed: int = 0,
                        progress: bool = False,
                        copies: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Explain pairs with the trained model and randomised copies; compare the maps.

    Each randomised copy is built once (not once per pair): all layers re-drawn
    (``randomized_copy(model, seed)``) and, for each ``k`` of ``cascade``, the top ``k``
    layers (``randomized_copy(model, seed, top=k)``). Every model is explained with the same
    method parameters, the method's seed included, so masks, samples and grids are the same
    and only the model differs.

    Args:
        model: the trained face model (:func:`xfr_lib.load_model`); left unchanged.
        method: an explanation method (:func:`xfr_lib.list_methods`).
        pairs: ``(label, chip_a, chip_b)``: aligned ``HxWx3`` uint8 chips (e.g.
            ``EmbeddingSet.chips[i]``; ``[3, H, W]`` float tensors in [0, 1] are used as they
            are).
        params: the method's parameters (default: its defaults).
        cascade: numbers of top layers to randomise, each at most
            ``len(randomization_layers(model))``; empty: only the full randomisation.
        seed: seed of the random weights (:func:`randomized_copy`); not the method's seed,
            which comes from ``params``.
        progress: show a progress bar.
        copies: randomised copies made by :func:`randomised_copies` with the same ``model``,
            ``seed`` and cascade steps, used instead of building them (to share them between
            methods); a randomisation missing from it is built here.

    Returns:
        One row per pair, randomisation and map (:data:`xfr_lib.explainers.MAP_NAMES`):
        ``pair``, ``method``, ``model``, ``randomisation`` (``"all"`` or ``"top k"``),
        ``layers randomised`` (how many of the model's layers), ``map``, ``spearman`` and
        ``ssim`` (trained-model map against randomised-model map; NaN for a constant or an
        all-zero map), ``score trained`` and ``score randomised`` (the pair's cosine
        similarity on each model). ``attrs["params"]`` holds the method's parameters as
        resolved (defaults and derived values filled in), ``attrs["layers"]`` the model's
        layer names in forward order.

    Raises:
        XfrError: no pairs, a chip that is not an aligned uint8 chip, a bad ``cascade`` value,
            a copy in ``copies`` made with another seed or cascade step, or an unknown method
            or parameter.
    """
    if not pairs:
        raise XfrError("randomisation_check needs at least one pair (label, chip_a, chip_b)")
    params = dict(params or {})
    layers = randomization_layers(model)
    schemes = _schemes(model, cascade)
    copies = dict(copies or {})
    for label, top, _ in schemes:
        made = getattr(copies.get(label), "xfr_randomisation", None)
        if label in copies and made != _record(model, seed, top):
            raise XfrError(f"copies[{label!r}] was not made by randomised_copies from this "
                           f"model with seed={seed} (it records {made}); build the copies "
                           f"with the same model, seed and cascade")
    chips = [(str(label), _chip(a), _chip(b)) for label, a, b in pairs]
    trained = get_explainer(method, model, **params)
    reference = [trained.explain(a, b) for _, a, b in chips]
    bar = tqdm(total=len(schemes) * len(chips), disable=not progress, desc=f"{method} sanity",
               leave=False)
    rows = []
    for label, top, count in schemes:
        random_model = (copies[label] if label in copies
                        else randomized_copy(model, seed=seed, top=top))
        explainer = get_explainer(method, random_model, **params)
        if repr(explainer.params) != repr(trained.params):
            raise XfrError(f"{method}'s parameters differ between the trained model "
                           f"({trained.params}) and its randomised copy ({explainer.params}); "
                           f"pass them explicitly in params")
        for (pair, a, b), expl in zip(chips, reference, strict=True):
            rand = explainer.explain(a, b)
            for name in MAP_NAMES:
                m1, m2 = getattr(expl, name), getattr(rand, name)
                rows.append({
                    "pair": pair, "method": method, "model": expl.model,
                    "randomisation": label, "layers randomised": count, "map": name,
                    "spearman": spearman(m1, m2), "ssim": map_ssim(m1, m2),
                    "score trained": expl.score, "score randomised": rand.score,
                })
            bar.update()
    bar.close()
    out = pd.DataFrame(rows)
    out.attrs["params"] = dict(trained.params)
    out.attrs["layers"] = list(layers)
    return out
