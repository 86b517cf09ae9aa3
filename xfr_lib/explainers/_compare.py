"""Every method on the same pair with one call, and what each one cost.

    comparison = compare_methods(model, "a.jpg", "b.jpg")          # every method, defaults
    comparison.explanations["fggb"].similarity_a                   # one method's maps
    comparison.costs                                               # seconds, passes, per method

The pair is aligned once and every method explains the same two chips. Costs are measured, not
declared: wall-clock seconds of each method's explanation, and the images its explanation sent
through the model's forward pass (counted at ``model.features``, or ``model.embed`` for a
black-box object without it). Methods that back-propagate report their backward passes in
their explanation's ``extras`` (``backward_passes_a`` / ``_b``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xfr_lib.errors import XfrError
from xfr_lib.explainers._api import METHODS, get_explainer, list_methods
from xfr_lib.explainers._inputs import ImageInput, describe_input, prepare_image
from xfr_lib.explainers._results import VerificationExplanation
from xfr_lib.faces import FaceChoice


@dataclass
class MethodComparison:
    """The explanations of one pair by several methods, and their costs.

    Attributes:
        explanations: method name -> its :class:`VerificationExplanation`, in the order run.
        costs: one dict per method: ``method``, ``seconds`` (wall clock), ``forward_images``
            (images through the model's forward pass, both sides), ``backward_passes`` (both
            sides; 0 for methods that do not back-propagate), ``black_box``.
    """

    explanations: dict[str, VerificationExplanation]
    costs: list[dict[str, Any]] = field(default_factory=list)

    def cost_table(self):
        """:attr:`costs` as a pandas DataFrame indexed by method."""
        import pandas as pd

        return pd.DataFrame(self.costs).set_index("method")


@contextlib.contextmanager
def count_forward_images(model: Any) -> Iterator[list[int]]:
    """Count the images sent through ``model``'s forward pass inside the block.

    Wraps ``model.features`` (a :class:`~xfr_lib.models.FaceModel`'s forward below the
    normalisation; ``model.embed`` for any other object) for the duration of the block and
    restores it after, even on an error. Yields a one-element list holding the count.

    Example:
        >>> import torch
        >>> from xfr_lib.models import load_model
        >>> model = load_model("sface")
        >>> with count_forward_images(model) as n:
        ...     _ = model.embed(torch.rand(3, 3, 112, 112))
        >>> n[0]
        3
    """
    attr = "features" if callable(getattr(model, "features", None)) else "embed"
    original = getattr(model, attr)
    had_own = attr in vars(model)
    count = [0]

    def counted(x, *args, **kwargs):
        count[0] += int(x.shape[0])
        return original(x, *args, **kwargs)

    object.__setattr__(model, attr, counted)  # an instance attribute shadows the method
    try:
        yield count
    finally:
        if had_own:
            object.__setattr__(model, attr, original)
        else:
            object.__delattr__(model, attr)


def compare_methods(
    model: Any,
    image_a: ImageInput,
    image_b: ImageInput,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    face_a: FaceChoice = None,
    face_b: FaceChoice = None,
    progress: bool = False,
) -> MethodComparison:
    """Explain one pair with several methods (all of :func:`list_methods` by default).

    Args:
        model: a face model (``xfr_lib.load_model``); black-box methods also take any object
            with ``embed`` and ``input_size``, gradient methods need a model with gradients.
        image_a: path, photo or aligned chip (see :func:`xfr_lib.explain`).
        image_b: the other image.
        methods: method names, in the order to run them (default: every method).
        params: method name -> its parameters (e.g. ``{"corrrise": {"n": 1000}}``); methods
            not named run at their defaults.
        face_a: which face of photo A (see :func:`xfr_lib.explain`).
        face_b: which face of photo B.
        progress: show a progress bar over the methods.

    Raises:
        UnknownNameError: an unknown method (in ``methods`` or ``params``) or parameter; all
            are checked before any work.
    """
    from tqdm.auto import tqdm

    names = list(list_methods() if methods is None else methods)
    params = dict(params or {})
    for name in [*names, *params]:
        METHODS.get(name)  # unknown names fail here, listing the valid ones
    stray = sorted(set(params) - set(names))
    if stray:
        raise XfrError(f"parameters given for {', '.join(stray)}, which are not among the "
                       f"methods compared ({', '.join(names)}); add them to methods")
    explainers = {name: get_explainer(name, model, **params.get(name, {})) for name in names}
    a = prepare_image(image_a, model, face_a)
    b = prepare_image(image_b, model, face_b)
    result = MethodComparison(explanations={})
    for name in tqdm(names, disable=not progress, desc="methods", leave=False):
        with count_forward_images(model) as forward:
            start = time.perf_counter()
            expl = explainers[name].explain(a, b)
            seconds = time.perf_counter() - start
        expl.source_a, expl.source_b = describe_input(image_a), describe_input(image_b)
        expl.face_a, expl.face_b = face_a, face_b
        result.explanations[name] = expl
        result.costs.append({
            "method": name, "seconds": seconds, "forward_images": forward[0],
            "backward_passes": int(expl.extras.get("backward_passes_a", 0))
            + int(expl.extras.get("backward_passes_b", 0)),
            "black_box": bool(explainers[name].black_box),
        })
    return result

