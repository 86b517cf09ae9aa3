"""The papers' published Deletion / Insertion numbers, to print beside xfr's own.

These are what the papers report, on their models and data (ArcFace ResNet-50 and others;
LFW, CPLFW, Webface-OCC, IJB-C), never on the book's: chapters show them in separate columns
and compare the *ordering* of the methods, not the values. Sources: the conference paper's
Tables 1 and 2 (``/shared/papers/corrrise-verification-conference.md``)
and the journal paper's summary (LFW and IJB-C for CorrRISE only;
its Grad-CAM and RISE deletion on LFW are quoted there without insertion), and the SDD-CAM
paper's deletion table (``/shared/papers/sdd-cam-2505.03837.md``, its summary).
"""

from __future__ import annotations

import pandas as pd

#: xfr's method names for the papers' rows.
PAPER_METHODS = {"Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++", "LIME": "lime",
                 "RISE": "rise", "xFace": "xface", "MinPlus": "minplus", "CorrRISE": "corrrise"}

# Conference paper, Table 1: (Deletion, Insertion) in % per dataset, ArcFace ResNet-50.
_TABLE1 = {
    "Grad-CAM": {"LFW": (50.65, 65.00), "CPLFW": (40.15, 56.77), "Webface-OCC": (35.33, 69.67)},
    "Grad-CAM++": {"LFW": (46.40, 68.02), "CPLFW": (37.08, 58.26), "Webface-OCC": (36.78, 68.51)},
    "LIME": {"LFW": (38.48, 78.72), "CPLFW": (28.83, 70.59), "Webface-OCC": (24.04, 82.15)},
    "RISE": {"LFW": (34.40, 81.83), "CPLFW": (30.86, 67.71), "Webface-OCC": (28.00, 84.25)},
    "xFace": {"LFW": (35.21, 79.95), "CPLFW": (32.34, 65.69), "Webface-OCC": (27.72, 81.17)},
    "MinPlus": {"LFW": (29.98, 85.24), "CPLFW": (21.27, 75.24), "Webface-OCC": (18.32, 89.22)},
    "CorrRISE": {"LFW": (23.29, 85.70), "CPLFW": (17.60, 77.88), "Webface-OCC": (13.24, 89.70)},
}
# Conference paper, Table 2: CorrRISE on three models, LFW: (accuracy, Deletion, Insertion).
_TABLE2 = {"ArcFace": (99.53, 23.29, 85.70), "MagFace": (99.83, 23.35, 85.68),
           "AdaFace": (99.82, 23.31, 85.63)}
# Journal paper (summary): CorrRISE, LFW verification and IJB-C identification.
_JOURNAL = {"LFW": (23.37, 87.15), "IJB-C identification": (14.30, 64.81)}


def published_table1() -> pd.DataFrame:
    """Conference Table 1, long: ``paper method``, ``method`` (xfr's name), ``dataset``,
    ``deletion``, ``insertion`` (similarity maps on matching pairs, ArcFace)."""
    rows = [{"paper method": m, "method": PAPER_METHODS[m], "dataset": d, "deletion": dl,
             "insertion": ins}
            for m, per in _TABLE1.items() for d, (dl, ins) in per.items()]
    return pd.DataFrame(rows)


def published_table2() -> pd.DataFrame:
    """Conference Table 2: CorrRISE on three models (LFW accuracy, Deletion, Insertion)."""
    return pd.DataFrame([{"model": m, "LFW accuracy": a, "deletion": d, "insertion": i}
                         for m, (a, d, i) in _TABLE2.items()])


def published_journal() -> pd.DataFrame:
    """The journal paper's CorrRISE numbers (from its summary): LFW and IJB-C identification."""
    return pd.DataFrame([{"task": t, "deletion": d, "insertion": i}
                         for t, (d, i) in _JOURNAL.items()])


# SDD-CAM paper (arXiv 2505.03837), summary: deletion of the top 20 % of each map, AdaFace
# (ResNet100) fine-tuned on FaceScrub (530 people), 4,494 test images, 96.33 % test accuracy.
_SDD = {"SDD-CAM": (62.33, 51.36), "random CAM": (42.50, 29.73)}
SDD_PAPER_SETUP = {"model": "AdaFace ResNet100, fine-tuned", "data": "FaceScrub",
                   "people": 530, "test images": 4494, "test accuracy (%)": 96.33,
                   "fraction": 0.2}


def published_sdd() -> pd.DataFrame:
    """The SDD-CAM paper's deletion numbers (its summary gives no retention numbers):
    ``paper map``, ``map`` (xfr's name: ``sdd``, ``random``), ``mode``, ``drop (%)`` (average
    confidence drop), ``changed (%)`` (predictions changed)."""
    names = {"SDD-CAM": "sdd", "random CAM": "random"}
    return pd.DataFrame([{"paper map": m, "map": names[m], "mode": "deletion",
                          "drop (%)": d, "changed (%)": c} for m, (d, c) in _SDD.items()])


#: Pixels-to-Words' recognition figures (from its summary): its system, the data and its
#: equal error rate and false non-match rate at one false match rate.
PIXELS_TO_WORDS = {"system": "MTCNN detection, ArcFace embeddings", "data": "LFW",
                   "eer (%)": 5.12, "fnmr (%)": 6.07, "fmr": 1e-4,
                   "methods": ("single_aggregation", "greedy_aggregation", "single_removal",
                               "greedy_removal", "mery_average"),
                   "qa": "BERT extractive question answering over a context of scores, "
                         "confidence and an explainability table"}
