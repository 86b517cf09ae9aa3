"""Explanation methods for face verification and identification, behind one interface.

    import xfr_lib
    model = xfr_lib.load_model("dlib_resnet29")
    result = xfr_lib.explain("corrrise", model, "a.jpg", "b.jpg", seed=0)

:func:`explain` returns a :class:`VerificationExplanation` with four maps (similarity and
dissimilarity, for A and for B); :func:`explain_identification` an
:class:`IdentificationExplanation` for the top-K matches of a probe in a gallery.

A method is one file of this package: an :class:`Explainer` subclass registered with
``@METHODS.register("name")`` whose one hook, :meth:`Explainer.signed_maps`, returns a signed
map per image; the base class checks it and splits it into similarity and dissimilarity.
Importing this package imports every method module below, which fills :data:`METHODS`.

Private modules: ``_explainer`` (the base class), ``_api`` (the registry and the calls),
``_inputs`` (images and galleries), ``_results`` (what an explanation returns), ``_target``
(the pair score as a gradient target), ``_masks`` (random masks and masked forward passes).
Figures and report files of explanations are in :mod:`xfr_lib.plot`.
"""

from xfr_lib.explainers._api import (
    METHODS,
    explain,
    explain_identification,
    get_explainer,
    list_methods,
    method_info,
)
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._inputs import Gallery, ImageInput, describe_input, prepare_image
from xfr_lib.explainers._masks import (
    FILLS,
    MaskSet,
    PatchMasks,
    RiseMasks,
    apply_masks,
    default_patch_size,
    fill_image,
    masked_scores,
)
from xfr_lib.explainers._results import (
    MAP_NAMES,
    IdentificationExplanation,
    IdentificationMatch,
    VerificationExplanation,
    map_summary,
)
from xfr_lib.explainers._target import SimilarityTarget

# The methods: each module registers its Explainer in METHODS.
from xfr_lib.explainers.corrrise import (
    CorrRISE,
    PearsonAccumulator,
    gaussian_regularize,
    pearson_map,
)
from xfr_lib.explainers.rise import RISE

__all__ = [
    "FILLS", "MAP_NAMES", "METHODS", "RISE", "CorrRISE", "Explainer", "Gallery",
    "IdentificationExplanation", "IdentificationMatch", "ImageInput", "MaskSet", "PatchMasks",
    "PearsonAccumulator", "RiseMasks", "SignedMaps", "SimilarityTarget",
    "VerificationExplanation", "apply_masks", "check_int", "check_number",
    "default_patch_size", "describe_input", "explain", "explain_identification", "fill_image",
    "gaussian_regularize", "get_explainer", "list_methods", "map_summary", "masked_scores",
    "method_info", "pearson_map", "prepare_image",
]
