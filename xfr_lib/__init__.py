"""xfr: explainable face recognition, as a reproducible paper companion.

The flat public API, loaded lazily (``import xfr_lib`` imports neither torch nor a model)::

    import xfr_lib
    model = xfr_lib.load_model("dlib_resnet29")
    result = xfr_lib.explain("corrrise", model, "a.jpg", "b.jpg", seed=0)

``list_models()``, ``list_datasets()`` and ``list_methods()`` name what exists. Everything else
is in the subpackages, which export their public names: :mod:`xfr_lib.data`,
:mod:`xfr_lib.faces`, :mod:`xfr_lib.models`, :mod:`xfr_lib.explainers`,
:mod:`xfr_lib.evaluate`, :mod:`xfr_lib.classify` (identity classifiers, for SDD-CAM),
:mod:`xfr_lib.words` (region tables, paragraphs and questions answered), :mod:`xfr_lib.plot`;
the chapters use :mod:`xfr_lib.book`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the subpackage that defines it; imported on first use.
_API = {
    "load_model": "xfr_lib.models",
    "list_models": "xfr_lib.models",
    "FaceModel": "xfr_lib.models",
    "load_dataset": "xfr_lib.data",
    "list_datasets": "xfr_lib.data",
    "fetch": "xfr_lib.data",
    "explain": "xfr_lib.explainers",
    "explain_identification": "xfr_lib.explainers",
    "list_methods": "xfr_lib.explainers",
    "compare_methods": "xfr_lib.explainers",
    "embed_dataset": "xfr_lib.evaluate",
    "XfrError": "xfr_lib.errors",
}

__all__ = ["FaceModel", "XfrError", "compare_methods", "embed_dataset", "explain", "explain_identification", "fetch",
           "list_datasets", "list_methods", "list_models", "load_dataset", "load_model"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'xfr_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
