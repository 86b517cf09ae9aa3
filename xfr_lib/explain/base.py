"""The interface shared by every explanation method of xfr.

An explanation method is a subclass of :class:`Explainer` with a ``name``, a dict of parameter
``defaults`` and one hook, :meth:`Explainer.side_maps`, that computes the maps of one image
against one or more reference embeddings. Everything else is shared and final: turning
paths, photos and chips into aligned chips, checking parameters, scoring the pair, the
verification and identification protocols and the result objects.

Glossary: a *pair* is (image A, image B); a *probe* is compared with the images of a
*gallery*; a *reference* is the embedding an image is compared with; the *score* is the cosine
similarity of two embeddings; a *similarity map* shows where an image makes the score higher,
a *dissimilarity map* where it makes the score lower. Maps are non-negative float32 arrays at
the model's aligned input resolution.

Black-box methods (``black_box = True``) call only ``model.embed`` and ``model.input_size``
(and ``model.align`` when given unaligned photos), so any object with those works.

Example:
    >>> from xfr_lib.explain import explain
    >>> expl = explain("corrrise", model, "a.jpg", "b.jpg", n=500, seed=0)  # doctest: +SKIP
    >>> expl.similarity_a.shape == tuple(model.input_size)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import ImageError, UnknownNameError, XfrError

#: An image as accepted by :func:`explain`: a path, an HxWx3 uint8 photo, or an aligned chip
#: as a ``[3, H, W]`` float tensor in [0, 1].
ImageInput = str | Path | np.ndarray | torch.Tensor

#: The four maps of a verification explanation, in this order.
MAP_NAMES = ("similarity_a", "dissimilarity_a", "similarity_b", "dissimilarity_b")


# --------------------------------------------------------------------------------------------
# Results


def map_summary(saliency: np.ndarray, top: float = 0.10) -> dict[str, Any]:
    """Numbers that describe a non-negative map: max, mean, peak and concentration.

    Args:
        saliency: ``[H, W]`` non-negative map.
        top: fraction of pixels for the mass share (0.10: the top 10 %).

    Returns:
        ``max``, ``mean``, ``top10_mass`` (share of the map's total in its top ``top`` pixels;
        ``top`` itself for a flat map, 0 for an empty one) and ``peak`` ``[row, col]``.
    """
    flat = np.asarray(saliency, dtype=np.float64).ravel()
    total = float(flat.sum())
    k = max(1, round(top * flat.size))
    share = float(np.partition(flat, flat.size - k)[-k:].sum() / total) if total > 0 else 0.0
    row, col = np.unravel_index(int(np.argmax(flat)), saliency.shape)
    key = f"top{round(top * 100)}_mass"
    return {"max": float(flat.max()), "mean": float(flat.mean()), key: share,
            "peak": [int(row), int(col)]}


@dataclass
class VerificationExplanation:
    """Why a model accepts or rejects a pair: four saliency maps and the decision.

    Attributes:
        similarity_a: where A is similar to B (non-negative float32 ``[H, W]``).
        dissimilarity_a: where A is dissimilar to B.
        similarity_b: where B is similar to A.
        dissimilarity_b: where B is dissimilar to A.
        score: cosine similarity of the two unmodified chips.
        threshold: the model's decision threshold (NaN if the model has none).
        decision: True = same person (``score >= threshold``); None without a threshold.
        method: registry name of the explanation method.
        params: every parameter that produced the maps, defaults and seed included.
        model: the model's name.
        chip_a: aligned chip of A, HxWx3 uint8 RGB.
        chip_b: aligned chip of B.
        source_a: where A came from (path or a description).
        source_b: where B came from.
        extras: method-specific arrays (e.g. CorrRISE's signed correlation maps and scores).
    """

    similarity_a: np.ndarray
    dissimilarity_a: np.ndarray
    similarity_b: np.ndarray
    dissimilarity_b: np.ndarray
    score: float
    threshold: float
    decision: bool | None
    method: str
    params: dict[str, Any]
    model: str
    chip_a: np.ndarray
    chip_b: np.ndarray
    source_a: str = ""
    source_b: str = ""
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """The four maps by name (:data:`MAP_NAMES`)."""
        return {name: getattr(self, name) for name in MAP_NAMES}

    def summary(self) -> dict[str, dict[str, Any]]:
        """:func:`map_summary` of each of the four maps."""
        return {name: map_summary(m) for name, m in self.maps.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (no arrays): decision, provenance and map summaries."""
        return {
            "task": "verification",
            "method": self.method,
            "model": self.model,
            "score": float(self.score),
            "threshold": _json_float(self.threshold),
            "decision": self.decision,
            "params": _jsonable(self.params),
            "image_a": self.source_a,
            "image_b": self.source_b,
            "input_size": list(self.similarity_a.shape),
            "maps": self.summary(),
        }


@dataclass
class IdentificationMatch:
    """One of the top-K gallery entries of an identification explanation.

    Attributes:
        rank: 1 for the best match.
        index: position of the entry in the gallery.
        identity: the entry's identity label.
        score: cosine similarity between probe and entry.
        decision: whether the score passes the model's threshold (None without threshold).
        similarity_probe: where the probe is similar to this entry.
        dissimilarity_probe: where the probe is dissimilar to this entry.
        similarity_gallery: where the entry is similar to the probe.
        dissimilarity_gallery: where the entry is dissimilar to the probe.
        chip: the entry's aligned chip (uint8).
        source: where the entry came from.
    """

    rank: int
    index: int
    identity: str
    score: float
    decision: bool | None
    similarity_probe: np.ndarray
    dissimilarity_probe: np.ndarray
    similarity_gallery: np.ndarray
    dissimilarity_gallery: np.ndarray
    chip: np.ndarray
    source: str = ""

    @property
    def maps(self) -> dict[str, np.ndarray]:
        names = ("similarity_probe", "dissimilarity_probe", "similarity_gallery",
                 "dissimilarity_gallery")
        return {name: getattr(self, name) for name in names}

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "index": self.index, "identity": self.identity,
            "score": float(self.score), "decision": self.decision, "source": self.source,
            "maps": {name: map_summary(m) for name, m in self.maps.items()},
        }


