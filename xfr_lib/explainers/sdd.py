"""SDD-CAM: Scaled Directed Divergence of class maps (arXiv 2505.03837), for identity classifiers.

A class map shows where an image supports a class; for faces, the classes a probe is confused
with are supported by much the same regions (the eyes, the nose), so the target's map says
little about what sets this person apart. SDD subtracts the competitors' maps from the
target's:

    D = F * x_t - sum_{k in S} x_k,        SDD = exp(alpha * D)    (the paper's formula (3))

with ``x_t`` the target class's map, ``x_k`` the maps of the ``|S|`` competing classes (the
most probable other classes; the paper: 5), ``F`` a scale balancing one map against the sum of
``|S|`` and ``alpha`` an amplification. The paper calls F and alpha adaptive, within
``[|S|, 50]`` and ``[0.2, 0.4]``, without giving the rules (ALGORITHMS.md). xfr's rules, both
overridable with numbers (``scale=``, ``alpha=``):

* ``F = clip(sum_k mean|x_k| / mean|x_t|, |S|, 50)``: the scaled target weighs as much as its
  competitors together, and at least ``|S|`` times itself (so |S| maps equal to the target's
  cancel it exactly);
* ``alpha = clip(2 / max(D), 0.2, 0.4)``: the map's peak ``exp(alpha max D)`` is e^2 (about
  7.4) times its level where nothing diverges, as far as the paper's range allows.

The maps enter with one common normalisation (divided by the largest ``|x_t|``), so their
relative magnitudes, which F balances, are kept.

What xfr shows, and how it ranks. ``exp(alpha D)`` is positive everywhere; xfr's SDD map is
``max(exp(alpha D) - 1, 0)``: zero wherever the target's scaled evidence does not exceed its
competitors' (``D <= 0``: "suppressed"), the paper's ordering elsewhere. The deletion and
retention evaluations rank pixels by ``D`` itself, which is the ranking of the paper's
``exp(alpha D)`` (exp is increasing), so neither xfr's display choice nor alpha changes them.

Class maps. The paper computes CAM from its network's last convolutional map and output
weights. Neither of xfr's models has a global-average-pooled map before a linear classifier at
a useful resolution (their last maps are 8x8 and 7x7 cells of 16-19 px; dlib's is followed by
a 2x2 stage), so the class maps are gradient maps of the class logit at an earlier layer
(``layer=None``: the coarsest layer with at least 14 cells a side, :func:`class_map_layer`:
dlib ``block_17x17``, SFace ``conv_14x14``, cells of about 9 and 8 px, so that an eye and an
eyebrow fall in different cells). Two kinds, both from the same forward and backward pass:

* ``gradcam``: Grad-CAM, ``sum_c mean_ij(g_c) A_c`` (the channel weights are the mean gradient);
* ``hirescam``: the CAM-style map ``sum_c g_c * A_c`` (HiResCAM, Draelos & Carin 2020), which
  equals CAM exactly when the layer is followed by global average pooling and a linear layer.

``base`` chooses which feeds SDD (default ``hirescam``, the paper's CAM where it is defined).
The class logit is ``scale * cos(f(x), w_c)`` (:mod:`xfr_lib.classify`), so a class map is the
pair-score map of :mod:`xfr_lib.explainers._gradients` with reference ``w_c``, times ``scale``.
Class maps are signed; the figures show their positive parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers._explainer import check_int
from xfr_lib.explainers._gradients import (
    layer_activations_and_gradients,
    layer_module,
    require_gradients,
    resolve_layer,
    upsample,
    usable_layers,
)
from xfr_lib.explainers._inputs import ImageInput, describe_input, prepare_image
from xfr_lib.faces import FaceChoice, tensor_to_chip
from xfr_lib.models import model_device

#: The class-map kinds (see the module docstring).
CLASS_MAPS = ("gradcam", "hirescam")
#: The parameters of SDD-CAM and their defaults (:func:`explain_class`).
SDD_DEFAULTS: dict[str, Any] = {
    "competitors": 5, "layer": None, "base": "hirescam", "scale": "adaptive",
    "alpha": "adaptive", "min_cells": 14,
}
#: The paper's ranges of the adaptive scale (lower end: the number of competitors) and alpha.
SCALE_MAX = 50.0
ALPHA_RANGE = (0.2, 0.4)
SUMMARY = ("SDD-CAM: a class map minus its competitors' maps, scaled and exponentiated, for an "
           "identity classifier (xfr identify --method sdd)")


def class_map_layer(model: Any, min_cells: int = 14) -> str:
    """The default layer of class maps: the coarsest usable layer of ``model`` whose map has
    at least ``min_cells`` cells a side (the finest one if none has).

    The layers' sizes are read from one forward pass of a grey chip.
    """
    layers = usable_layers(model)
    if not layers:
        raise XfrError(f"{getattr(model, 'name', type(model).__name__)} has no convolutional "
                       f"layers for class maps")
    sizes: dict[str, int] = {}
    handles = []
    for label in layers:
        def hook(_m, _i, out, label=label):
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                sizes[label] = min(out.shape[-2:])
        handles.append(layer_module(model, label).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.embed(torch.full((1, 3, *model.input_size), 0.5, device=model_device(model)))
    finally:
        for h in handles:
            h.remove()
    fine_enough = [lab for lab in layers if sizes.get(lab, 0) >= min_cells]
    if fine_enough:
        return min(fine_enough, key=lambda lab: sizes[lab])
    return max(sizes, key=sizes.get) if sizes else next(iter(layers))


def check_sdd_params(classifier: Any, params: dict[str, Any]) -> dict[str, Any]:
    """SDD-CAM's parameters with defaults and the resolved layer; one-line errors."""
    unknown = sorted(set(params) - set(SDD_DEFAULTS))
    if unknown:
        raise XfrError(f"unknown sdd parameter {unknown[0]!r}; use {', '.join(SDD_DEFAULTS)}")
    p = {**SDD_DEFAULTS, **params}
    backbone = classifier.backbone
    require_gradients(backbone, "sdd")
    check_int(p, "competitors", 1, "a positive number of competing classes (the paper: 5)")
    if p["competitors"] >= len(classifier.classes):
        raise XfrError(f"competitors={p['competitors']}: the classifier has "
                       f"{len(classifier.classes)} classes, so at most "
                       f"{len(classifier.classes) - 1} can compete with the target")
    check_int(p, "min_cells", 1, "a positive number of cells a side")
    if p["base"] not in CLASS_MAPS:
        raise XfrError(f"base={p['base']!r} is unknown; use one of {', '.join(CLASS_MAPS)}")
    for key, low, high in (("scale", float(p["competitors"]), SCALE_MAX),
                           ("alpha", *ALPHA_RANGE)):
        v = p[key]
        if v == "adaptive":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 \
                or not math.isfinite(v):
            raise XfrError(f"{key}={v!r} is invalid; use 'adaptive' or a positive number "
                           f"(the paper's range: {low:g} to {high:g})")
        p[key] = float(v)
    p["layer"] = (class_map_layer(backbone, p["min_cells"]) if p["layer"] is None
                  else resolve_layer(backbone, p["layer"]))
    return p


