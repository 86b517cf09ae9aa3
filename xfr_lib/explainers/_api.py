"""The methods by name, and the two calls most users need: :func:`explain` and
:func:`explain_identification`.

Each method registers itself in :data:`METHODS` where it is defined
(``@METHODS.register("corrrise")``); :mod:`xfr_lib.explainers` imports every method module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xfr_lib._registry import Registry
from xfr_lib.explainers._explainer import Explainer
from xfr_lib.explainers._inputs import Gallery, ImageInput
from xfr_lib.explainers._results import IdentificationExplanation, VerificationExplanation
from xfr_lib.faces import FaceChoice

#: Explanation methods (Explainer subclasses) by name.
METHODS: Registry = Registry("method")


def list_methods() -> list[str]:
    """Names of the available explanation methods."""
    return METHODS.names()


def method_info(method: str) -> dict[str, Any]:
    """What the CLI and notebooks show about a method: name, one-line summary, whether it is
    black-box, its parameters with their defaults (``None`` = derived from the model), and for
    methods with a ``layer`` parameter the usable and default layers of every model.

    Raises:
        UnknownNameError: unknown method.
    """
    cls = METHODS.get(method)
    info = {"name": cls.name, "summary": cls.summary, "black_box": cls.black_box,
            "defaults": dict(cls.defaults)}
    if "layer" in cls.defaults:
        info["layers"] = model_layers()
    return info


def model_layers() -> dict[str, dict[str, Any]]:
    """For methods with a ``layer`` parameter: per model, its usable layers (labels of its
    ``cam_layers``, finest first) and the default one (``None`` in ``layer``)."""
    from xfr_lib.models import MODELS

    out = {}
    for name in MODELS.names():
        cls = MODELS.get(name)
        out[name] = {"default": getattr(cls, "cam_default", None),
                     "usable": list(getattr(cls, "cam_layers", {}))}
    return out


def get_explainer(method: str, model: Any, **params: Any) -> Explainer:
    """An :class:`Explainer` for ``method`` bound to ``model``, with checked ``params``.

    Raises:
        UnknownNameError: unknown method or parameter (the message lists the valid ones).
    """
    return METHODS.get(method)(model, **params)


def explain(method: str, model: Any, image_a: ImageInput, image_b: ImageInput, *,
            face_a: FaceChoice = None, face_b: FaceChoice = None,
            **params: Any) -> VerificationExplanation:
    """Explain a face-verification decision with four saliency maps.

    Args:
        method: an explanation method (``list_methods()``), e.g. ``"corrrise"``.
        model: a face model (``xfr_lib.load_model``), or any object with ``embed`` and
            ``input_size`` for black-box methods.
        image_a: path, HxWx3 uint8 photo (aligned with ``model.align``) or aligned
            ``[3, H, W]`` float chip in [0, 1] (used as is).
        image_b: the other image, same forms.
        face_a: which face of photo A (None: the largest; an index, 0 = the largest; or an
            ``(x, y, w, h)`` box); ``xfr faces PHOTO`` numbers them.
        face_b: the same for photo B.
        **params: the method's parameters (``method_info(method)["defaults"]`` lists them);
            an unknown name raises :class:`~xfr_lib.errors.UnknownNameError`.

    Returns:
        A :class:`VerificationExplanation` with maps at the model's input resolution.

    Example:
        >>> import xfr_lib
        >>> from xfr_lib.data import load_dataset
        >>> wild = load_dataset("wild")
        >>> a, b = (im.path for im in wild if im.identity == "Emmanuel Macron")
        >>> model = xfr_lib.load_model("dlib_resnet29")
        >>> expl = explain("corrrise", model, a, b, n=40, seed=0)
        >>> expl.decision, expl.similarity_a.shape == tuple(model.input_size)
        (True, True)
    """
    return get_explainer(method, model, **params).explain(image_a, image_b, face_a=face_a,
                                                         face_b=face_b)


def explain_identification(
    method: str,
    model: Any,
    probe: ImageInput,
    gallery: Gallery | Sequence[Any] | Mapping[str, Any],
    k: int = 5,
    *,
    face: FaceChoice = None,
    **params: Any,
) -> IdentificationExplanation:
    """Explain the top-``k`` matches of a probe in a gallery.

    The gallery is ranked by cosine similarity to the probe; for each of the top ``k``
    entries the result holds the probe's and the entry's similarity and dissimilarity maps.

    Args:
        method: an explanation method (``list_methods()``).
        model: a face model (see :func:`explain`).
        probe: the probe image (same forms as in :func:`explain`).
        gallery: a :class:`Gallery` (items, identities, optional precomputed embeddings), a
            list of images, a list of ``(identity, image)`` pairs, or a mapping
            identity -> image(s).
        k: how many top matches to explain (at most the gallery's size).
        face: which face of the probe photo (see :func:`explain`).
        **params: the method's parameters.
    """
    return get_explainer(method, model, **params).explain_identification(probe, gallery, k,
                                                                         face=face)
