"""xfr: explainable face recognition, as a reproducible paper companion.

The flat public API (loaded lazily, so ``import xfr_lib`` stays light)::

    import xfr_lib
    model = xfr_lib.load_model("dlib_resnet29")
    result = xfr_lib.explain("corrrise", model, "a.jpg", "b.jpg", seed=0)

``list_models()``, ``list_datasets()`` and ``list_methods()`` name what exists.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "load_model": "xfr_lib.models.base",
    "list_models": "xfr_lib.models.base",
    "FaceModel": "xfr_lib.models.base",
    "load_dataset": "xfr_lib.data.datasets",
    "list_datasets": "xfr_lib.data.datasets",
    "embed_dataset": "xfr_lib.evaluate.embeddings",
    "fetch": "xfr_lib.data.assets",
    "XfrError": "xfr_lib.errors",
}

# `xfr_lib.explain` is both a subpackage and the flat API's main function. Importing the
# subpackage binds its name on this package first; binding the function afterwards makes
# `xfr_lib.explain(...)` the function, while `from xfr_lib.explain import X` still works.
from xfr_lib.explain import explain, explain_identification, list_methods

__all__ = [
    "FaceModel", "XfrError", "embed_dataset", "explain", "explain_identification", "fetch",
    "list_datasets", "list_methods", "list_models", "load_dataset", "load_model",
]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'xfr_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