def sdd_map(target: np.ndarray, competitors: np.ndarray, scale: float | str = "adaptive",
            alpha: float | str = "adaptive") -> dict[str, Any]:
    """Scaled Directed Divergence of a target class map against its competitors' maps.

    Args:
        target: ``[H, W]`` signed class map of the target.
        competitors: ``[S, H, W]`` class maps of the competing classes.
        scale: F, or ``"adaptive"`` (see the module docstring).
        alpha: the amplification, or ``"adaptive"``.

    Returns:
        ``{"sdd": max(exp(alpha D) - 1, 0), "divergence": D, "scale": F, "alpha": alpha}``,
        maps ``[H, W]`` float32 (D in units of the target's largest ``|x_t|``).

    Example:
        >>> x = np.random.default_rng(0).random((8, 8))
        >>> out = sdd_map(x, np.stack([x, x]))        # two competitors equal to the target
        >>> out["scale"], float(np.abs(out["sdd"]).max())
        (2.0, 0.0)
    """
    t = np.asarray(target, dtype=np.float64)
    c = np.asarray(competitors, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != t.shape or len(c) == 0:
        raise XfrError(f"sdd_map needs [S, H, W] competitor maps matching the target's "
                       f"{list(t.shape)}, got {list(c.shape)}")
    peak = float(np.abs(t).max())
    if not peak > 0:  # no evidence for the target anywhere: nothing can diverge
        zero = np.zeros_like(t, dtype=np.float32)
        return {"sdd": zero, "divergence": zero.copy(), "scale": float("nan"),
                "alpha": float("nan")}
    t, c = t / peak, c / peak
    n = len(c)
    if scale == "adaptive":
        ratio = float(np.abs(c).mean(axis=(1, 2)).sum() / np.abs(t).mean())
        scale = float(np.clip(ratio, n, SCALE_MAX))
    d = float(scale) * t - c.sum(axis=0)
    if alpha == "adaptive":
        top = float(d.max())
        alpha = float(np.clip(2.0 / top, *ALPHA_RANGE)) if top > 0 else ALPHA_RANGE[1]
    sdd = np.maximum(np.expm1(float(alpha) * d), 0.0)
    return {"sdd": sdd.astype(np.float32), "divergence": d.astype(np.float32),
            "scale": float(scale), "alpha": float(alpha)}


def class_maps(classifier: Any, chip: torch.Tensor, classes: list[int],
               layer: str) -> dict[str, np.ndarray]:
    """Signed class maps of one chip for several classes, from one forward and backward pass.

    Args:
        classifier: an :class:`~xfr_lib.classify.IdentityClassifier`.
        chip: aligned ``[3, H, W]`` in [0, 1].
        classes: class numbers.
        layer: a layer label or dotted path of the backbone.

    Returns:
        ``{"gradcam": [K, H, W], "hirescam": [K, H, W]}`` float32, upsampled to the chip, in
        logit units (the pair-score gradient times the classifier's scale), and the same at
        the layer's resolution under ``"gradcam_cells"``/``"hirescam_cells"``.
    """
    backbone = classifier.backbone
    device = model_device(backbone)
    refs = classifier.weights[list(classes)].detach().cpu()
    act, grad, _ = layer_activations_and_gradients(backbone, layer, chip, refs, device)
    grad = grad * classifier.scale
    cells = {"gradcam": (grad.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1),
             "hirescam": (grad * act).sum(dim=1)}
    size = tuple(classifier.input_size)
    out = {}
    for kind, m in cells.items():
        out[kind] = upsample(m.float(), size).cpu().numpy().astype(np.float32)
        out[f"{kind}_cells"] = m.float().cpu().numpy()
    return out


@dataclass
class ClassExplanation:
    """Why a classifier gives a probe its class: class maps and SDD for the target class.

    Attributes:
        chip: the probe's aligned chip (uint8).
        target: the explained class (a person).
        predicted: the classifier's top class.
        competitors: the competing classes, most probable first.
        probabilities: person -> probability, for the target and competitors.
        maps: ``[H, W]`` maps of the target: ``sdd`` (shown), ``divergence`` (D, which ranks),
            ``gradcam`` and ``hirescam`` (signed class maps).
        competitor_maps: ``gradcam`` / ``hirescam`` -> ``[S, H, W]`` signed maps of the
            competitors.
        params: every parameter, resolved (layer; the F and alpha used under
            ``scale_used``/``alpha_used``).
        model: the classifier's name.
        source: where the probe came from.
        extras: the target's and competitors' class maps at the layer's resolution
            (``gradcam_cells``, ``hirescam_cells``: ``[1 + S, h, w]``, target first).
    """

    chip: np.ndarray
    target: str
    predicted: str
    competitors: list[str]
    probabilities: dict[str, float]
    maps: dict[str, np.ndarray]
    competitor_maps: dict[str, np.ndarray]
    params: dict[str, Any]
    model: str
    source: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def layer_cells(self) -> tuple[int, int]:
        """``(h, w)``: the class maps' resolution at their layer (before upsampling)."""
        return tuple(int(v) for v in self.extras["hirescam_cells"].shape[-2:])

    def ranking_map(self, kind: str) -> np.ndarray:
        """The map that ranks pixels for deletion / retention: ``sdd`` -> D; a class map
        (``gradcam``, ``hirescam``) -> itself (signed)."""
        if kind == "sdd":
            return self.maps["divergence"]
        if kind in CLASS_MAPS:
            return self.maps[kind]
        raise XfrError(f"map {kind!r} is unknown; use sdd or one of {', '.join(CLASS_MAPS)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (map summaries, not pixels; class maps: their positive parts)."""
        from xfr_lib.explainers._results import _jsonable, map_summary

        shown = {"sdd": self.maps["sdd"],
                 **{k: np.maximum(self.maps[k], 0) for k in CLASS_MAPS}}
        return {
            "task": "classification", "method": "sdd", "model": self.model,
            "probe": self.source, "target": self.target, "predicted": self.predicted,
            "competitors": self.competitors,
            "probabilities": {k: round(float(v), 6) for k, v in self.probabilities.items()},
            "params": _jsonable(self.params),
            "maps": {k: map_summary(m) for k, m in shown.items()},
        }


def explain_class(classifier: Any, probe: ImageInput, target: str | None = None, *,
                  face: FaceChoice = None, **params: Any) -> ClassExplanation:
    """Explain a classifier's class for a probe with SDD-CAM, its class maps beside it.

    Args:
        classifier: an :class:`~xfr_lib.classify.IdentityClassifier`
            (:func:`xfr_lib.classify.train_classifier`).
        probe: a photo path, an HxWx3 uint8 photo or an aligned ``[3, H, W]`` chip.
        target: the person to explain; None = the predicted class.
        face: which face of the photo (see :func:`xfr_lib.explain`).
        **params: ``competitors`` (5), ``layer`` (None: :func:`class_map_layer`), ``base``
            (``hirescam`` or ``gradcam``: the maps SDD is made of), ``scale`` and ``alpha``
            (``"adaptive"`` or numbers), ``min_cells`` (14).

    Cost: one forward and one backward pass of ``competitors + 1`` copies of the probe.
    """
    p = check_sdd_params(classifier, params)
    chip = prepare_image(probe, classifier.backbone, face)
    probs = classifier.probabilities(chip[None])[0]
    order = np.argsort(-probs, kind="stable")
    predicted = classifier.classes[int(order[0])]
    t = classifier.class_index(predicted if target is None else target)
    rivals = [int(i) for i in order if i != t][:p["competitors"]]
    maps = class_maps(classifier, chip, [t, *rivals], p["layer"])
    out = sdd_map(maps[p["base"]][0], maps[p["base"]][1:], p["scale"], p["alpha"])
    names = [classifier.classes[i] for i in rivals]
    return ClassExplanation(
        chip=tensor_to_chip(chip), target=classifier.classes[t], predicted=predicted,
        competitors=names,
        probabilities={classifier.classes[i]: float(probs[i]) for i in [t, *rivals]},
        maps={"sdd": out["sdd"], "divergence": out["divergence"],
              "gradcam": maps["gradcam"][0], "hirescam": maps["hirescam"][0]},
        competitor_maps={k: maps[k][1:] for k in CLASS_MAPS},
        params={**p, "scale_used": out["scale"], "alpha_used": out["alpha"]},
        model=classifier.name, source=describe_input(probe),
        extras={f"{k}_cells": maps[f"{k}_cells"] for k in CLASS_MAPS},
    )
