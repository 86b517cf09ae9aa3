"""The region table of one pair: the data every sentence and answer about the pair comes from.

:func:`pair_table` measures a verification explanation on the facial regions of both images
(:func:`xfr_lib.faces.face_regions`, coarse regions: eyes, brows, nose, mouth, cheeks,
forehead, chin and outside the face) and puts it beside the decision and its calibrated
confidence (:mod:`xfr_lib.words._calibration`). Per region:

* ``similarity`` / ``dissimilarity``: the region's share of the similarity (dissimilarity)
  maps' mass, the mean of images A and B (``*_a``, ``*_b``: each image's own share). NaN when
  the method gave no mass of that kind (e.g. a pair with no dissimilarity);
* ``area``: the region's share of the chip (mean of A and B);
* ``importance``: the mean share over every map of the explanation that has mass, so the
  regions that mattered least are those that held little of either kind;
* ``ratio``: importance / area (above 1: more than an even spread would put there).

Shares sum to 1 over the regions for every map with mass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xfr_lib.errors import XfrError
from xfr_lib.explainers import VerificationExplanation
from xfr_lib.faces import REGION_GROUPS, chip_landmarks, face_regions, region_shares
from xfr_lib.words._calibration import ScoreCalibration, confidence_level

#: The regions of a table, in this order (the coarse regions of :data:`REGION_GROUPS`).
TABLE_REGIONS = tuple(REGION_GROUPS)
KINDS = ("similarity", "dissimilarity")
COLUMNS = ("region", "area", "similarity", "dissimilarity", "importance", "ratio",
           "similarity_a", "similarity_b", "dissimilarity_a", "dissimilarity_b")


@dataclass(frozen=True)
class PairTable:
    """A pair's decision, its confidence and its region table (see the module doc).

    Attributes:
        score: cosine similarity of the pair.
        threshold: the threshold the decision is taken at (the model's unless changed with
            :meth:`at_threshold`).
        decision: True = same person (``score >= threshold``).
        evidence: nats of likelihood ratio between the score and the threshold.
        confidence: ``sigmoid(|evidence|)`` in [0.5, 1).
        level: "low", "moderate" or "high".
        regions: one row per region of :data:`TABLE_REGIONS`, columns :data:`COLUMNS`.
        calibration: the score model behind ``evidence``.
        model: the face model's name.
        method: the explanation method.
        params: the method's parameters.
        image_a: where A came from.
        image_b: where B came from.
    """

    score: float
    threshold: float
    decision: bool
    evidence: float
    confidence: float
    level: str
    regions: pd.DataFrame = field(repr=False)
    calibration: ScoreCalibration = field(repr=False)
    model: str = ""
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    image_a: str = ""
    image_b: str = ""

    @property
    def model_threshold(self) -> float:
        return self.calibration.threshold

    def has(self, kind: str) -> bool:
        """Whether the explanation has any mass of ``kind`` ("similarity", "dissimilarity")."""
        return bool(self.regions[kind].notna().any())

    def ranked(self, column: str = "importance", image: str | None = None) -> pd.DataFrame:
        """Regions by ``column`` (largest first; ties in table order), rows without a value
        left out. ``image`` ("A" or "B") ranks by that image's own shares."""
        col = column if image is None or column not in KINDS else f"{column}_{image.lower()}"
        if col not in self.regions:
            raise XfrError(f"unknown table column {col!r}; choose one of {', '.join(COLUMNS)}")
        rows = self.regions[self.regions[col].notna()]
        return rows.sort_values(col, ascending=False, kind="stable").reset_index(drop=True)

    def row(self, region: str) -> pd.Series:
        """The table row of one region (a name of :data:`TABLE_REGIONS`)."""
        hit = self.regions[self.regions["region"] == region]
        if hit.empty:
            raise XfrError(f"unknown region {region!r}; choose one of {', '.join(TABLE_REGIONS)}")
        return hit.iloc[0]

    def at_threshold(self, threshold: float) -> PairTable:
        """The same pair decided at another threshold (decision and confidence follow)."""
        t = float(threshold)
        evidence = self.calibration.evidence(self.score, t)
        confidence = self.calibration.confidence(self.score, t)
        return replace(self, threshold=t, decision=bool(self.score >= t), evidence=evidence,
                       confidence=confidence, level=confidence_level(confidence))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: decision, confidence, calibration and the region table (NaN -> None)."""
        rows = self.regions.astype(object).where(self.regions.notna(), None)
        return {"score": self.score, "threshold": self.threshold, "decision": self.decision,
                "evidence": self.evidence, "confidence": self.confidence, "level": self.level,
                "model": self.model, "method": self.method, "params": self.params,
                "image_a": self.image_a, "image_b": self.image_b,
                "calibration": self.calibration.to_dict(),
                "regions": rows.to_dict(orient="records")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairTable:
        regions = pd.DataFrame(data["regions"], columns=list(COLUMNS))
        regions[list(COLUMNS[1:])] = regions[list(COLUMNS[1:])].astype(float)
        return cls(score=float(data["score"]), threshold=float(data["threshold"]),
                   decision=bool(data["decision"]), evidence=float(data["evidence"]),
                   confidence=float(data["confidence"]), level=data["level"],
                   regions=regions, calibration=ScoreCalibration.from_dict(data["calibration"]),
                   model=data.get("model", ""), method=data.get("method", ""),
                   params=data.get("params", {}), image_a=data.get("image_a", ""),
                   image_b=data.get("image_b", ""))


def region_columns(maps: dict[str, np.ndarray], landmarks_a: np.ndarray,
                   landmarks_b: np.ndarray) -> pd.DataFrame:
    """The region table's rows from the four maps (``similarity_a`` ...) and both images'
    landmarks; see the module doc."""
    out = pd.DataFrame({"region": list(TABLE_REGIONS)})
    areas = []
    for image, landmarks in (("a", landmarks_a), ("b", landmarks_b)):
        m = maps[f"similarity_{image}"]
        regions = face_regions(landmarks, m.shape)
        for kind in KINDS:
            shares = region_shares(maps[f"{kind}_{image}"], regions).set_index("region")
            out[f"{kind}_{image}"] = shares.loc[list(TABLE_REGIONS), "mass"].to_numpy()
        areas.append(shares.loc[list(TABLE_REGIONS), "area"].to_numpy())
    out["area"] = np.mean(areas, axis=0)
    each = out[[f"{k}_{i}" for k in KINDS for i in "ab"]].to_numpy()
    with np.errstate(invalid="ignore"):
        for kind in KINDS:
            out[kind] = out[[f"{kind}_a", f"{kind}_b"]].mean(axis=1, skipna=True)
        has_mass = ~np.isnan(each).all(axis=0)
        out["importance"] = (np.nanmean(each[:, has_mass], axis=1) if has_mass.any()
                             else np.nan)
    out["ratio"] = out["importance"] / out["area"]
    return out[list(COLUMNS)]


def pair_table(expl: VerificationExplanation, calibration: ScoreCalibration, *,
               landmarks_a: np.ndarray | None = None,
               landmarks_b: np.ndarray | None = None) -> PairTable:
    """The decision, confidence and region table of one verification explanation.

    Args:
        expl: the explanation (any method of ``list_methods()``).
        calibration: the model's score calibration (:func:`calibrate`).
        landmarks_a: ``[68, 2]`` landmarks of A's chip (default: found in the chip,
            :func:`xfr_lib.faces.chip_landmarks`).
        landmarks_b: the same for B.
    """
    if calibration.model and expl.model and calibration.model != expl.model:
        raise XfrError(f"the calibration is of model {calibration.model!r} but the explanation "
                       f"of {expl.model!r}; calibrate the model that made the explanation")
    la = chip_landmarks(expl.chip_a) if landmarks_a is None else landmarks_a
    lb = chip_landmarks(expl.chip_b) if landmarks_b is None else landmarks_b
    regions = region_columns(expl.maps, la, lb)
    t = float(expl.threshold) if np.isfinite(expl.threshold) else calibration.threshold
    confidence = calibration.confidence(expl.score, t)
    return PairTable(score=float(expl.score), threshold=t, decision=bool(expl.score >= t),
                     evidence=calibration.evidence(expl.score, t), confidence=confidence,
                     level=confidence_level(confidence), regions=regions,
                     calibration=calibration, model=expl.model, method=expl.method,
                     params=expl.to_dict()["params"], image_a=expl.source_a, image_b=expl.source_b)


def table_for_pair(method: str, model: Any, image_a: Any, image_b: Any, *,
                   calibration: ScoreCalibration | None = None, face_a: Any = None,
                   face_b: Any = None, cache: bool | str | Path = True,
                   **params: Any) -> PairTable:
    """Explain a pair and tabulate it, reusing a stored table when nothing changed.

    The table (not the maps) of two image *files* is stored as JSON under
    ``<xfr cache>/tables`` (or the folder ``cache``), keyed by both files' bytes, the faces
    chosen, the model's weights, the method and its parameters, the calibration and xfr's
    version, so a second question about the same pair (``xfr ask``) skips the explanation.

    Args:
        method: an explanation method (``list_methods()``).
        model: the face model.
        image_a: path or image (arrays are explained every time, not stored).
        image_b: the other image.
        calibration: the model's calibration (default :func:`calibrate` on ORL).
        face_a: which face of photo A (see :func:`xfr_lib.explain`).
        face_b: the same for B.
        cache: True, a folder, or False (always explain).
        **params: the method's parameters.
    """
    import xfr_lib
    from xfr_lib import __version__
    from xfr_lib._io import atomic_write_text, read_cached_json, sha256_file
    from xfr_lib.data import cache_dir
    from xfr_lib.models import model_fingerprint
    from xfr_lib.words._calibration import calibrate

    cal = calibration or calibrate(model, progress=False)
    file = None
    files = [Path(x) for x in (image_a, image_b) if isinstance(x, (str, Path))]
    if cache is not False and len(files) == 2 and all(f.is_file() for f in files):
        key = json.dumps({"images": [sha256_file(f) for f in files], "faces": [face_a, face_b],
                          "model": model_fingerprint(model), "method": method,
                          "params": params, "calibration": cal.to_dict(),
                          "version": __version__}, sort_keys=True, default=str)
        folder = cache_dir() / "tables" if cache is True else Path(cache)
        file = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        stored = read_cached_json(file, PairTable.from_dict)
        if stored is not None:
            return stored
    expl = xfr_lib.explain(method, model, image_a, image_b, face_a=face_a, face_b=face_b,
                           **params)
    table = pair_table(expl, cal)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(table.to_dict(), indent=1, default=str))
    return table
