"""Evaluation: recognition metrics, embeddings of datasets, hard cases, map agreement and the
model-randomisation sanity check.

    from xfr_lib.evaluate import embed_dataset, eer, verification_accuracy

Private modules: ``_metrics`` (verification and identification metrics), ``_embeddings``
(datasets -> embeddings), ``_cases`` (errors and near-threshold pairs), ``_stability``
(agreement of maps between runs), ``_maps`` (properties of one map: spread, roughness,
dissimilarity share), ``_sanity`` (randomised models), ``_deletion`` (Deletion / Insertion
curves), ``_fills`` (what replaces deleted pixels, ROAD included), ``_intervals`` (bootstrap),
``_retention`` (deletion and retention of class maps, SDD-CAM's evaluation), ``_runner`` (the
resumable evaluation of methods x models, ``xfr evaluate``), ``_distributed`` (its tasks on a
Dask cluster; runtime extrapolation), ``_published`` (the papers' numbers).
"""

from xfr_lib.evaluate._cases import CASE_KINDS, HARD_KINDS, hardest_cases
from xfr_lib.evaluate._deletion import (
    MODES,
    MODIFIED_IMAGES,
    TIE_RULES,
    curve_area,
    identification_curve,
    pair_seed,
    pixel_order,
    removal_masks,
    step_fractions,
    verification_curve,
)
from xfr_lib.evaluate._distributed import extrapolate_runtime, local_cluster
from xfr_lib.evaluate._embeddings import (
    EmbeddingSet,
    IdentificationScores,
    embed_dataset,
    embed_paths,
    identification_scores,
)
from xfr_lib.evaluate._fills import EVALUATION_FILLS, check_evaluation_fill, fill_removed
from xfr_lib.evaluate._ground_truth import detector_auroc, pointing_game
from xfr_lib.evaluate._intervals import bootstrap_interval
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
from xfr_lib.evaluate._published import (
    PAPER_METHODS,
    PIXELS_TO_WORDS,
    SDD_PAPER_SETUP,
    published_journal,
    published_sdd,
    published_table1,
    published_table2,
)
from xfr_lib.evaluate._randomisation import map_ssim, randomisation_check, randomised_copies
from xfr_lib.evaluate._regions import CONCENTRATED, mean_shares, region_table, top_regions
from xfr_lib.evaluate._retention import (
    RETENTION_MODES,
    deletion_retention,
    random_class_maps,
    retention_masks,
    summarise_retention,
)
from xfr_lib.evaluate._runner import (
    METRICS,
    EvaluationResult,
    EvaluationSpec,
    evaluation_spec,
    load_evaluation_file,
    pair_areas,
    read_evaluation,
    run_evaluation,
    summarise,
)
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
    "EVALUATION_FILLS",
    "HARD_KINDS",
    "METRICS",
    "MODES",
    "MODIFIED_IMAGES",
    "PAPER_METHODS",
    "PIXELS_TO_WORDS",
    "RELIABLE_FALSE_MATCHES",
    "RETENTION_MODES",
    "SDD_PAPER_SETUP",
    "TIE_RULES",
    "EERResult",
    "EmbeddingSet",
    "EmbeddingSpread",
    "EvaluationResult",
    "EvaluationSpec",
    "IdentificationScores",
    "MetricInputError",
    "OcclusionCase",
    "VerificationResult",
    "accuracy_at",
    "agreement_fit",
    "bootstrap_interval",
    "check_evaluation_fill",
    "check_scores_labels",
    "cmc",
    "curve_area",
    "deletion_retention",
    "detector_auroc",
    "dissimilarity_share",
    "eer",
    "eer_from_curve",
    "embed_dataset",
    "embed_paths",
    "embedding_spread",
    "evaluation_spec",
    "extrapolate_runtime",
    "fill_removed",
    "fnmr_at_fmr",
    "hardest_cases",
    "identification_curve",
    "identification_scores",
    "learned_tensor_names",
    "load_evaluation_file",
    "local_cluster",
    "map_agreement",
    "map_ssim",
    "mass_area",
    "mean_shares",
    "occlusion_experiment",
    "pair_areas",
    "pair_seed",
    "pixel_order",
    "pointing_game",
    "probe_inputs",
    "published_journal",
    "published_sdd",
    "published_table1",
    "published_table2",
    "random_class_maps",
    "randomisation_check",
    "randomised_copies",
    "randomization_layers",
    "randomized_copy",
    "rank_k_accuracy",
    "ranks",
    "read_evaluation",
    "region_table",
    "removal_masks",
    "retention_masks",
    "roc",
    "roughness",
    "run_evaluation",
    "seed_stability",
    "spearman",
    "stability_over_n",
    "step_fractions",
    "summarise",
    "summarise_retention",
    "top_k_iou",
    "top_k_mask",
    "top_regions",
    "verification_accuracy",
    "verification_curve",
]
