"""Occluders with a known outline as ground truth for dissimilarity maps.

A genuine pair's image B gets a synthetic occluder (:func:`xfr_lib.faces.occlude`), and each
explainer explains the occluded B against the unoccluded A. A faithful dissimilarity map puts
its mass on the occluder: :func:`occlusion_experiment` measures that share over the occluder's
share of the chip's area (1 = an even spread; above 1 = concentrated on the occluder), and the
same for the similarity map (which should avoid it, below 1). The dissimilarity map is also
scored as a pointer and as a detector of the occluder's pixels
(:func:`xfr_lib.evaluate.pointing_game`, :func:`xfr_lib.evaluate.detector_auroc`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from xfr_lib.evaluate._ground_truth import detector_auroc, pointing_game
from xfr_lib.explainers import Explainer
from xfr_lib.faces import chip_to_tensor, mass_in_region, mass_ratio_to_chance, occlude
from xfr_lib.models import embed


@dataclass
class OcclusionCase:
    """A genuine pair whose image B is occluded.

    Attributes:
        label: how the pair is named in tables.
        chip_a: A's aligned chip (``HxWx3`` uint8), left as it is.
        chip_b: B's aligned chip, which gets the occluders.
        landmarks_b: B's ``[68, 2]`` landmarks (they place the occluder).
        source: a chip of another person, cut for the ``"photo"`` fill.
    """

    label: str
    chip_a: np.ndarray
    chip_b: np.ndarray
    landmarks_b: np.ndarray
    source: np.ndarray


def occlusion_experiment(model, cases: Sequence[OcclusionCase],
                         explainers: Mapping[str, Explainer], kinds: Sequence[str],
                         fills: Sequence[str], seed: int = 0, margin: int = 0,
                         progress: bool = False, tolerance: float = 0) -> pd.DataFrame:
    """Explain every case with every occluder, fill and explainer; measure the maps' mass on it.

    Args:
        model: the face model (for the scores).
        cases: the pairs.
        explainers: label -> explainer bound to ``model`` (e.g. CorrRISE with several fills).
        kinds: occluder kinds (``xfr_lib.faces.OCCLUDER_KINDS``).
        fills: occluder contents (``xfr_lib.faces.OCCLUDER_FILLS``).
        seed: seed of the occluders' textures and photo crops (case ``k`` uses ``seed + k``).
        margin: width in px of the band around the occluder whose share of the
            dissimilarity mass is reported too (0: not reported). A perturbation that covers
            the occluder also covers the face next to it, so mass lands there as well.
        progress: show a progress bar.
        tolerance: of the pointing game, in px (:func:`xfr_lib.evaluate.pointing_game`).

    Returns:
        One row per case, kind, fill and explainer: ``pair``, ``kind``, ``fill``,
        ``explainer``, ``area (%)`` (occluder's share of the chip), ``clean score``,
        ``occluded score``, ``accepted`` (at the model's threshold), ``dissimilarity mass (%)``,
        ``dissimilarity / chance``, ``similarity / chance``, ``pointing game`` (whether the
        dissimilarity map's maximum is on the occluder; a nullable boolean, missing for an
        all-zero or constant map), ``AUROC`` (of the dissimilarity map as a detector of the
        occluder's pixels; 0.5 for an all-zero map) and, with ``margin``, ``dissimilarity next
        to it (%)``. Mass shares are NaN for an all-zero map.
    """
    rows = []
    jobs = [(k, case, kind, fill) for k, case in enumerate(cases) for kind in kinds
            for fill in fills]
    for k, case, kind, fill in tqdm(jobs, disable=not progress, desc="occluders", leave=False):
        chip, region = occlude(case.chip_b, case.landmarks_b, kind, fill, seed=seed + k,
                               source=case.source if fill == "photo" else None)
        emb = embed(model, np.stack([case.chip_a, case.chip_b, chip]))
        ref = emb[:1]
        clean, occluded = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
        x = chip_to_tensor(chip)
        band = None
        if margin:
            size = 2 * int(margin) + 1
            band = cv2.dilate(region.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
            band &= ~region
        for label, explainer in explainers.items():
            sim, dis = explainer.split(explainer.signed_maps(x, ref), 1, "the occluded image")
            rows.append({
                "pair": case.label, "kind": kind, "fill": fill, "explainer": label,
                "area (%)": 100 * float(region.mean()), "clean score": clean,
                "occluded score": occluded, "accepted": occluded >= model.threshold,
                "dissimilarity mass (%)": 100 * mass_in_region(dis[0], region),
                "dissimilarity / chance": mass_ratio_to_chance(dis[0], region),
                "similarity / chance": mass_ratio_to_chance(sim[0], region),
                "pointing game": pointing_game(dis[0], region, tolerance),
                "AUROC": detector_auroc(dis[0], region),
            })
            if band is not None:
                rows[-1]["dissimilarity next to it (%)"] = 100 * mass_in_region(dis[0], band)
    out = pd.DataFrame(rows)
    if "pointing game" in out:
        out["pointing game"] = out["pointing game"].astype("boolean")
    return out