@dataclass
class IdentificationExplanation:
    """Why a probe's top-K gallery matches are what they are: maps for each probe-match pair.

    Attributes:
        matches: the top-K entries, best first (:class:`IdentificationMatch`).
        probe_chip: the probe's aligned chip (uint8).
        threshold: the model's threshold (NaN if none).
        method: registry name of the explanation method.
        params: every parameter that produced the maps.
        model: the model's name.
        k: how many matches were asked for.
        gallery_size: number of gallery entries ranked.
        probe_source: where the probe came from.
        ranking: indices of all gallery entries, best first; ``scores`` in the same order.
        scores: cosine similarities of the probe with all entries, in ``ranking`` order.
    """

    matches: list[IdentificationMatch]
    probe_chip: np.ndarray
    threshold: float
    method: str
    params: dict[str, Any]
    model: str
    k: int
    gallery_size: int
    probe_source: str = ""
    ranking: np.ndarray | None = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: the ranked matches with their map summaries."""
        return {
            "task": "identification",
            "method": self.method,
            "model": self.model,
            "threshold": _json_float(self.threshold),
            "k": self.k,
            "gallery_size": self.gallery_size,
            "probe": self.probe_source,
            "params": _jsonable(self.params),
            "input_size": list(self.probe_chip.shape[:2]),
            "matches": [m.to_dict() for m in self.matches],
        }


# --------------------------------------------------------------------------------------------
# Inputs


def model_device(model: Any) -> torch.device:
    """The device of a model's parameters, or CPU for a model without parameters."""
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            return next(iter(params())).device
        except StopIteration:
            pass
    return torch.device("cpu")


def model_name(model: Any) -> str:
    """A model's registry name, or its class name."""
    return str(getattr(model, "name", type(model).__name__))


def model_threshold(model: Any) -> float:
    """A model's cosine threshold, NaN if it has none."""
    value = getattr(model, "threshold", None)
    return float("nan") if value is None else float(value)


def describe_input(image: ImageInput) -> str:
    """A short name for an input image: its path, or its kind and shape."""
    if isinstance(image, (str, Path)):
        return str(image)
    kind = "tensor" if isinstance(image, torch.Tensor) else "array"
    return f"<{kind} {'x'.join(str(d) for d in getattr(image, 'shape', ()))}>"


