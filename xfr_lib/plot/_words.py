"""Plots of the words layer: the score calibration behind a confidence, and a pair's region
table as bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from xfr_lib.plot._recognition import plot_score_distributions
from xfr_lib.plot._style import palette
from xfr_lib.words import PairScores, PairTable, ScoreCalibration


def plot_calibration(pairs: PairScores, calibration: ScoreCalibration,
                     scores: dict[str, float] | None = None):
    """Left: genuine and impostor scores with the two fitted normals and the threshold. Right:
    the confidence of a decision as a function of the score, with ``scores`` (label -> score)
    marked on it.

    Returns:
        The figure.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    plot_score_distributions(pairs.scores, pairs.genuine, calibration.threshold, ax=left,
                             kde=False, label=f"{calibration.model} on {pairs.dataset}")
    lo, hi = np.percentile(pairs.scores, [0.1, 99.9])
    x = np.linspace(lo, hi, 400)
    colours = palette(2)
    for mean, colour, name in ((calibration.mean_genuine, colours[0], "genuine"),
                               (calibration.mean_impostor, colours[1], "impostor")):
        z = (x - mean) / calibration.pooled_std
        left.plot(x, np.exp(-z ** 2 / 2) / (calibration.pooled_std * np.sqrt(2 * np.pi)),
                  color=colour, lw=1.5, label=f"{name}: fitted normal")
    left.legend(fontsize="small")
    conf = [calibration.confidence(v) for v in x]
    right.plot(x, conf, color="0.2")
    right.axvline(calibration.threshold, color="0.2", linestyle="--", lw=1)
    for k, (label, s) in enumerate((scores or {}).items()):
        right.plot([s], [calibration.confidence(s)], "o", color=palette(max(2, len(scores)))[k],
                   label=f"{label}: {s:.3f}")
    if scores:
        right.legend(fontsize="small", loc="lower right")
    right.set_xlabel("score (cosine similarity)")
    right.set_ylabel("confidence of the decision")
    right.set_ylim(0.45, 1.02)
    right.set_title(f"sigmoid(|{calibration.slope:.0f} x (score - {calibration.threshold:.3f})|)")
    return fig


def plot_region_table(table: PairTable, ax=None):
    """The similarity and dissimilarity shares of each region (mean of both images), with the
    region's share of the chip as a tick: bars above the tick hold more than their area.

    Returns:
        The Axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    long = table.regions.melt(id_vars=["region"], value_vars=["similarity", "dissimilarity"],
                              var_name="map", value_name="share").dropna()
    long["share"] *= 100
    sns.barplot(data=long, y="region", x="share", hue="map", ax=ax, palette=palette(2),
                order=list(table.regions["region"]))
    ys = np.arange(len(table.regions))
    ax.scatter(100 * table.regions["area"], ys, marker="|", s=200, color="0.2",
               label="share of the chip", zorder=3)
    ax.set_xlabel("share of the map's mass (%)")
    ax.set_ylabel("")
    verdict = "same person" if table.decision else "different people"
    ax.set_title(f"score {table.score:.3f}, threshold {table.threshold:.3f}: {verdict}",
                 fontsize="medium")
    ax.legend(fontsize="small", loc="lower right")
    return ax

