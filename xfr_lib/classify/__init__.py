"""Identity classifiers on xfr's face models, for class-specific explanations (SDD-CAM).

    from xfr_lib.classify import train_classifier
    clf = train_classifier(load_model("dlib_resnet29"), "orl", seed=0)   # cached
    clf.report["test accuracy"], clf.probabilities(chips)

Private module: ``_classifier`` (the cosine-head classifier, its seeded and cached training).
The class maps and SDD are in :mod:`xfr_lib.explainers.sdd`; deletion and retention of class
maps in :mod:`xfr_lib.evaluate`.
"""

from xfr_lib.classify._classifier import (
    CLASSIFIER_DEFAULTS,
    IdentityClassifier,
    LabelledChips,
    check_classifier_params,
    labelled_chips,
    split_per_person,
    train_classifier,
)

__all__ = [
    "CLASSIFIER_DEFAULTS", "IdentityClassifier", "LabelledChips", "check_classifier_params",
    "labelled_chips", "split_per_person", "train_classifier",
]