def prepare_image(image: ImageInput, model: Any) -> torch.Tensor:
    """Turn a path, a photo or a chip into the model's aligned ``[3, H, W]`` float chip.

    Tensors are taken as aligned chips (``[3, H, W]`` or ``[1, 3, H, W]``, in [0, 1]) and only
    checked against ``model.input_size``. Paths and arrays are photos: they are aligned with
    ``model.align`` when the model has it; a model without ``align`` accepts only arrays or
    files that already have its input size.

    Raises:
        ImageError: wrong shape, range or type, or no way to align the image.
    """
    size = tuple(int(v) for v in model.input_size)
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3 or tuple(x.shape[1:]) != size:
            raise ImageError(
                f"chip tensor of shape {list(image.shape)} does not fit {model_name(model)}: "
                f"pass an aligned [3, {size[0]}, {size[1]}] tensor or a photo to align"
            )
        if not x.is_floating_point():
            raise ImageError(
                f"chip tensor has dtype {x.dtype}; pass floats in [0, 1] (chip_to_tensor does it)"
            )
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ImageError(
                f"chip tensor values span [{lo:.3g}, {hi:.3g}]; expected RGB floats in [0, 1]"
            )
        return x.float().clamp(0, 1).cpu()
    if not isinstance(image, (str, Path, np.ndarray)):
        raise ImageError(
            f"cannot use a {type(image).__name__} as an image; pass a path, an HxWx3 uint8 "
            "array or a [3, H, W] float tensor"
        )
    align = getattr(model, "align", None)
    if callable(align):
        x = align(image)
        return x.detach().float().cpu()
    from xfr_lib.faces.image import load_image

    rgb = load_image(image)
    if rgb.shape[:2] != size:
        raise ImageError(
            f"{describe_input(image)}: {model_name(model)} cannot align photos (no align()) and "
            f"the image is {rgb.shape[1]}x{rgb.shape[0]}, not its input size "
            f"{size[1]}x{size[0]}; pass an aligned chip"
        )
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0)


