"""The base class of every explanation method, and the helpers a method's file uses.

A method is a subclass of :class:`Explainer`, registered under its name
(``@METHODS.register("name")``), with a dict of parameter ``defaults`` and one function of
substance, :meth:`Explainer.signed_maps`: the *signed* map of one image against one or more
reference embeddings, positive where the image makes its score with the reference higher,
negative where it makes it lower. Everything else is shared and final: turning paths, photos
and chips into aligned chips, checking the maps (shape, finiteness: a NaN or an infinity is an
error, never a zero), splitting each signed map into a similarity map (its positive part) and a
dissimilarity map (the magnitude of its negative part), scoring the pair, the verification and
identification protocols and the result objects.

Black-box methods (``black_box = True``) call only ``model.embed`` and ``model.input_size``
(and ``model.align`` when given unaligned photos), so any object with those works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.explainers._inputs import (
    Gallery,
    ImageInput,
    describe_input,
    model_name,
    prepare_image,
)
from xfr_lib.explainers._results import (
    IdentificationExplanation,
    IdentificationMatch,
    VerificationExplanation,
)
from xfr_lib.faces import FaceChoice, tensor_to_chip
from xfr_lib.models import embed, model_device


@dataclass
class SignedMaps:
    """Signed maps of one image against ``R`` references, as a method's hook returns them.

    Attributes:
        signed: ``[R, H, W]``: positive where the image makes its score with reference ``r``
            higher (similarity), negative where it makes it lower (dissimilarity).
        extras: per reference, the method's own by-products (e.g. CorrRISE's raw
            correlations and masked scores), recorded in the explanation's ``extras``.
    """

    signed: np.ndarray
    extras: list[dict[str, Any]] = field(default_factory=list)


class Explainer:
    """Base class of explanation methods: set the class attributes, implement
    :meth:`signed_maps` (and, if needed, :meth:`resolve_params` and :meth:`pair_maps`).

    Attributes:
        name: registry name (set by ``METHODS.register``; ``list_methods()``).
        defaults: parameter name -> default value; the only parameters accepted.
        black_box: True if only ``model.embed``/``model.input_size`` are used.
        summary: one line describing the method (``xfr methods`` prints it).
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

    def signed_maps(self, image: torch.Tensor, references: torch.Tensor) -> SignedMaps:
        """The signed maps of ``image`` (aligned ``[3, H, W]`` in [0, 1], CPU) explaining its
        score with each row of ``references`` (``[R, D]`` L2-normalised embeddings, CPU)."""
        raise NotImplementedError

    def pair_maps(self, a: torch.Tensor, b: torch.Tensor, emb_a: torch.Tensor,
                  emb_b: torch.Tensor) -> tuple[SignedMaps, SignedMaps]:
        """Signed maps of A against B and of B against A; methods that perturb both images at
        once override this. ``emb_a``/``emb_b`` are ``[D]`` embeddings of the unmodified chips."""
        return self.signed_maps(a, emb_b[None]), self.signed_maps(b, emb_a[None])

    # Shared protocol ------------------------------------------------------------------------

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``[B, 3, H, W]`` chips in batches of ``batch_size`` (CPU, float32)."""
        return embed(self.model, chips, int(self.params.get("batch_size", 32)))

    def split(self, maps: SignedMaps, n_refs: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Check a hook's signed maps and split them: ``(similarity, dissimilarity)``, each
        ``[R, H, W]`` non-negative float32.

        Raises:
            XfrError: wrong shape, or NaN / infinite values (naming method, model and image).
        """
        signed = np.asarray(maps.signed)
        expected = (n_refs, *self.input_size)
        if signed.shape != expected:
            raise XfrError(f"{self.name} on {model_name(self.model)} returned maps of shape "
                           f"{list(signed.shape)} for {what}, expected {list(expected)}")
        bad = ~np.isfinite(signed)
        if bad.any():
            raise XfrError(
                f"{self.name} on {model_name(self.model)}: the map of {what} has "
                f"{int(np.isnan(signed).sum())} NaN and {int(np.isinf(signed).sum())} infinite "
                f"values of {signed.size}; check that the model's embeddings of this image are "
                f"finite (model.embed) and the method's parameters"
            )
        signed = signed.astype(np.float32, copy=False)
        return np.maximum(signed, 0.0), np.maximum(-signed, 0.0)

    def explain(self, image_a: ImageInput, image_b: ImageInput, *, face_a: FaceChoice = None,
                face_b: FaceChoice = None) -> VerificationExplanation:
        """Explain the verification of the pair (A, B); see :func:`xfr_lib.explain`."""
        a = prepare_image(image_a, self.model, face_a)
        b = prepare_image(image_b, self.model, face_b)
        emb = self.embed(torch.stack([a, b]))
        score = float((emb[0] * emb[1]).sum())
        side_a, side_b = self.pair_maps(a, b, emb[0], emb[1])
        sim_a, dis_a = self.split(side_a, 1, "image A")
        sim_b, dis_b = self.split(side_b, 1, "image B")
        threshold = _threshold(self.model)
        extras = {f"{k}_a": v for k, v in (side_a.extras[0] if side_a.extras else {}).items()}
        extras |= {f"{k}_b": v for k, v in (side_b.extras[0] if side_b.extras else {}).items()}
        return VerificationExplanation(
            similarity_a=sim_a[0], dissimilarity_a=dis_a[0],
            similarity_b=sim_b[0], dissimilarity_b=dis_b[0],
            score=score, threshold=threshold,
            decision=None if math.isnan(threshold) else bool(score >= threshold),
            method=self.name, params=dict(self.params), model=model_name(self.model),
            chip_a=tensor_to_chip(a), chip_b=tensor_to_chip(b),
            source_a=describe_input(image_a), source_b=describe_input(image_b),
            extras=extras, face_a=face_a, face_b=face_b,
        )

    def explain_identification(
        self, probe: ImageInput, gallery: Gallery | Sequence[Any] | Mapping[str, Any],
        k: int = 5, *, face: FaceChoice = None,
    ) -> IdentificationExplanation:
        """Explain the top-``k`` gallery matches of ``probe``; see
        :func:`xfr_lib.explain_identification`.

        The probe is explained once against all K match embeddings together (a black-box
        method shares its perturbed probe's forward passes across the K references), and each
        match against the probe. With the same parameters, the maps of a match equal those of
        :meth:`explain` on the pair (probe, match).
        """
        gal = Gallery.from_any(gallery)
        if int(k) != k or k < 1:
            raise XfrError(f"k={k} must be a positive integer (how many top matches to explain)")
        k = min(int(k), len(gal.items))
        p = prepare_image(probe, self.model, face)
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
        sim_p, dis_p = self.split(self.signed_maps(p, emb_top), len(top), "the probe")
        threshold = _threshold(self.model)
        matches = []
        for r, i in enumerate(top):
            sim_g, dis_g = self.split(self.signed_maps(chips[i], emb_p[None]), 1,
                                      f"gallery entry {i}")
            score = float(scores[i])
            matches.append(IdentificationMatch(
                rank=r + 1, index=i, identity=gal.identities[i], score=score,
                decision=None if math.isnan(threshold) else bool(score >= threshold),
                similarity_probe=sim_p[r], dissimilarity_probe=dis_p[r],
                similarity_gallery=sim_g[0], dissimilarity_gallery=dis_g[0],
                chip=tensor_to_chip(chips[i]), source=describe_input(gal.items[i]),
            ))
        return IdentificationExplanation(
            matches=matches, probe_chip=tensor_to_chip(p), threshold=threshold,
            method=self.name, params=dict(self.params), model=model_name(self.model), k=k,
            gallery_size=len(gal.items), probe_source=describe_input(probe),
            ranking=ranking, scores=scores[ranking], probe_face=face,
        )


# --- parameter checks for methods -----------------------------------------------------------

def check_int(params: dict[str, Any], key: str, minimum: int, what: str) -> None:
    """Make ``params[key]`` an int of at least ``minimum``, or raise :class:`XfrError`
    saying it should be ``what``."""
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise XfrError(f"{key}={value!r} is invalid; use {what}")
    params[key] = int(value)


def check_number(params: dict[str, Any], key: str, low: float, high: float, what: str,
                 open_low: bool = False) -> None:
    """Make ``params[key]`` a float in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    value = params[key]
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and math.isfinite(float(value)) and float(value) <= high \
        and (float(value) > low if open_low else float(value) >= low)
    if not ok:
        raise XfrError(f"{key}={value!r} is invalid; use {what}")
    params[key] = float(value)


def _threshold(model: Any) -> float:
    value = getattr(model, "threshold", None)
    return float("nan") if value is None else float(value)
