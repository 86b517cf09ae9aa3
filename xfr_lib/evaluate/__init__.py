"""Evaluation: recognition metrics, embeddings of datasets, hard cases, map agreement and the
model-randomisation sanity check.

    from xfr_lib.evaluate import embed_dataset, eer, verification_accuracy

Private modules: ``_metrics`` (verification and identification metrics), ``_embeddings``
(datasets -> embeddings), ``_cases`` (errors and near-threshold pairs), ``_stability``
(agreement of maps between runs), ``_maps`` (properties of one map: spread, roughness,
dissimilarity share), ``_sanity`` (randomised models).
"""

from xfr_lib.evaluate._cases import CASE_KINDS, HARD_KINDS, hardest_cases
from xfr_lib.evaluate._embeddings import (
    EmbeddingSet,
    IdentificationScores,
    embed_dataset,
    embed_paths,
    identification_scores,
)
from xfr_lib.evaluate._maps import dissimilarity_share, mass_area, roughness
from xfr_lib.evaluate._metrics import (
    RELIABLE_FALSE_MATCHES,
    EERResult,
    MetricInputError,
    VerificationResult,
    accuracy_at,
    check_scores_labels,
    cmc,
    eer,
    eer_from_curve,
    fnmr_at_fmr,
    rank_k_accuracy,
    ranks,
    roc,
    verification_accuracy,
)
from xfr_lib.evaluate._occlusion import OcclusionCase, occlusion_experiment
from xfr_lib.evaluate._regions import CONCENTRATED, mean_shares, region_table, top_regions
from xfr_lib.evaluate._sanity import (
    CONSTANT_COSINE,
    EmbeddingSpread,
    embedding_spread,
    learned_tensor_names,
    probe_inputs,
    randomization_layers,
    randomized_copy,
)
from xfr_lib.evaluate._stability import (
    agreement_fit,
    map_agreement,
    seed_stability,
    spearman,
    stability_over_n,
    top_k_iou,
    top_k_mask,
)

__all__ = [
    "CASE_KINDS",
    "CONCENTRATED",
    "CONSTANT_COSINE",
    "HARD_KINDS",
    "RELIABLE_FALSE_MATCHES",
    "EERResult",
    "EmbeddingSet",
    "EmbeddingSpread",
    "IdentificationScores",
    "MetricInputError",
    "OcclusionCase",
    "VerificationResult",
    "accuracy_at",
    "agreement_fit",
    "check_scores_labels",
    "cmc",
    "dissimilarity_share",
    "eer",
    "eer_from_curve",
    "embed_dataset",
    "embed_paths",
    "embedding_spread",
    "fnmr_at_fmr",
    "hardest_cases",
    "identification_scores",
    "learned_tensor_names",
    "map_agreement",
    "mass_area",
    "mean_shares",
    "occlusion_experiment",
    "probe_inputs",
    "randomization_layers",
    "randomized_copy",
    "rank_k_accuracy",
    "ranks",
    "region_table",
    "roc",
    "roughness",
    "seed_stability",
    "spearman",
    "stability_over_n",
    "top_k_iou",
    "top_k_mask",
    "top_regions",
    "verification_accuracy",
]
