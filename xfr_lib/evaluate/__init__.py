"""Evaluation: recognition metrics, embeddings of datasets, hard cases, map agreement and the
model-randomisation sanity check.

    from xfr_lib.evaluate import embed_dataset, eer, verification_accuracy

Private modules: ``_metrics`` (verification and identification metrics), ``_embeddings``
(datasets -> embeddings), ``_cases`` (errors and near-threshold pairs), ``_stability``
(agreement of maps between runs), ``_sanity`` (randomised models).
"""

from xfr_lib.evaluate._cases import CASE_KINDS, HARD_KINDS, hardest_cases
from xfr_lib.evaluate._embeddings import EmbeddingSet, embed_dataset, embed_paths
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
from xfr_lib.evaluate._sanity import randomized_copy, resettable_layers
from xfr_lib.evaluate._stability import (
    map_agreement,
    seed_stability,
    spearman,
    top_k_iou,
    top_k_mask,
)

__all__ = [
    "CASE_KINDS", "HARD_KINDS", "RELIABLE_FALSE_MATCHES", "EERResult", "EmbeddingSet",
    "MetricInputError", "VerificationResult", "accuracy_at", "check_scores_labels", "cmc", "eer", "eer_from_curve", "embed_dataset",
    "embed_paths", "fnmr_at_fmr", "hardest_cases", "map_agreement", "randomized_copy",
    "rank_k_accuracy", "ranks", "resettable_layers", "roc", "seed_stability", "spearman",
    "top_k_iou", "top_k_mask", "verification_accuracy",
]
