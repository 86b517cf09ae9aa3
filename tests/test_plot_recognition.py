"""Tests of xfr_lib.plot.recognition: the figures contain what they claim."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.stats import norm

from xfr_lib import plot as style
from xfr_lib.evaluate import cmc, eer, roc, verification_accuracy
from xfr_lib.plot import (
    plot_cmc,
    plot_det,
    plot_fold_accuracies,
    plot_roc,
    plot_score_distributions,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def pairs(d_prime: float, seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    return rng.normal(labels * d_prime, 1.0), labels


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_score_distributions_lines_and_legend():
    scores, labels = pairs(3.0, 0)
    t = eer(scores, labels).threshold
    ax = plot_score_distributions(scores, labels, threshold=t, label="model A")
    assert len(ax.lines) == 3  # two KDEs + threshold
    threshold_line = ax.lines[-1]
    assert np.allclose(threshold_line.get_xdata(), t)
    texts = legend_texts(ax)
    assert texts == [f"genuine (n={labels.sum()})", f"impostor (n={(~labels).sum()})",
                     f"threshold {t:.3f}"]
    assert ax.get_title() == "model A"
    assert "cosine" in ax.get_xlabel() and "density" in ax.get_ylabel()
    # Two filled step histograms, each a density: the area under each is 1.
    assert len(ax.collections) == 2
    for coll in ax.collections:
        v = coll.get_paths()[0].vertices
        x, y = v[:, 0], v[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace
        assert area == pytest.approx(1.0, rel=1e-6)


def test_score_distributions_without_threshold_and_into_given_axes():
    scores, labels = pairs(2.0, 1)
    _, axes = plt.subplots(1, 2)
    ax = plot_score_distributions(scores, labels, ax=axes[1], kde=False)
    assert ax is axes[1] and len(ax.lines) == 0
    assert len(legend_texts(ax)) == 2


def test_roc_one_line_per_model_log_fmr_and_eer_in_legend():
    curves = {"strong": roc(*pairs(3.0, 2)), "weak": roc(*pairs(1.0, 3))}
    ax = plot_roc(curves)
    assert len(ax.lines) == 2
    assert ax.get_xscale() == "log"
    texts = legend_texts(ax)
    assert texts[0].startswith("strong (EER ") and texts[1].startswith("weak (EER ")
    # The strong model's TMR is higher at every FMR drawn of the weak model's curve.
    x_weak, y_weak = ax.lines[1].get_data()
    x_strong, y_strong = ax.lines[0].get_data()
    mid = (x_weak > 1e-2) & (x_weak < 0.5)
    assert (np.interp(x_weak[mid], x_strong, y_strong) > y_weak[mid]).all()
    assert y_weak.max() <= 100 and "%" in ax.get_ylabel() and "FMR" in ax.get_xlabel()


def test_det_probit_axes_with_percent_ticks():
    scores, labels = pairs(2.0, 4, n=20000)
    curve = roc(scores, labels)
    ax = plot_det({"model": curve, "other": roc(*pairs(1.0, 5, n=20000))})
    ax.figure.canvas.draw()
    assert len(ax.lines) == 2
    x, y = ax.lines[0].get_data()
    keep = (curve["fmr"] > 0) & (curve["fmr"] < 1) & (curve["fnmr"] > 0) & (curve["fnmr"] < 1)
    np.testing.assert_allclose(x, norm.ppf(curve.loc[keep, "fmr"]))
    np.testing.assert_allclose(y, norm.ppf(curve.loc[keep, "fnmr"]))
    # Two unit-variance Gaussians give a straight DET line of slope 1: y = -x - d'.
    mid = (x > -2) & (x < 0)
    slope, intercept = np.polyfit(x[mid], y[mid], 1)
    assert slope == pytest.approx(-1.0, abs=0.1) and intercept == pytest.approx(-2.0, abs=0.15)
    labels = {round(float(norm.cdf(v)), 6): t.get_text()
              for v, t in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)}
    assert labels[0.01] == "1" and labels[0.5] == "50" and labels[0.1] == "10"
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert ax.get_xlim()[1] == pytest.approx(0.0)  # 50 %


def test_cmc_lines_and_legend():
    rng = np.random.default_rng(6)
    g = np.arange(20)
    p = rng.integers(0, 20, 100)
    sim = rng.normal(size=(100, 20)) + 1.5 * (p[:, None] == g[None, :])
    curves = {"m1": cmc(sim, p, g), "m2": cmc(rng.normal(size=(100, 20)), p, g)}
    ax = plot_cmc(curves)
    assert len(ax.lines) == 2
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, 21))
    np.testing.assert_allclose(y, 100 * curves["m1"]["accuracy"])
    assert legend_texts(ax)[0].startswith("m1 (rank-1 ")


def test_fold_accuracies_plot():
    res = {"A": verification_accuracy(*pairs(3.0, 7), folds=10),
           "B": verification_accuracy(*pairs(1.0, 8), folds=10)}
    ax = plot_fold_accuracies(res)
    assert len(ax.collections) >= 2  # one dot cloud per model (+ error bars)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets)[:, 1], 100 * res["A"].fold_accuracies)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    assert len(legend_texts(ax)) == 2


def test_curves_must_be_a_dict():
    with pytest.raises(ValueError, match="dict"):
        plot_roc(roc(*pairs(1.0, 9)))


def test_theme_and_palette():
    style.set_theme()
    assert len(style.palette(12)) == 12 and style.palette(12)[0] == style.palette(12)[10]


def test_kde_thinning_keeps_the_density():
    scores, labels = pairs(2.0, 10, n=30_000)
    full = plot_score_distributions(scores, labels, kde_max_points=10**9)
    thin = plot_score_distributions(scores, labels, kde_max_points=5000)
    for a, b in zip(full.lines[:2], thin.lines[:2], strict=True):
        xa, ya = a.get_data()
        xb, yb = b.get_data()
        # 3 % of the peak: Scott's bandwidth is a little wider for fewer points.
        assert np.abs(np.interp(xa, xb, yb) - ya).max() < 0.03 * ya.max()


def test_det_and_roc_of_a_perfect_model():
    labels = np.arange(400) < 100
    scores = np.where(labels, 0.8, 0.1) + np.linspace(0, 0.05, 400)
    ax = plot_det({"perfect": roc(scores, labels)})
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 0  # nothing finite to draw
    assert legend_texts(ax) == ["perfect (EER 0 %), no point with both rates > 0"]
    ax = plot_roc({"perfect": roc(scores, labels)}, tmr_range=(90, 100.2))
    assert ax.get_ylim() == (90, 100.2)
    assert (ax.lines[0].get_ydata() == 100).all()  # TMR 100 % wherever FMR > 0
