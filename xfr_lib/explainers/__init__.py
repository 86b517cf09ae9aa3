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

:func:`compare_methods` runs several methods on one pair and measures what each costs.

Private modules: ``_explainer`` (the base class), ``_api`` (the registry and the calls),
``_compare`` (several methods on one pair), ``_inputs`` (images and galleries), ``_results``
(what an explanation returns), ``_target`` (the pair score as a gradient target), ``_gradients``
(layers and batched pair scores of the gradient methods), ``_masks`` (random masks and masked
forward passes), ``_occluders`` (the occlusion grids and Gaussian regions of xFace and Mery's
family). The methods: ``corrrise``, ``rise``, ``lime``, ``xface``, ``mery`` (single and greedy
removal and aggregation, and their average), ``minplus``, ``gradcam``, ``gradcampp``,
``saliency``, ``fggb``; and ``sdd`` (SDD-CAM), which explains an identity classifier's class
(:func:`explain_class`) rather than a pair, so it is not in :data:`METHODS`.
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
from xfr_lib.explainers._compare import MethodComparison, compare_methods, count_forward_images
from xfr_lib.explainers._explainer import Explainer, SignedMaps, check_int, check_number
from xfr_lib.explainers._gradients import usable_layers
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
    spearman_map,
)
from xfr_lib.explainers.fggb import FGGB
from xfr_lib.explainers.gradcam import GradCAM
from xfr_lib.explainers.gradcampp import GradCAMPlusPlus
from xfr_lib.explainers.lime import LIME
from xfr_lib.explainers.mery import (
    GreedyAggregation,
    GreedyRemoval,
    MeryAverage,
    SingleAggregation,
    SingleRemoval,
)
from xfr_lib.explainers.minplus import MinPlus
from xfr_lib.explainers.rise import RISE
from xfr_lib.explainers.saliency import Saliency
from xfr_lib.explainers.sdd import (
    ClassExplanation,
    class_map_layer,
    class_maps,
    explain_class,
    sdd_map,
)
from xfr_lib.explainers.xface import XFace

__all__ = [
    "FGGB",
    "FILLS",
    "LIME",
    "MAP_NAMES",
    "METHODS",
    "RISE",
    "ClassExplanation",
    "CorrRISE",
    "Explainer",
    "Gallery",
    "GradCAM",
    "GradCAMPlusPlus",
    "GreedyAggregation",
    "GreedyRemoval",
    "IdentificationExplanation",
    "IdentificationMatch",
    "ImageInput",
    "MaskSet",
    "MeryAverage",
    "MethodComparison",
    "MinPlus",
    "PatchMasks",
    "PearsonAccumulator",
    "RiseMasks",
    "Saliency",
    "SignedMaps",
    "SimilarityTarget",
    "SingleAggregation",
    "SingleRemoval",
    "VerificationExplanation",
    "XFace",
    "apply_masks",
    "check_int",
    "check_number",
    "class_map_layer",
    "class_maps",
    "compare_methods",
    "count_forward_images",
    "default_patch_size",
    "describe_input",
    "explain",
    "explain_class",
    "explain_identification",
    "fill_image",
    "gaussian_regularize",
    "get_explainer",
    "list_methods",
    "map_summary",
    "masked_scores",
    "method_info",
    "pearson_map",
    "prepare_image",
    "sdd_map",
    "spearman_map",
    "usable_layers",
]
