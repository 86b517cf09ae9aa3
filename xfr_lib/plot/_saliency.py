"""Figures of saliency explanations: overlays of maps on face chips.

``plot_verification`` shows a pair (both chips, their similarity and dissimilarity maps) with
the score, threshold and decision; ``plot_identification`` a probe with its top-K matches;
``overlay`` blends one map onto one chip for custom figures.

Maps of one figure share one colour scale by default (``shared=True``), so a weak map looks
weak: the CorrRISE papers' point that non-matching pairs have similarity maps "with rather low
salient values" is visible only that way.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

#: Default colour map: blue (low) to red (high), like the papers' figures, but perceptually
#: more even than "jet".
CMAP = "turbo"


def overlay(
    chip: np.ndarray,
    saliency_map: np.ndarray,
    *,
    cmap: str = CMAP,
    alpha: float = 0.5,
    vmin: float = 0.0,
    vmax: float | None = None,
) -> np.ndarray:
    """Blend a map onto a chip: ``(1 - a) * chip + a * colour(map)``, with ``a`` growing
    with the map's value so that zero-saliency pixels show the face unchanged.

    Args:
        chip: HxWx3 uint8 (or float in [0, 1]) RGB image.
        saliency_map: ``[H, W]`` map (resized to the chip if its size differs).
        cmap: matplotlib/seaborn colour map name.
        alpha: opacity of the colour at the map's maximum.
        vmin: map value shown as the lowest colour.
        vmax: map value shown as the highest colour; None = the map's maximum.

    Returns:
        HxWx3 float RGB image in [0, 1].
    """
    img = np.asarray(chip, dtype=np.float64)
    if img.dtype.kind in "ui" or img.max() > 1.0:
        img = img / 255.0
    m = np.asarray(saliency_map, dtype=np.float64)
    if m.shape != img.shape[:2]:
        m = _resize(m, img.shape[:2])
    top = float(m.max()) if vmax is None else float(vmax)
    span = top - vmin if top > vmin else 1.0
    level = np.clip((np.nan_to_num(m) - vmin) / span, 0.0, 1.0)
    colour = matplotlib.colormaps[cmap](level)[..., :3]
    # sqrt: weak but non-zero saliency stays visible, zero leaves the face untouched.
    a = alpha * np.sqrt(level)[..., None]
    return np.clip((1 - a) * img + a * colour, 0.0, 1.0)


def plot_verification(
    expl: Any,
    *,
    cmap: str = CMAP,
    alpha: float = 0.6,
    shared: bool = True,
    figsize: tuple[float, float] = (9.0, 6.4),
    title: str | None = None,
) -> Figure:
    """Figure of a :class:`~xfr_lib.explainers.VerificationExplanation`.

    Rows: image A and image B. Columns: the chip, its similarity overlay, its dissimilarity
    overlay. The title gives method, model, score, threshold and decision; a colour bar gives
    the map scale.

    Args:
        expl: the explanation.
        cmap: colour map.
        alpha: overlay opacity at the top of the scale.
        shared: one scale for all four maps (True) or one per map (False; the colour bar then
            shows the fraction of each map's own maximum).
        figsize: figure size in inches.
        title: replaces the default title.
    """
    fig, axes = plt.subplots(2, 3, figsize=figsize, layout="constrained")
    maps = [[expl.similarity_a, expl.dissimilarity_a], [expl.similarity_b, expl.dissimilarity_b]]
    vmax = _vmax([m for row in maps for m in row]) if shared else None
    for r, (chip, label) in enumerate([(expl.chip_a, "A"), (expl.chip_b, "B")]):
        axes[r, 0].imshow(chip)
        axes[r, 0].set_title(f"image {label}")
        for c, kind in enumerate(("similarity", "dissimilarity")):
            m = maps[r][c]
            axes[r, c + 1].imshow(overlay(chip, m, cmap=cmap, alpha=alpha,
                                          vmax=vmax if shared else _vmax([m])))
            axes[r, c + 1].set_title(f"{kind} {label} (max {float(m.max()):.3g})")
    for ax in axes.ravel():
        ax.set_axis_off()
    _colorbar(fig, axes, cmap, vmax if shared else 1.0,
              "saliency" if shared else "fraction of map maximum")
    fig.suptitle(title or _verification_title(expl))
    return fig



def plot_verification_rows(expls: list[Any], labels: list[str], shared: bool | str = True,
                           alpha: float = 0.7) -> Figure:
    """Several pairs, one row each: A, similarity A, dissimilarity A, B, similarity B,
    dissimilarity B, with the pair's score and decision.

    Args:
        expls: verification explanations.
        labels: one label per pair (shown above its first image).
        shared: True for one colour scale over the whole figure, ``"row"`` for one per row;
            each map's title gives its peak, so rows stay comparable by number.
        alpha: overlay opacity at the map's maximum.
    """
    fig, axes = plt.subplots(len(expls), 6, figsize=(11, 1.95 * len(expls) + 0.3),
                             squeeze=False, layout="constrained")
    top = max(float(m.max()) for e in expls for m in e.maps.values()) or 1.0
    for row, e, label in zip(axes, expls, labels, strict=True):
        vmax = top if shared is True else (max(float(m.max()) for m in e.maps.values()) or 1.0)
        panels = [(e.chip_a, None, ""), (e.chip_a, e.similarity_a, "similarity A"),
                  (e.chip_a, e.dissimilarity_a, "dissimilarity A"), (e.chip_b, None, "B"),
                  (e.chip_b, e.similarity_b, "similarity B"),
                  (e.chip_b, e.dissimilarity_b, "dissimilarity B")]
        for ax, (chip, m, name) in zip(row, panels, strict=True):
            ax.imshow(chip if m is None else overlay(chip, m, vmax=vmax, alpha=alpha))
            if name:
                ax.set_title(name if m is None else f"{name} ({m.max():.2g})", fontsize=8)
            ax.set_axis_off()
        verdict = "match" if e.decision else "non-match"
        row[0].set_title(f"A: {label}\nscore {e.score:.3f}: {verdict}", fontsize=8, loc="left")
    return fig

def plot_method_grid(comparisons: list[Any], labels: list[str], side: str = "a",
                     alpha: float = 0.7, panel: float = 1.05) -> Figure:
    """Several methods on several pairs: per pair a similarity row and a dissimilarity row of
    one image, one column per method (the layout of the CorrRISE conference paper's Fig. 7,
    with dissimilarity added).

    Each method's maps live on their own scale (a correlation, a gradient, a score drop), so
    every method gets one colour scale per pair, shared by its four maps: within a cell,
    similarity and dissimilarity compare by colour; across methods only by where they fall.

    Args:
        comparisons: :class:`~xfr_lib.explainers.MethodComparison` results, one per pair,
            with the same methods.
        labels: one label per pair.
        side: ``"a"`` or ``"b"``: whose maps to show.
        alpha: overlay opacity at the scale's maximum.
        panel: size of one panel in inches.
    """
    if side not in ("a", "b"):
        raise ValueError(f"side={side!r}: use 'a' or 'b'")
    methods = list(comparisons[0].explanations)
    for c in comparisons:
        if list(c.explanations) != methods:
            raise ValueError("every comparison must hold the same methods in the same order")
    rows, cols = 2 * len(comparisons), len(methods) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, panel * rows + 0.4),
                             squeeze=False, layout="constrained")
    for k, (comp, label) in enumerate(zip(comparisons, labels, strict=True)):
        first = next(iter(comp.explanations.values()))
        chip = getattr(first, f"chip_{side}")
        verdict = {True: "match", False: "non-match", None: "no threshold"}[first.decision]
        for r, kind in enumerate(("similarity", "dissimilarity")):
            ax = axes[2 * k + r, 0]
            ax.imshow(chip)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(f"{label}\nscore {first.score:.2f}, {verdict}", fontsize=7,
                             loc="left")
            ax.text(-0.06, 0.5, kind, rotation=90, transform=ax.transAxes, fontsize=7,
                    ha="right", va="center")
        for j, name in enumerate(methods, start=1):
            e = comp.explanations[name]
            vmax = _vmax(e.maps.values())
            for r, kind in enumerate(("similarity", "dissimilarity")):
                ax = axes[2 * k + r, j]
                ax.imshow(overlay(chip, getattr(e, f"{kind}_{side}"), vmax=vmax, alpha=alpha))
                ax.set_axis_off()
                if k == 0 and r == 0:
                    ax.set_title(name, fontsize=7)
    return fig


def plot_identification(
    expl: Any,
    *,
    cmap: str = CMAP,
    alpha: float = 0.6,
    dissimilarity: bool = False,
    shared: bool = True,
    row_height: float = 2.3,
    title: str | None = None,
) -> Figure:
    """Figure of an :class:`~xfr_lib.explainers.IdentificationExplanation`: one row per match.

    Columns: the probe's similarity to this match, the match's chip, the match's similarity
    to the probe (and, with ``dissimilarity=True``, both dissimilarity maps). Row titles give
    rank, identity, score and whether it passes the threshold.

    Args:
        expl: the explanation.
        cmap: colour map.
        alpha: overlay opacity at the top of the scale.
        dissimilarity: add the two dissimilarity columns.
        shared: one colour scale for the whole figure.
        row_height: inches per match.
        title: replaces the default title.
    """
    cols = 5 if dissimilarity else 3
    k = len(expl.matches)
    fig, axes = plt.subplots(k, cols, figsize=(2.3 * cols + 0.8, row_height * k + 0.6),
                             layout="constrained", squeeze=False)
    all_maps = [mm for m in expl.matches for mm in
                (m.maps.values() if dissimilarity else (m.similarity_probe, m.similarity_gallery))]
    vmax = _vmax(all_maps) if shared else None
    for row, m in zip(axes, expl.matches, strict=True):
        panels = [(expl.probe_chip, m.similarity_probe, "probe: similarity"),
                  (m.chip, None, f"#{m.rank} {m.identity}\nscore {m.score:.3f}{_mark(m.decision)}"),
                  (m.chip, m.similarity_gallery, "match: similarity")]
        if dissimilarity:
            panels += [(expl.probe_chip, m.dissimilarity_probe, "probe: dissimilarity"),
                       (m.chip, m.dissimilarity_gallery, "match: dissimilarity")]
        for ax, (chip, smap, label) in zip(row, panels, strict=True):
            if smap is None:
                ax.imshow(chip)
            else:
                ax.imshow(overlay(chip, smap, cmap=cmap, alpha=alpha,
                                  vmax=vmax if shared else _vmax([smap])))
            ax.set_title(label, fontsize="small")
            ax.set_axis_off()
    _colorbar(fig, axes, cmap, vmax if shared else 1.0,
              "saliency" if shared else "fraction of map maximum")
    fig.suptitle(title or (
        f"{expl.method} on {expl.model}: top {len(expl.matches)} of {expl.gallery_size} "
        f"(threshold {_fmt(expl.threshold)})"
    ))
    return fig


def _verification_title(expl: Any) -> str:
    decision = {True: "match", False: "non-match", None: "no threshold"}[expl.decision]
    return (f"{expl.method} on {expl.model}: score {expl.score:.3f}, "
            f"threshold {_fmt(expl.threshold)} -> {decision}")


def _mark(decision: bool | None) -> str:
    return {True: " (match)", False: " (below thr.)", None: ""}[decision]


def _fmt(v: float) -> str:
    return "none" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _vmax(maps: Any) -> float:
    top = max((float(np.max(m)) for m in maps), default=0.0)
    return top if top > 0 else 1.0


def _colorbar(fig: Figure, axes: np.ndarray, cmap: str, vmax: float, label: str) -> None:
    sm = ScalarMappable(norm=Normalize(0.0, vmax), cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.8, label=label)


def _resize(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(m.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def plot_faces(image: Any, faces: list[Any] | None = None, *, figwidth: float = 8.0) -> Figure:
    """A photo with each detected face boxed and numbered as ``face=k`` / ``--face k`` takes it.

    Args:
        image: a path or an HxWx3 uint8 RGB photo.
        faces: the faces (:func:`xfr_lib.faces.list_faces`); detected here if None.
        figwidth: figure width in inches (the height follows the photo).
    """
    from matplotlib.patches import Rectangle

    from xfr_lib.faces import list_faces, load_image

    rgb = load_image(image)
    faces = list_faces(rgb) if faces is None else faces
    h, w = rgb.shape[:2]
    fig, ax = plt.subplots(figsize=(figwidth, figwidth * h / w), layout="constrained")
    ax.imshow(rgb)
    for k, face in enumerate(faces):
        x, y, bw, bh = (float(v) for v in face.box)
        ax.add_patch(Rectangle((x, y), bw, bh, fill=False, lw=2, color="yellow"))
        ax.text(x, y, f" {k} ", color="black", backgroundcolor="yellow", fontsize=11,
                va="bottom", ha="left", fontweight="bold")
    ax.set_title(f"{len(faces)} face(s); --face k picks face k (0 = the largest)")
    ax.set_axis_off()
    return fig


def plot_class_explanation(expl: Any, *, competitors: int = 3, cmap: str = CMAP,
                           alpha: float = 0.6, title: str | None = None) -> Figure:
    """Figure of a :class:`~xfr_lib.explainers.sdd.ClassExplanation`.

    Top row: the probe, the target's Grad-CAM and CAM-style (HiResCAM) maps and its SDD map,
    each titled with its half-mass area (the share of the chip holding half the map's mass:
    smaller = narrower). Bottom row: the same kind of map as SDD's base for the first
    ``competitors`` competing classes, with their probabilities. Class maps show their
    positive parts; every panel is scaled to its own maximum (the maps have different units).
    """
    from xfr_lib.evaluate import mass_area

    k = min(int(competitors), len(expl.competitors))
    cols = max(4, k + 1)
    fig, axes = plt.subplots(2 if k else 1, cols, figsize=(2.2 * cols + 0.6, 2.5 * (2 if k else 1)),
                             layout="constrained", squeeze=False)
    p_target = expl.probabilities[expl.target]
    top = [(None, f"probe\n{expl.target}: p = {p_target:.2f}"),
           (np.maximum(expl.maps["gradcam"], 0), "Grad-CAM"),
           (np.maximum(expl.maps["hirescam"], 0), "CAM-style (HiResCAM)"),
           (expl.maps["sdd"], f"SDD ({len(expl.competitors)} competitors)")]
    for ax, (smap, label) in zip(axes[0], top, strict=False):
        if smap is None:
            ax.imshow(expl.chip)
        else:
            ax.imshow(overlay(expl.chip, smap, cmap=cmap, alpha=alpha))
            area = mass_area(smap)
            label += "\nhalf mass: empty" if np.isnan(area) else f"\nhalf mass on {100 * area:.0f} %"
        ax.set_title(label, fontsize="small")
    base = expl.params.get("base", "hirescam")
    if k:
        axes[1, 0].text(0.5, 0.5, f"competitors'\n{base} maps", ha="center", va="center",
                        fontsize="small", transform=axes[1, 0].transAxes)
        for j in range(k):
            name = expl.competitors[j]
            ax = axes[1, j + 1]
            ax.imshow(overlay(expl.chip, np.maximum(expl.competitor_maps[base][j], 0),
                              cmap=cmap, alpha=alpha))
            ax.set_title(f"{name}: p = {expl.probabilities[name]:.2f}", fontsize="small")
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title or (f"SDD-CAM on {expl.model}: class {expl.target} (predicted "
                           f"{expl.predicted}), layer {expl.params['layer']}"),
                 fontsize="medium")
    return fig
