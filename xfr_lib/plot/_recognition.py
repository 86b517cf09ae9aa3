"""Plots of face-recognition performance: score distributions, ROC, DET, CMC, fold accuracies.

Every function draws into ``ax`` (a new figure if None), labels its axes with units, adds a
legend naming each model, and returns the Axes. Inputs are the outputs of
:mod:`xfr_lib.evaluate` (``roc`` / ``cmc`` DataFrames, ``VerificationResult``). The
functions do not change matplotlib's global style; call :func:`xfr_lib.plot.set_theme`
for that.

>>> import numpy as np
>>> from xfr_lib.evaluate import roc
>>> rng = np.random.default_rng(0)
>>> labels = rng.random(2000) < 0.5
>>> scores = rng.normal(labels * 2.0, 1.0)
>>> ax = plot_det({"toy model": roc(scores, labels)})
>>> len(ax.lines)
1
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from scipy.stats import norm

from xfr_lib.evaluate import (
    VerificationResult,
    check_scores_labels,
    eer_from_curve,
)
from xfr_lib.plot._style import palette

# Rates that get a tick on DET axes (as fractions).
# decades only in the tails, where the probit scale squeezes them together.
_DET_TICKS = np.array([1e-5, 1e-4, 1e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95,
                       0.99])


def _pct(v: float) -> str:
    """A rate as a short percentage label: 0.0001 -> '0.01', 0.5 -> '50'."""
    return f"{100 * v:.3g}"


def _axes(ax: Axes | None, figsize=(5.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _check_curves(curves: Mapping[str, pd.DataFrame], columns: tuple[str, ...], kind: str):
    if isinstance(curves, pd.DataFrame) or not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"pass {kind} curves as a non-empty dict {{model name: DataFrame}}")
    for name, df in curves.items():
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{kind} curve {name!r} lacks columns {missing}; "
                             f"make it with xfr_lib.evaluate.{kind}()")


def _curve_eer(df: pd.DataFrame) -> float:
    return eer_from_curve(df["threshold"].to_numpy(), df["fmr"].to_numpy(),
                           df["fnmr"].to_numpy()).eer


def plot_score_distributions(scores, labels, threshold: float | None = None,
                             ax: Axes | None = None, label: str | None = None,
                             bins: int | str = "auto", kde: bool = True,
                             kde_max_points: int = 20_000) -> Axes:
    """Genuine vs impostor score distributions (density histograms + KDE) and the threshold.

    Args:
        scores: ``[N]`` similarity scores.
        labels: ``[N]`` booleans, True for genuine pairs.
        threshold: decision threshold to mark with a dashed vertical line (None: no line).
        ax: Axes to draw into; a new figure if None.
        label: title, e.g. the model name.
        bins: histogram bins (shared by both classes), as in :func:`numpy.histogram_bin_edges`.
        kde: overlay a kernel density estimate per class (skipped for a class with fewer than
            two distinct scores).
        kde_max_points: a class with more scores is thinned for the KDE only, deterministically,
            to this many evenly spaced order statistics (same distribution, much faster; the
            histogram always uses every score).

    Returns:
        The Axes.
    """
    s, y = check_scores_labels(scores, labels)
    ax = _axes(ax)
    edges = np.histogram_bin_edges(s, bins=bins)
    colours = palette(2)
    for values, name, colour in ((s[y], "genuine", colours[0]), (s[~y], "impostor", colours[1])):
        legend = f"{name} (n={len(values)})"
        sns.histplot(x=values, bins=edges, stat="density", element="step", alpha=0.3,
                     color=colour, ax=ax, label=None if kde and len(np.unique(values)) > 1
                     else legend)
        if kde and len(np.unique(values)) > 1:
            if len(values) > kde_max_points:
                pick = np.linspace(0, len(values) - 1, kde_max_points).round().astype(int)
                values = np.sort(values)[pick]
            sns.kdeplot(x=values, color=colour, ax=ax, label=legend)
    if threshold is not None:
        ax.axvline(threshold, color="0.2", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("score (cosine similarity)")
    ax.set_ylabel("density (per unit score)")
    if label:
        ax.set_title(label)
    ax.legend()
    return ax


def plot_roc(curves: Mapping[str, pd.DataFrame], ax: Axes | None = None,
             eer_in_legend: bool = True, tmr_range: tuple[float, float] = (0.0, 100.5)) -> Axes:
    """ROC curves, TMR against FMR on a logarithmic FMR axis, both in %.

    Points with FMR = 0 cannot be shown on a log axis and are dropped.

    Args:
        curves: ``{model name: metrics.roc(...) DataFrame}``.
        ax: Axes to draw into; a new figure if None.
        eer_in_legend: append each curve's EER to its legend entry.
        tmr_range: limits of the TMR axis in % (e.g. ``(90, 100.2)`` to zoom on good models).

    Returns:
        The Axes.
    """
    _check_curves(curves, ("fmr", "tmr", "fnmr", "threshold"), "roc")
    ax = _axes(ax)
    lowest = 1.0
    for (name, df), colour in zip(curves.items(), palette(len(curves)), strict=True):
        keep = df["fmr"].to_numpy() > 0
        fmr, tmr = df["fmr"].to_numpy()[keep], df["tmr"].to_numpy()[keep]
        lowest = min(lowest, float(fmr.min()))
        text = f"{name} (EER {_pct(_curve_eer(df))} %)" if eer_in_legend else str(name)
        ax.plot(fmr, 100 * tmr, color=colour, label=text)
    ax.set_xscale("log")
    ax.set_xlim(10 ** np.floor(np.log10(lowest)), 1.0)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _pct(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(*tmr_range)
    ax.set_xlabel("false match rate FMR (%, log scale)")
    ax.set_ylabel("true match rate TMR = 1 - FNMR (%)")
    ax.legend(loc="lower right")
    return ax


def plot_det(curves: Mapping[str, pd.DataFrame], ax: Axes | None = None,
             limits: tuple[float, float] | None = None, eer_in_legend: bool = True) -> Axes:
    """DET curves: FNMR against FMR, both on normal-deviate (probit) axes, ticks labelled in %.

    Each rate r is drawn at ``scipy.stats.norm.ppf(r)``, so two Gaussian score distributions
    give a straight line. Points with a rate of exactly 0 or 1 lie at infinity and are dropped.

    Args:
        curves: ``{model name: metrics.roc(...) DataFrame}``.
        ax: Axes to draw into; a new figure if None.
        limits: ``(low, high)`` rates shown on both axes; default from the smallest positive
            rate in the data (at least 1e-5) to 50 %.
        eer_in_legend: append each curve's EER to its legend entry.

    Returns:
        The Axes.
    """
    _check_curves(curves, ("fmr", "fnmr", "threshold"), "roc")
    ax = _axes(ax)
    lowest = 0.5
    for (name, df), colour in zip(curves.items(), palette(len(curves)), strict=True):
        fmr, fnmr = df["fmr"].to_numpy(), df["fnmr"].to_numpy()
        keep = (fmr > 0) & (fmr < 1) & (fnmr > 0) & (fnmr < 1)
        if keep.any():
            lowest = min(lowest, float(fmr[keep].min()), float(fnmr[keep].min()))
        text = f"{name} (EER {_pct(_curve_eer(df))} %)" if eer_in_legend else str(name)
        if not keep.any():  # e.g. perfectly separable scores: every point has a zero rate
            text += ", no point with both rates > 0"
        ax.plot(norm.ppf(fmr[keep]), norm.ppf(fnmr[keep]), color=colour, label=text)
    if limits is None:
        steps = np.array([m * 10.0**e for e in range(-6, 0) for m in (1, 2, 5)])
        lowest = 1e-3 if lowest == 0.5 else lowest  # no drawable point at all
        limits = (float(steps[steps <= max(lowest, 1e-5)][-1]), 0.5)
    lo, hi = limits
    if not 0 < lo < hi < 1:
        raise ValueError(f"DET limits must satisfy 0 < low < high < 1, got {limits}")
    ticks = np.union1d([lo], _DET_TICKS[(_DET_TICKS >= lo) & (_DET_TICKS <= hi)])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(norm.ppf(ticks)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: _pct(norm.cdf(v))))
    ax.set_xlim(norm.ppf(lo), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo), norm.ppf(hi))
    ax.set_xlabel("FMR: false match rate (%, normal deviate)")
    ax.set_ylabel("FNMR: false non-match rate (%, normal deviate)")
    ax.set_aspect("equal", adjustable="box")
    # Outside the axes: DET labels are long and the curves fill the plot area.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0)
    return ax


def plot_cmc(cmcs: Mapping[str, pd.DataFrame], ax: Axes | None = None,
             log_rank: bool = False) -> Axes:
    """Cumulative match characteristic curves: identification rate (%) against rank.

    Args:
        cmcs: ``{model name: metrics.cmc(...) DataFrame}``.
        ax: Axes to draw into; a new figure if None.
        log_rank: logarithmic rank axis (useful for large galleries).

    Returns:
        The Axes.
    """
    _check_curves(cmcs, ("rank", "accuracy"), "cmc")
    ax = _axes(ax)
    for (name, df), colour in zip(cmcs.items(), palette(len(cmcs)), strict=True):
        rank, acc = df["rank"].to_numpy(), df["accuracy"].to_numpy()
        ax.plot(rank, 100 * acc, drawstyle="steps-post", color=colour,
                marker="o" if len(rank) <= 20 else None, markersize=4,
                label=f"{name} (rank-1 {_pct(acc[0])} %)")
    if log_rank:
        ax.set_xscale("log")
    ax.set_ylim(0, 100.5)
    ax.set_xlabel("rank k (number of gallery candidates)")
    ax.set_ylabel("identification rate at rank k (%)")
    ax.legend(loc="lower right")
    return ax


def plot_fold_accuracies(results: Mapping[str, VerificationResult] | VerificationResult,
                         ax: Axes | None = None) -> Axes:
    """Per-fold verification accuracies (dots) with mean +- std (bar) for each model.

    Args:
        results: one :class:`VerificationResult` or ``{model name: VerificationResult}``.
        ax: Axes to draw into; a new figure if None.

    Returns:
        The Axes.
    """
    if isinstance(results, VerificationResult):
        results = {"model": results}
    if not isinstance(results, Mapping) or not results:
        raise ValueError("pass a VerificationResult or a non-empty dict {model name: result}")
    ax = _axes(ax)
    for i, ((name, res), colour) in enumerate(
            zip(results.items(), palette(len(results)), strict=True)):
        acc = 100 * np.asarray(res.fold_accuracies)
        offsets = np.linspace(-0.15, 0.15, len(acc)) if len(acc) > 1 else np.zeros(1)
        ax.scatter(i + offsets, acc, color=colour, s=18, alpha=0.8)
        ax.errorbar(i + 0.3, 100 * res.mean, yerr=100 * res.std, fmt="D", color=colour,
                    capsize=4, label=f"{name}: {100 * res.mean:.2f} +- {100 * res.std:.2f} %")
    ax.set_xticks(range(len(results)), [str(n) for n in results])
    ax.set_xlim(-0.6, len(results) - 0.4)
    if ax.get_ylim()[1] > 100.5:  # mean + std may pass 100 %; accuracies cannot
        ax.set_ylim(top=100.5)
    ax.set_ylabel("accuracy on held-out fold (%)")
    ax.set_xlabel("model (dots: folds; diamond: mean +- population std)")
    ax.legend(loc="best")
    return ax