def to_chip(x: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] -> HxWx3 uint8."""
    return x.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def embed_images(model: Any, chips: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """L2-normalised embeddings ``[B, D]`` (float32, on CPU) of chips ``[B, 3, H, W]``."""
    device = model_device(model)
    out = []
    for start in range(0, len(chips), batch_size):
        emb = model.embed(chips[start : start + batch_size].to(device)).float()
        out.append(torch.nn.functional.normalize(emb, dim=1).cpu())
    return torch.cat(out)


class SimilarityTarget:
    """The pair score as a differentiable target for gradient methods (Grad-CAM, FGGB, ...).

    ``SimilarityTarget(reference)(embedding)`` is the cosine similarity between each row of
    ``embedding`` (``[B, D]``, from the explained forward pass) and a fixed ``reference``
    embedding (``[D]``), negated with ``sign=-1`` for dissimilarity maps. The reference must be
    computed outside the explained forward pass (and detached): a siamese forward that runs a
    hooked layer twice makes hook-based tools such as Captum attribute the second call.

    Args:
        reference: ``[D]`` embedding of the other image.
        sign: +1 for the similarity score, -1 for its negation.
    """

    def __init__(self, reference: torch.Tensor, sign: float = 1.0) -> None:
        self.reference = torch.nn.functional.normalize(reference.detach().float().reshape(-1),
                                                       dim=0)
        self.sign = float(sign)

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        emb = torch.nn.functional.normalize(embedding.float(), dim=-1)
        return self.sign * (emb * self.reference.to(emb.device)).sum(-1)


@dataclass
class Gallery:
    """Images with identities, optionally with their embeddings already computed.

    Only the top-K entries are aligned and explained, so a large gallery with precomputed
    ``embeddings`` costs K alignments, not one per entry.

    Args:
        items: images (paths, HxWx3 uint8 photos or aligned ``[3, H, W]`` chips).
        identities: one label per item; default: the file stem of a path, else ``"#i"``.
        embeddings: optional ``[len(items), D]`` L2-normalised embeddings of the items' chips,
            computed with the same model.
    """

    items: Sequence[ImageInput]
    identities: Sequence[str] | None = None
    embeddings: np.ndarray | torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.items = list(self.items)
        if not self.items:
            raise XfrError("the gallery is empty; pass at least one image")
        if self.identities is None:
            self.identities = [
                Path(it).stem if isinstance(it, (str, Path)) else f"#{i}"
                for i, it in enumerate(self.items)
            ]
        self.identities = [str(v) for v in self.identities]
        if len(self.identities) != len(self.items):
            raise XfrError(
                f"the gallery has {len(self.items)} images but {len(self.identities)} "
                "identities; pass one identity per image"
            )
        if self.embeddings is not None:
            emb = self.embeddings
            emb = (emb.detach().float().cpu() if isinstance(emb, torch.Tensor)
                   else torch.as_tensor(np.asarray(emb), dtype=torch.float32))
            if emb.ndim != 2 or len(emb) != len(self.items):
                raise XfrError(
                    f"gallery embeddings have shape {list(emb.shape)}; expected "
                    f"[{len(self.items)}, D], one row per image"
                )
            self.embeddings = torch.nn.functional.normalize(emb, dim=1)

    @classmethod
    def from_any(cls, gallery: Any) -> Gallery:
        """A :class:`Gallery` from a Gallery, a list of images, a ``[N, 3, H, W]`` stack of
        chips, a list of ``(identity, image)`` pairs, or a mapping identity -> image(s)."""
        if isinstance(gallery, Gallery):
            return gallery
        if isinstance(gallery, Mapping):
            items, ids = [], []
            for identity, value in gallery.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                items += list(values)
                ids += [str(identity)] * len(values)
            return cls(items, ids)
        if isinstance(gallery, torch.Tensor) and gallery.ndim == 4:
            return cls(list(gallery))  # a stack of aligned chips [N, 3, H, W]
        if isinstance(gallery, (str, Path, np.ndarray, torch.Tensor)):
            raise XfrError(
                "the gallery must be a list of images (or a Gallery), not a single "
                f"{type(gallery).__name__}"
            )
        entries = list(gallery)
        if entries and all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str)
                           for e in entries):
            return cls([e[1] for e in entries], [e[0] for e in entries])
        return cls(entries)


# --------------------------------------------------------------------------------------------
# Explainers


@dataclass
class SideMaps:
    """Maps of one image against ``R`` references: ``similarity`` and ``dissimilarity``
    ``[R, H, W]`` (non-negative float32) and per-reference method extras (``extras[r]``)."""

    similarity: np.ndarray
    dissimilarity: np.ndarray
    extras: list[dict[str, Any]] = field(default_factory=list)


class Explainer:
    """Base class of explanation methods: subclasses set the class attributes and implement
    :meth:`side_maps` (and, if they need them, :meth:`resolve_params` and :meth:`pair_maps`).

    Attributes:
        name: registry name (``list_methods()``).
        defaults: parameter name -> default value; the only parameters accepted.
        black_box: True if only ``model.embed``/``model.input_size`` are used.
        summary: one line describing the method (shown by the CLI).
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    black_box: ClassVar[bool] = True
    summary: ClassVar[str] = ""

    def __init__(self, model: Any, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise UnknownNameError(f"{self.name} parameter", unknown[0], sorted(self.defaults))
        for attr in ("embed", "input_size"):
            if not hasattr(model, attr):
                raise XfrError(
                    f"{type(model).__name__} has no {attr}; explainers need a model with "
                    "embed(x) and input_size (see xfr_lib.load_model)"
                )
        self.model = model
        self.device = model_device(model)
        self.input_size = tuple(int(v) for v in model.input_size)
        self.params = self.resolve_params({**self.defaults, **params})

    # Hooks ----------------------------------------------------------------------------------

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter values and fill derived defaults (e.g. sizes that scale with the
        input); return the parameters to record. Raise :class:`XfrError` on bad values."""
        return params

    def side_maps(self, image: torch.Tensor, references: torch.Tensor) -> SideMaps:
        """Maps of ``image`` (aligned ``[3, H, W]`` in [0, 1], CPU) explaining its score with
        each row of ``references`` (``[R, D]`` L2-normalised embeddings, CPU)."""
        raise NotImplementedError

    def pair_maps(
        self, a: torch.Tensor, b: torch.Tensor, emb_a: torch.Tensor, emb_b: torch.Tensor
    ) -> tuple[SideMaps, SideMaps]:
        """Maps of A against B and of B against A; methods that perturb both images at once
        override this. ``emb_a``/``emb_b`` are ``[D]`` embeddings of the unmodified chips."""
        return self.side_maps(a, emb_b[None]), self.side_maps(b, emb_a[None])

    # Shared protocol ------------------------------------------------------------------------

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``[B, 3, H, W]`` chips in batches of ``batch_size`` (CPU, float32)."""
        return embed_images(self.model, chips, int(self.params.get("batch_size", 32)))

    def explain(self, image_a: ImageInput, image_b: ImageInput) -> VerificationExplanation:
        """Explain the verification of the pair (A, B); see :func:`explain`."""
        a, b = prepare_image(image_a, self.model), prepare_image(image_b, self.model)
        emb = self.embed(torch.stack([a, b]))
        score = float((emb[0] * emb[1]).sum())
        side_a, side_b = self.pair_maps(a, b, emb[0], emb[1])
        threshold = model_threshold(self.model)
        extras = {f"{k}_a": v for k, v in (side_a.extras[0] if side_a.extras else {}).items()}
        extras |= {f"{k}_b": v for k, v in (side_b.extras[0] if side_b.extras else {}).items()}
        return VerificationExplanation(
            similarity_a=_clean(side_a.similarity[0]),
            dissimilarity_a=_clean(side_a.dissimilarity[0]),
            similarity_b=_clean(side_b.similarity[0]),
            dissimilarity_b=_clean(side_b.dissimilarity[0]),
            score=score,
            threshold=threshold,
            decision=None if math.isnan(threshold) else bool(score >= threshold),
            method=self.name,
            params=dict(self.params),
            model=model_name(self.model),
            chip_a=to_chip(a),
            chip_b=to_chip(b),
            source_a=describe_input(image_a),
            source_b=describe_input(image_b),
            extras=extras,
        )

    def explain_identification(
        self, probe: ImageInput, gallery: Gallery | Sequence[Any] | Mapping[str, Any], k: int = 5
    ) -> IdentificationExplanation:
        """Explain the top-``k`` gallery matches of ``probe``; see :func:`explain_identification`.

        The probe is explained once against all K match embeddings together (a black-box
        method shares its perturbed probe's forward passes across the K references), and each
        match against the probe. With the same parameters, the maps of a match equal those of
        :meth:`explain` on the pair (probe, match).
        """
        gal = Gallery.from_any(gallery)
        if int(k) != k or k < 1:
            raise XfrError(f"k={k} must be a positive integer (how many top matches to explain)")
        k = min(int(k), len(gal.items))
        p = prepare_image(probe, self.model)
        emb_p = self.embed(p[None])[0]
        chips: dict[int, torch.Tensor] = {}
        if gal.embeddings is not None:
            emb_g = gal.embeddings
            if emb_g.shape[1] != emb_p.shape[0]:
                raise XfrError(
                    f"gallery embeddings have {emb_g.shape[1]} dimensions but "
                    f"{model_name(self.model)} makes {emb_p.shape[0]}; embed the gallery with "
                    "the same model"
                )
        else:
            for i, item in enumerate(gal.items):
                chips[i] = prepare_image(item, self.model)
            emb_g = self.embed(torch.stack([chips[i] for i in range(len(gal.items))]))
        scores = (emb_g @ emb_p).numpy()
        # Stable sort: ties keep gallery order, so rankings are reproducible.
        ranking = np.argsort(-scores, kind="stable")
        top = [int(i) for i in ranking[:k]]
        for i in top:
            if i not in chips:
                chips[i] = prepare_image(gal.items[i], self.model)
        if gal.embeddings is None:
            emb_top = emb_g[top]
        else:  # precomputed embeddings only choose the top K; explain with this model's own
            emb_top = self.embed(torch.stack([chips[i] for i in top]))
        probe_side = self.side_maps(p, emb_top)
        threshold = model_threshold(self.model)
        matches = []
        for r, i in enumerate(top):
            g_side = self.side_maps(chips[i], emb_p[None])
            score = float(scores[i])
            matches.append(IdentificationMatch(
                rank=r + 1, index=i, identity=gal.identities[i], score=score,
                decision=None if math.isnan(threshold) else bool(score >= threshold),
                similarity_probe=_clean(probe_side.similarity[r]),
                dissimilarity_probe=_clean(probe_side.dissimilarity[r]),
                similarity_gallery=_clean(g_side.similarity[0]),
                dissimilarity_gallery=_clean(g_side.dissimilarity[0]),
                chip=to_chip(chips[i]), source=describe_input(gal.items[i]),
            ))
        return IdentificationExplanation(
            matches=matches, probe_chip=to_chip(p), threshold=threshold, method=self.name,
            params=dict(self.params), model=model_name(self.model), k=k,
            gallery_size=len(gal.items), probe_source=describe_input(probe),
            ranking=ranking, scores=scores[ranking],
        )


_REGISTRY: dict[str, type[Explainer]] = {}


def register_explainer(cls: type[Explainer]) -> type[Explainer]:
    """Class decorator: make an :class:`Explainer` available under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


# Modules of this package that hold infrastructure, not methods.
_NOT_METHODS = {"base", "masks", "report"}


def _import_methods() -> None:
    # Every other module of xfr_lib.explain is a method that registers itself on import, so a
    # new method is one new file.
    package = importlib.import_module("xfr_lib.explain")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in _NOT_METHODS:
            importlib.import_module(f"xfr_lib.explain.{info.name}")


def list_methods() -> list[str]:
    """Names of the available explanation methods."""
    _import_methods()
    return sorted(_REGISTRY)


def method_info(method: str) -> dict[str, Any]:
    """What the CLI and notebooks show about a method: name, one-line summary, whether it is
    black-box, and its parameters with their defaults (``None`` = derived from the model).

    Raises:
        UnknownNameError: unknown method.
    """
    _import_methods()
    if method not in _REGISTRY:
        raise UnknownNameError("method", method, sorted(_REGISTRY))
    cls = _REGISTRY[method]
    return {"name": cls.name, "summary": cls.summary, "black_box": cls.black_box,
            "defaults": dict(cls.defaults)}


def get_explainer(method: str, model: Any, **params: Any) -> Explainer:
    """An :class:`Explainer` for ``method`` bound to ``model``, with checked ``params``.

    Raises:
        UnknownNameError: unknown method or parameter (the message lists the valid ones).
    """
    _import_methods()
    if method not in _REGISTRY:
        raise UnknownNameError("method", method, sorted(_REGISTRY))
    return _REGISTRY[method](model, **params)


def explain(
    method: str, model: Any, image_a: ImageInput, image_b: ImageInput, **params: Any
) -> VerificationExplanation:
    """Explain a face-verification decision with four saliency maps.

    Args:
        method: an explanation method (``list_methods()``), e.g. ``"corrrise"``.
        model: a face model (``xfr_lib.load_model``), or any object with ``embed`` and
            ``input_size`` for black-box methods.
        image_a: path, HxWx3 uint8 photo (aligned with ``model.align``) or aligned
            ``[3, H, W]`` float chip in [0, 1] (used as is).
        image_b: the other image, same forms.
        **params: the method's parameters (``get_explainer(...).params`` lists them with
            their defaults); an unknown name raises :class:`UnknownNameError`.

    Returns:
        A :class:`VerificationExplanation` with maps at the model's input resolution.
    """
    return get_explainer(method, model, **params).explain(image_a, image_b)


def explain_identification(
    method: str,
    model: Any,
    probe: ImageInput,
    gallery: Gallery | Sequence[Any] | Mapping[str, Any],
    k: int = 5,
    **params: Any,
) -> IdentificationExplanation:
    """Explain the top-``k`` matches of a probe in a gallery.

    The gallery is ranked by cosine similarity to the probe; for each of the top ``k``
    entries the result holds the probe's and the entry's similarity and dissimilarity maps.

    Args:
        method: an explanation method (``list_methods()``).
        model: a face model (see :func:`explain`).
        probe: the probe image (same forms as in :func:`explain`).
        gallery: a :class:`Gallery` (items, identities, optional precomputed embeddings), a
            list of images, a list of ``(identity, image)`` pairs, or a mapping
            identity -> image(s).
        k: how many top matches to explain (at most the gallery's size).
        **params: the method's parameters.
    """
    return get_explainer(method, model, **params).explain_identification(probe, gallery, k)


def _clean(m: np.ndarray) -> np.ndarray:
    # The contract of every map: finite, non-negative float32.
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(m, 0.0)


def _json_float(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return _json_float(float(v))
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)
