"""Write explanations to disk: a PNG figure and a JSON record (used by ``xfr explain`` and
``xfr identify``, ``--method sdd`` included).

The JSON holds the decision (score, threshold, decision), its provenance (method, every
parameter, model, inputs) and per map ``max``, ``mean``, ``top10_mass`` (share of the map's
total in its top 10 % of pixels) and ``peak`` ``[row, col]`` in the aligned chip. Every file is
written to a temporary name in the target folder and renamed into place, so a crash never
leaves a truncated report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xfr_lib._io import atomic_write, atomic_write_text
from xfr_lib.explainers import IdentificationExplanation, VerificationExplanation
from xfr_lib.plot._saliency import (
    plot_class_explanation,
    plot_identification,
    plot_verification,
)


def save_verification_report(
    expl: VerificationExplanation,
    out_dir: str | Path,
    *,
    stem: str | None = None,
    dpi: int = 150,
    save_maps: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Save the figure and JSON of a verification explanation.

    Args:
        expl: the explanation.
        out_dir: folder to write into (created if needed).
        stem: file name without extension; default ``verification_<method>``.
        dpi: resolution of the PNG.
        save_maps: also write the four maps and both chips to ``<stem>.npz``.
        extra: more JSON-ready fields for the record (``xfr explain`` adds the region table,
            ``"words"``, and its paragraph, ``"text"``).

    Returns:
        ``{"figure": png path, "json": json path}`` (plus ``"maps"`` with ``save_maps``).
    """
    stem = stem or f"verification_{expl.method}"
    record = {**expl.to_dict(), **(extra or {})}
    arrays = {**expl.maps, "chip_a": expl.chip_a, "chip_b": expl.chip_b}
    return _save(record, lambda: plot_verification(expl), out_dir, stem, dpi,
                 arrays if save_maps else None)


def save_identification_report(
    expl: IdentificationExplanation,
    out_dir: str | Path,
    *,
    stem: str | None = None,
    dpi: int = 150,
    dissimilarity: bool = True,
    save_maps: bool = False,
) -> dict[str, Path]:
    """Save the figure and JSON of an identification explanation.

    Args:
        expl: the explanation.
        out_dir: folder to write into (created if needed).
        stem: file name without extension; default ``identification_<method>``.
        dpi: resolution of the PNG.
        dissimilarity: show the dissimilarity columns in the figure.
        save_maps: also write every map and chip to ``<stem>.npz``.

    Returns:
        ``{"figure": png path, "json": json path}`` (plus ``"maps"`` with ``save_maps``).
    """
    stem = stem or f"identification_{expl.method}"
    arrays: dict[str, np.ndarray] = {"probe_chip": expl.probe_chip}
    for m in expl.matches:
        arrays[f"rank{m.rank}_chip"] = m.chip
        arrays |= {f"rank{m.rank}_{name}": v for name, v in m.maps.items()}
    return _save(expl.to_dict(), lambda: plot_identification(expl, dissimilarity=dissimilarity),
                 out_dir, stem, dpi, arrays if save_maps else None)


def save_class_report(expl: Any, out_dir: str | Path, *, stem: str | None = None,
                      dpi: int = 150, save_maps: bool = False) -> dict[str, Path]:
    """Save the figure and JSON of a class explanation (SDD-CAM,
    :func:`xfr_lib.explainers.sdd.explain_class`); default stem ``class_sdd_<target>``. The
    JSON adds each map's half-mass area (the share of the chip holding half its mass).

    Returns:
        ``{"figure": png path, "json": json path}`` (plus ``"maps"`` with ``save_maps``:
        the target's maps, the competitors' and the chip).
    """
    from xfr_lib.evaluate import mass_area

    stem = stem or f"class_sdd_{expl.target}"
    record = expl.to_dict()
    for name, m in record["maps"].items():  # narrowness, the paper's claim for SDD
        area = mass_area(expl.maps["sdd"] if name == "sdd" else np.maximum(expl.maps[name], 0))
        m["half-mass area"] = None if np.isnan(area) else area
    arrays = {"chip": expl.chip, **expl.maps,
              **{f"competitors_{k}": v for k, v in expl.competitor_maps.items()}}
    return _save(record, lambda: plot_class_explanation(expl), out_dir, stem, dpi,
                 arrays if save_maps else None)


def _save(
    record: dict[str, Any],
    make_figure: Callable[[], Any],
    out_dir: str | Path,
    stem: str,
    dpi: int,
    arrays: dict[str, np.ndarray] | None,
) -> dict[str, Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"figure": out / f"{stem}.png", "json": out / f"{stem}.json"}
    fig = make_figure()
    try:
        atomic_write(paths["figure"], lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    atomic_write_text(paths["json"], json.dumps(record, indent=2, allow_nan=False) + "\n")
    if arrays is not None:
        paths["maps"] = out / f"{stem}.npz"
        atomic_write(paths["maps"], lambda f: np.savez_compressed(f, **arrays))
    return paths

