"""Plots: saliency overlays and explanation figures, recognition curves, and the book's theme.

Private modules: ``_saliency`` (maps over chips), ``_recognition`` (score distributions, ROC,
DET, CMC, fold accuracies), ``_report`` (an explanation's figure and JSON record, as the
command line writes them), ``_words`` (the score calibration behind a confidence, a pair's
region table), ``_style`` (seaborn theme and palette).
"""

from xfr_lib.plot._recognition import (
    plot_cmc,
    plot_det,
    plot_fold_accuracies,
    plot_roc,
    plot_score_distributions,
)
from xfr_lib.plot._report import (
    save_class_report,
    save_identification_report,
    save_verification_report,
)
from xfr_lib.plot._saliency import (
    CMAP,
    overlay,
    plot_class_explanation,
    plot_faces,
    plot_identification,
    plot_method_grid,
    plot_verification,
    plot_verification_rows,
)
from xfr_lib.plot._style import palette, set_theme
from xfr_lib.plot._words import plot_calibration, plot_region_table

__all__ = [
    "CMAP", "overlay", "palette", "plot_calibration", "plot_class_explanation", "plot_cmc",
    "plot_det", "plot_faces", "plot_fold_accuracies", "plot_identification", "plot_method_grid",
    "plot_region_table", "plot_roc", "plot_score_distributions", "plot_verification",
    "plot_verification_rows", "save_class_report", "save_identification_report",
    "save_verification_report", "set_theme",
]
