"""Explanation methods for face verification and identification, behind one interface.

``explain(method, model, a, b, **params)`` returns a :class:`VerificationExplanation` with
four maps (similarity and dissimilarity, for A and for B); ``explain_identification(method,
model, probe, gallery, k)`` an :class:`IdentificationExplanation` for the top-K matches.
Each method is an :class:`Explainer` subclass in its own module of this package, registered
under its name (``list_methods()``).
"""

from xfr_lib.explain.base import (
    MAP_NAMES,
    Explainer,
    Gallery,
    IdentificationExplanation,
    IdentificationMatch,
    SideMaps,
    SimilarityTarget,
    VerificationExplanation,
    explain,
    explain_identification,
    get_explainer,
    list_methods,
    map_summary,
    method_info,
    prepare_image,
    register_explainer,
)
from xfr_lib.explain.corrrise import CorrRISE, gaussian_regularize, pearson_map
from xfr_lib.explain.masks import PatchMasks, RiseMasks
from xfr_lib.explain.report import save_identification_report, save_verification_report
from xfr_lib.explain.rise import RISE

__all__ = [
    "MAP_NAMES",
    "RISE",
    "CorrRISE",
    "Explainer",
    "Gallery",
    "IdentificationExplanation",
    "IdentificationMatch",
    "PatchMasks",
    "RiseMasks",
    "SideMaps",
    "SimilarityTarget",
    "VerificationExplanation",
    "explain",
    "explain_identification",
    "gaussian_regularize",
    "get_explainer",
    "list_methods",
    "map_summary",
    "method_info",
    "pearson_map",
    "prepare_image",
    "register_explainer",
    "save_identification_report",
    "save_verification_report",
]
