"""Where an explanation's mass falls, region by region: the numbers behind words like "the eyes".

:func:`region_table` measures the four maps of a verification explanation on the facial
regions of each image (:func:`xfr_lib.faces.face_regions`); :func:`top_regions` names the
regions that hold most of a map's mass and more than their share of the chip's area. Chapters
build their region words from these, never from looking at a figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xfr_lib.explainers import VerificationExplanation
from xfr_lib.faces import OUTSIDE, face_regions, region_shares

#: A map *concentrates* on a region that holds at least this multiple of its area share.
CONCENTRATED = 1.25


def region_table(expl: VerificationExplanation, landmarks_a: np.ndarray, landmarks_b: np.ndarray,
                 grouped: bool = True) -> pd.DataFrame:
    """Region shares of the four maps of a verification explanation.

    Args:
        expl: the explanation.
        landmarks_a: ``[68, 2]`` landmarks of A's chip (``EmbeddingSet.landmarks``).
        landmarks_b: the same for B.
        grouped: coarse regions ("eyes", "cheeks") instead of left and right ones.

    Returns:
        One row per (image, map, region): ``image`` ("A"/"B"), ``map`` ("similarity",
        "dissimilarity"), ``region``, ``area``, ``mass``, ``ratio`` (see
        :func:`xfr_lib.faces.region_shares`).
    """
    frames = []
    for image, landmarks, chip in (("A", landmarks_a, expl.chip_a), ("B", landmarks_b, expl.chip_b)):
        regions = face_regions(landmarks, chip.shape[:2])
        for kind in ("similarity", "dissimilarity"):
            m = getattr(expl, f"{kind}_{image.lower()}")
            frames.append(region_shares(m, regions, grouped).assign(image=image, map=kind))
    table = pd.concat(frames, ignore_index=True)
    return table[["image", "map", "region", "area", "mass", "ratio"]]


def mean_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Mean region shares over several maps (rows of :func:`region_table`, filtered as needed).

    Maps whose mass is undefined (all zero) are left out of the mean mass. Returns one row per
    region (in the table's first-seen order): ``region``, ``area``, ``mass``, ``ratio``,
    ``maps`` (how many maps the mean mass is over).
    """
    order = list(dict.fromkeys(table["region"]))
    grouped = table.groupby("region", sort=False)
    out = pd.DataFrame({"area": grouped["area"].mean(), "mass": grouped["mass"].mean(),
                        "maps": grouped["mass"].count()}).reindex(order)
    out["ratio"] = out["mass"] / out["area"]
    return out.reset_index()[["region", "area", "mass", "ratio", "maps"]]


def top_regions(shares: pd.DataFrame, k: int = 2, min_ratio: float = CONCENTRATED,
                include_outside: bool = False) -> list[str]:
    """The regions holding most of a map's mass, among those above their share of the area.

    Args:
        shares: rows with ``region``, ``mass`` and ``ratio`` (one map's
            :func:`~xfr_lib.faces.region_shares`, or means over several maps).
        k: at most this many regions, largest mass first.
        min_ratio: a region must hold at least this multiple of its area share (1 = as
            much as an even spread would put there; default :data:`CONCENTRATED`).
        include_outside: whether "outside the face" may be named.

    Returns:
        Region names, largest mass first (possibly fewer than ``k``, or none).
    """
    rows = shares[(shares["ratio"] >= min_ratio) & shares["mass"].notna()]
    if not include_outside:
        rows = rows[rows["region"] != OUTSIDE]
    return rows.sort_values("mass", ascending=False, kind="stable")["region"].head(k).tolist()
