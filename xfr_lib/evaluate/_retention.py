"""Deletion and retention of class maps: SDD-CAM's evaluation (arXiv 2505.03837, section 5).

For each image, the pixels a map ranks highest are *deleted* (the top ``fraction``, the paper:
20 %, replaced by a fill, the paper: 0) or *retained* (everything else replaced), and the
classifier runs again. Two numbers per map and mode, over the images:

* **average confidence drop** (%): the mean of ``max(0, p - p') / p`` x 100, with ``p`` and
  ``p'`` the probability of the explained class before and after (the "average drop" of
  Chattopadhyay et al. 2018, which the SDD paper's numbers are read as);
* **changed predictions** (%): the share of images whose top class is no longer the
  classifier's prediction on the clean image.

A faithful map makes both large under deletion (it removed what the class rests on) and small
under retention (it kept it). The paper's baseline is a "random CAM"; xfr's
(:func:`random_class_maps`) is a uniform random map drawn at the class maps' layer resolution
and upsampled like them, so its top 20 % is a few blobs of the same grain as a class map's,
not scattered pixels (which a fill hides differently).

Ties are broken in a seeded random order (:func:`~xfr_lib.evaluate.pixel_order`), with a
seed per image from the run's seed and the image's label (:func:`~xfr_lib.evaluate.pair_seed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from xfr_lib.errors import XfrError
from xfr_lib.evaluate._deletion import check_choice, pair_seed, pixel_order
from xfr_lib.evaluate._fills import check_evaluation_fill, fill_removed
from xfr_lib.evaluate._intervals import bootstrap_interval

#: What is done to the map's top pixels.
RETENTION_MODES = ("deletion", "retention")


def random_class_maps(n: int, cells: tuple[int, int], size: tuple[int, int],
                      seed: int) -> np.ndarray:
    """``[n, H, W]`` random maps: uniform values on a ``cells`` grid, upsampled bilinearly
    to ``size`` as class maps are (the "random CAM" baseline)."""
    from xfr_lib.explainers._gradients import upsample

    g = torch.Generator().manual_seed(int(seed))
    grid = torch.rand((int(n), *cells), generator=g)
    return upsample(grid, tuple(size)).numpy().astype(np.float32)


def retention_masks(order: np.ndarray, shape: tuple[int, int], fraction: float,
                    mode: str) -> np.ndarray:
    """``[H, W]`` bool, True where a pixel is replaced: the top ``round(fraction * H * W)``
    pixels of ``order`` (deletion) or all the others (retention)."""
    check_choice(mode, RETENTION_MODES, "mode")
    n = int(np.prod(shape))
    top = np.zeros(n, bool)
    top[order[:round(fraction * n)]] = True
    return (top if mode == "deletion" else ~top).reshape(shape)


def deletion_retention(classifier: Any, chips: np.ndarray, maps: Mapping[str, np.ndarray],
                       targets: Sequence[int], *, labels: Sequence[str] | None = None,
                       fraction: float = 0.2, fill: str = "zero", seed: int = 0,
                       batch_size: int = 32) -> pd.DataFrame:
    """The classifier on each image with each map's top pixels deleted or retained.

    Args:
        classifier: an :class:`~xfr_lib.classify.IdentityClassifier`.
        chips: ``[N, H, W, 3]`` uint8 aligned chips.
        maps: map name -> ``[N, H, W]`` maps ranking the pixels (higher = more important;
            for SDD its divergence, ``ClassExplanation.ranking_map``).
        targets: the explained class of each image (class numbers; usually the prediction).
        labels: a name per image, which seeds its tie order (default: its position).
        fraction: the share of pixels deleted or retained (the paper: 0.2).
        fill: what replaces pixels (:data:`~xfr_lib.evaluate.EVALUATION_FILLS`; paper: zero).
        seed: seed of the tie order and of the ROAD fill's noise.
        batch_size: chips per forward pass.

    Returns:
        One row per image x map x mode: ``image``, ``map``, ``mode``, ``target``, ``p``
        (before), ``p after``, ``drop (%)``, ``predicted``, ``predicted after``, ``changed``.
    """
    chips = np.asarray(chips)
    n = len(chips)
    if not 0.0 < float(fraction) < 1.0:
        raise XfrError(f"fraction={fraction}: use a share of pixels in (0, 1) (the paper: 0.2)")
    check_evaluation_fill(fill)
    labels = [str(i) for i in range(n)] if labels is None else [str(v) for v in labels]
    if len(targets) != n or len(labels) != n:
        raise XfrError(f"{n} chips need {n} targets and labels, got {len(targets)} and "
                       f"{len(labels)}")
    for name, m in maps.items():
        if np.shape(m) != (n, *chips.shape[1:3]):
            raise XfrError(f"map {name!r} has shape {list(np.shape(m))}, expected "
                           f"{[n, *chips.shape[1:3]]}")
    before = classifier.probabilities(chips, batch_size)
    targets = np.asarray(targets, dtype=np.int64)
    rows, p_after, pred_after, modified = [], [], [], []

    def classify_modified() -> None:
        if modified:
            after = classifier.probabilities(np.stack(modified), batch_size)
            p_after.extend(after[np.arange(len(after)),
                                 [r["target"] for r in rows[len(p_after):]]])
            pred_after.extend(after.argmax(1))
            modified.clear()

    for i in range(n):
        s = pair_seed(seed, labels[i])
        for name, m in maps.items():
            order = pixel_order(np.asarray(m[i]), ties="random", seed=s)
            for mode in RETENTION_MODES:
                removed = retention_masks(order, chips.shape[1:3], fraction, mode)
                modified.append(fill_removed(chips[i], removed[None], fill, seed=s)[0])
                rows.append({"image": labels[i], "map": name, "mode": mode,
                             "target": int(targets[i]), "p": float(before[i, targets[i]]),
                             "predicted": int(before[i].argmax())})
        if len(modified) >= 256:  # bounded memory: classify the modified chips in chunks
            classify_modified()
    classify_modified()
    table = pd.DataFrame(rows, columns=["image", "map", "mode", "target", "p", "predicted"])
    table["p after"] = np.asarray(p_after, dtype=np.float64)
    table["predicted after"] = np.asarray(pred_after, dtype=np.int64)
    p = table["p"].to_numpy()
    table["drop (%)"] = 100.0 * np.maximum(0.0, p - table["p after"]) / p
    table["changed"] = table["predicted after"] != table["predicted"]
    return table


def summarise_retention(table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Per map and mode: images, average confidence drop (%) and changed predictions (%), each
    with a 95 % bootstrap interval over the images."""
    rows = []
    for (name, mode), g in table.groupby(["map", "mode"], sort=False):
        drop = g["drop (%)"].to_numpy(float)
        changed = 100.0 * g["changed"].to_numpy(float)
        (d_low, d_high), (c_low, c_high) = (bootstrap_interval(v, seed=seed)
                                            for v in (drop, changed))
        rows.append({"map": name, "mode": mode, "images": len(g),
                     "drop (%)": drop.mean(), "drop low": d_low, "drop high": d_high,
                     "changed (%)": changed.mean(), "changed low": c_low,
                     "changed high": c_high})
    return pd.DataFrame(rows)
