"""What an explanation returns: the maps, the decision they explain and how they were made.

Glossary: a *pair* is (image A, image B); a *probe* is compared with the images of a
*gallery*; a *reference* is the embedding an image is compared with; the *score* is the cosine
similarity of two embeddings; a *similarity map* shows where an image makes the score higher,
a *dissimilarity map* where it makes the score lower. Maps are non-negative float32 arrays at
the model's aligned input resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
        face_a: which face of photo A was used (None: the largest, or a chip was given).
        face_b: the same for B.
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
    face_a: Any = None
    face_b: Any = None

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
            "face_a": _jsonable(self.face_a),
            "face_b": _jsonable(self.face_b),
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
        probe_face: which face of the probe photo was used (None: the largest).
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
    probe_face: Any = None

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
            "probe_face": _jsonable(self.probe_face),
            "params": _jsonable(self.params),
            "input_size": list(self.probe_chip.shape[:2]),
            "matches": [m.to_dict() for m in self.matches],
        }



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
