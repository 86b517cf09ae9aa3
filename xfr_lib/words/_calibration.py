"""How sure a decision is: the score's distance to the threshold on a calibrated scale.

A cosine score of 0.05 above the threshold means little by itself: whether that is a wide or
a narrow margin depends on how far apart the model's genuine (same person) and impostor
scores lie. :func:`fit_calibration` measures that from labelled pairs with the simplest model
that gives the margin a meaning: genuine and impostor scores as two normal distributions with
their own means and a shared (pooled) standard deviation. Under that model the log-likelihood
ratio of a score ``s`` is linear,

    LLR(s) = slope * (s - midpoint),   slope = (mean_genuine - mean_impostor) / pooled_std**2,

so the **evidence** of a decision is ``slope * (score - threshold)``: how many natural-log
units of likelihood ratio (nats) the score lies above (+) or below (-) the threshold. The
**confidence** is ``sigmoid(|evidence|)``: 0.5 at the threshold, approaching 1 far from it.
It is the probability that the decision is right for the prior odds at which the model's
threshold is the best (Bayes) decision, under the two-normal model; it is a statement about
scores like this one on the calibration data, not about these two people.

Words: :data:`CONFIDENCE_LEVELS` names the ranges ("low" below 0.75, "moderate" below 0.95,
"high" above). The calibration depends on its data: ORL (the default) is a controlled,
greyscale dataset, so on harder photographs the same margin is worth less; calibrate on data
like yours (``calibrate(model, "folder/of/identities")``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xfr_lib.errors import XfrError

#: Upper bounds of the confidence words, in order; above the last bound: "high".
CONFIDENCE_LEVELS = (("low", 0.75), ("moderate", 0.95))
_MIN_PAIRS = 5  # genuine and impostor pairs needed for a mean and a spread


def confidence_level(confidence: float) -> str:
    """The word for a confidence in [0.5, 1] (see :data:`CONFIDENCE_LEVELS`)."""
    for word, bound in CONFIDENCE_LEVELS:
        if confidence < bound:
            return word
    return "high"


@dataclass(frozen=True)
class ScoreCalibration:
    """The two-normal score model of one face model (see the module doc).

    Attributes:
        model: the face model's name.
        threshold: its decision threshold (accept if ``score >= threshold``).
        mean_genuine: mean score of genuine pairs.
        mean_impostor: mean score of impostor pairs.
        pooled_std: pooled standard deviation of the two groups.
        n_genuine: genuine pairs measured.
        n_impostor: impostor pairs measured.
        source: what the pairs came from (e.g. ``"orl: all pairs"``).
        params: how the calibration was made (dataset, model fingerprint, version).
    """

    model: str
    threshold: float
    mean_genuine: float
    mean_impostor: float
    pooled_std: float
    n_genuine: int
    n_impostor: int
    source: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def slope(self) -> float:
        """Nats of likelihood ratio per unit of score."""
        return (self.mean_genuine - self.mean_impostor) / self.pooled_std ** 2

    @property
    def separation(self) -> float:
        """d': the distance of the two means in pooled standard deviations."""
        return (self.mean_genuine - self.mean_impostor) / self.pooled_std

    def evidence(self, score: float, threshold: float | None = None) -> float:
        """Nats by which ``score`` lies above (+) or below (-) the threshold (the model's, or
        ``threshold``)."""
        t = self.threshold if threshold is None else float(threshold)
        return float(self.slope * (float(score) - t))

    def confidence(self, score: float, threshold: float | None = None) -> float:
        """``sigmoid(|evidence|)``: 0.5 at the threshold, towards 1 away from it."""
        return 1.0 / (1.0 + math.exp(-abs(self.evidence(score, threshold))))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slope": self.slope, "separation": self.separation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreCalibration:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def fit_calibration(genuine: np.ndarray, impostor: np.ndarray, threshold: float, *,
                    model: str = "", source: str = "",
                    params: dict[str, Any] | None = None) -> ScoreCalibration:
    """The two-normal model of genuine and impostor scores (see the module doc).

    Args:
        genuine: scores of same-person pairs.
        impostor: scores of different-person pairs.
        threshold: the model's decision threshold.
        model: the model's name (recorded).
        source: where the pairs came from (recorded).
        params: anything else to record.

    Raises:
        XfrError: fewer than 5 pairs of a kind, non-finite scores, or genuine scores that are
            not above impostor scores on average (a calibration that would invert decisions).
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    i = np.asarray(impostor, dtype=np.float64).ravel()
    if len(g) < _MIN_PAIRS or len(i) < _MIN_PAIRS:
        raise XfrError(f"a score calibration needs at least {_MIN_PAIRS} genuine and "
                       f"{_MIN_PAIRS} impostor pairs, got {len(g)} and {len(i)}; use a dataset "
                       f"with more people and images per person")
    if not (np.isfinite(g).all() and np.isfinite(i).all()):
        raise XfrError("calibration scores contain NaN or inf; leave out pairs whose face "
                       "was not found")
    pooled = math.sqrt((((g - g.mean()) ** 2).sum() + ((i - i.mean()) ** 2).sum())
                       / (len(g) + len(i) - 2))
    if not g.mean() > i.mean() or pooled <= 0:
        raise XfrError(f"genuine scores (mean {g.mean():.3f}) are not above impostor scores "
                       f"(mean {i.mean():.3f}); these labels or this model cannot calibrate "
                       f"a confidence")
    return ScoreCalibration(model=model, threshold=float(threshold),
                            mean_genuine=float(g.mean()), mean_impostor=float(i.mean()),
                            pooled_std=pooled, n_genuine=len(g), n_impostor=len(i),
                            source=source, params=dict(params or {}))


@dataclass(frozen=True)
class PairScores:
    """Scores of every pair of a labelled dataset (see :func:`labelled_pair_scores`).

    Attributes:
        scores: ``[P]`` cosine scores.
        genuine: ``[P]`` bool, same identity.
        dataset: the dataset's name.
        images: images whose face was found (of the dataset's).
        files: ``(path, identity)`` of every image of the dataset, in order.
    """

    scores: np.ndarray
    genuine: np.ndarray
    dataset: str
    images: int
    files: list[tuple[str, str]]


def _dataset(source: Any):
    from xfr_lib.data import FaceDataset, list_datasets, load_dataset

    if isinstance(source, FaceDataset):
        return source
    if isinstance(source, str) and source in list_datasets():
        return load_dataset(source)
    if isinstance(source, (str, Path)):
        return load_dataset("folder", source)
    raise XfrError(f"cannot calibrate on a {type(source).__name__}; give a dataset name, "
                   f"a folder of <identity>/<image> or a FaceDataset")


def labelled_pair_scores(model: Any, source: Any = "orl", *,
                         progress: bool = True) -> PairScores:
    """Every pair of a labelled dataset scored by ``model``: same identity = genuine.

    Args:
        model: a face model.
        source: a dataset name, a folder of ``<identity>/<image>``, or a
            :class:`~xfr_lib.data.FaceDataset`.
        progress: show progress while aligning and embedding.
    """
    from xfr_lib.evaluate import embed_dataset

    dataset = _dataset(source)
    emb = embed_dataset(model, dataset, progress=progress)
    keep = np.flatnonzero(emb.ok)
    upper = np.triu_indices(len(keep), k=1)
    ids = np.asarray(emb.identities)[keep]
    return PairScores(scores=emb.similarity(keep, keep)[upper],
                      genuine=(ids[:, None] == ids[None, :])[upper], dataset=dataset.name,
                      images=len(keep),
                      files=[(Path(im.path).as_posix(), im.identity) for im in dataset.images])


def calibrate(model: Any, source: Any = "orl", *, cache: bool | str | Path = True,
              progress: bool = True) -> ScoreCalibration:
    """Calibrate a face model's scores on every pair of a labelled dataset.

    Every pair of images whose faces were found is used (:func:`labelled_pair_scores`; ORL:
    1,800 genuine and 78,000 impostor pairs).

    Args:
        model: a face model (``xfr_lib.load_model``).
        source: a dataset name, a folder of ``<identity>/<image>``, or a
            :class:`~xfr_lib.data.FaceDataset`.
        cache: True (``<xfr cache>/calibrations``), a folder, or False: the result is stored
            as JSON, keyed by the model's weights, the images and xfr's version.
        progress: show progress while aligning and embedding.
    """
    from xfr_lib import __version__
    from xfr_lib._io import atomic_write_text, read_cached_json
    from xfr_lib.data import cache_dir
    from xfr_lib.models import model_fingerprint

    dataset = _dataset(source)
    images = [(Path(im.path).as_posix(), im.identity) for im in dataset.images]
    params = {"dataset": dataset.name, "images": len(images),
              "model_fingerprint": model_fingerprint(model), "version": __version__}
    key = hashlib.sha256(json.dumps([params, images], sort_keys=True).encode()).hexdigest()[:16]
    file = None
    if cache is not False:
        folder = cache_dir() / "calibrations" if cache is True else Path(cache)
        file = folder / f"{model.name}-{key}.json"
        stored = read_cached_json(file, ScoreCalibration.from_dict)
        if stored is not None:
            return stored
    pairs = labelled_pair_scores(model, dataset, progress=progress)
    cal = fit_calibration(pairs.scores[pairs.genuine], pairs.scores[~pairs.genuine],
                          model.threshold, model=model.name,
                          source=f"{dataset.name}: all pairs of {pairs.images} images",
                          params=params)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(cal.to_dict(), indent=1))
    return cal
