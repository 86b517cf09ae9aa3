"""What the gradient methods (Grad-CAM, Grad-CAM++, saliency, FGGB) share.

* :class:`LayerExplainer`: the base of the CAM methods (Grad-CAM, Grad-CAM++): their
  ``layer`` and ``batch_size`` parameters, checked once.
* :func:`require_gradients`: a gradient method needs a differentiable torch model (an
  ``nn.Module``); a black-box object gets a one-line :class:`~xfr_lib.errors.XfrError`.
* Layers: :func:`usable_layers` (the model's ``cam_layers``, label -> dotted module path;
  a model without them offers its ``Conv2d`` modules by path), :func:`default_layer` (the
  model's ``cam_default``, else the last usable layer) and :func:`resolve_layer` (the ``layer``
  parameter: None = the default, a label or a dotted module path; anything else raises an
  :class:`~xfr_lib.errors.UnknownNameError` listing the usable labels).
* The pair score of R references in one batch (:func:`pair_scores`): the image is repeated R
  times and row r is :class:`~xfr_lib.explainers.SimilarityTarget`'s cosine with reference r.
  The references are embeddings computed before, outside the explained forward pass: a
  siamese forward would run a hooked layer twice and Captum would attribute the second call.
* :func:`layer_activations_and_gradients`: a layer's activation and the gradient of the pair
  scores with respect to it, in one forward and one backward pass.
* :func:`upsample`: layer-resolution maps to the chip with Captum's
  ``LayerAttribution.interpolate`` (bilinear, ``align_corners=False``).

Default CAM layers. Grad-CAM (Selvaraju et al. 2017) recommends the last convolutional map:
its channels are the most identity-specific and the gradient reaching it has passed through
the least of the network, so it is the least noisy; the price is resolution. Finer layers give
sharper maps from less specific channels (closer to the noisy input gradient). Each model's
``cam_default`` is its last usable spatial map, the choice the CorrRISE and FGGB papers'
Grad-CAM baselines follow: dlib's ``block_8x8`` (128 channels, 8x8 cells of ~19 px of the
150 px chip; the later 4x4 and 2x2 stages are too coarse and dlib's 4x4 has a zero row and
column) and SFace's ``conv_7x7`` (1024 channels, cells of 16 px of 112). ``layer=`` chooses a
finer one (dlib ``block_17x17``, SFace ``conv_14x14``). Which layer explains faces best is not
measured here.

Upsampling. Bilinear interpolation with ``align_corners=False`` assumes the cells tile the chip
evenly (cell c centred at ``(c + 0.5) * H / h - 0.5``). That is exact for a layer whose cells
are non-overlapping s x s patches (tests/test_explain_gradients.py checks it) and approximate
otherwise: dlib's unpadded strided convolutions put the geometric centres of the 8x8 cells at
``17 + 16 c`` px (17 .. 129 of 150), so an upsampled dlib 8x8 map is stretched by ~17 % and
off by up to 11 px at the bottom and right edges (dlib never sees its chips' last 3 rows and
columns); SFace's padded ones at ``16 c`` (0 .. 96 of 112), half a cell (7.5 px) up-left of
where interpolation puts them. Grad-CAM practice (and Captum)
interpolates plainly; xfr does the same and says so.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.explainers._explainer import Explainer, check_int
from xfr_lib.explainers._inputs import model_name
from xfr_lib.explainers._target import SimilarityTarget


def require_gradients(model: Any, method: str) -> None:
    """Raise a one-line :class:`XfrError` unless ``model`` is a differentiable torch module."""
    if not isinstance(model, nn.Module):
        raise XfrError(
            f"{method} back-propagates through the model, but {type(model).__name__} is not a "
            "torch nn.Module; use a model from xfr_lib.load_model, or a black-box method "
            "(e.g. corrrise, rise) for models known only through embed()"
        )


def usable_layers(model: Any) -> dict[str, str]:
    """The layers gradient-CAM methods may use: label -> dotted module path.

    The model's ``cam_layers`` (finest to coarsest) when it has them; otherwise every
    ``Conv2d`` of a torch module, labelled by its path, in module order; ``{}`` for anything
    else. ``xfr methods`` and ``method_info`` list these.
    """
    layers = getattr(model, "cam_layers", None)
    if layers:
        return dict(layers)
    if isinstance(model, nn.Module):
        return {n: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    return {}


def default_layer(model: Any) -> str:
    """The layer used when ``layer=None``: the model's ``cam_default``, else the last (for
    ``cam_layers``: the coarsest) of :func:`usable_layers`.

    Raises:
        XfrError: the model has no usable layer.
    """
    chosen = getattr(model, "cam_default", None)
    if chosen:
        return str(chosen)
    layers = usable_layers(model)
    if not layers:
        raise XfrError(f"{model_name(model)} has no convolutional layers for CAM methods; "
                       "use a model from xfr_lib.load_model or pass layer='dotted.module.path'")
    return list(layers)[-1]


def resolve_layer(model: Any, layer: str | None) -> str:
    """Check the ``layer`` parameter; return the layer to record (None -> the default).

    Args:
        model: a torch face model.
        layer: None, a label of :func:`usable_layers` or a dotted module path of the model.

    Raises:
        UnknownNameError: neither; the one-line message lists the usable labels.
    """
    if layer is None:
        layer = default_layer(model)
    if not isinstance(layer, str):
        raise XfrError(f"layer={layer!r} is invalid; use a layer label such as "
                       f"{default_layer(model)!r} or a dotted module path")
    layer_module(model, layer)  # raises if unknown
    return layer


def layer_module(model: nn.Module, layer: str) -> nn.Module:
    """The module behind a layer label or dotted module path (see :func:`resolve_layer`)."""
    layers = usable_layers(model)
    path = layers.get(layer, layer)
    try:
        module = model.get_submodule(path)
    except AttributeError:
        module = None
    if not path or module is None or module is model:
        raise UnknownNameError(f"layer of {model_name(model)}", layer, list(layers))
    return module


def repeat_image(image: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """``[n, 3, H, W]`` copies of a ``[3, H, W]`` chip on ``device``, requiring gradients."""
    return image.to(device)[None].repeat(n, 1, 1, 1).requires_grad_(True)


def pair_scores(embeddings: torch.Tensor, references: torch.Tensor,
                sign: float = 1.0) -> torch.Tensor:
    """``[R]`` pair scores: row r is ``SimilarityTarget(references[r], sign)(embeddings[r])``,
    the cosine of the r-th embedding with the r-th reference (negated with ``sign=-1``)."""
    return torch.cat([SimilarityTarget(ref, sign)(emb[None])
                      for emb, ref in zip(embeddings, references, strict=True)])


def score_function(model: nn.Module, references: torch.Tensor, sign: float = 1.0):
    """``x [R, 3, H, W] -> [R]`` pair scores of ``model.embed(x)`` with ``references`` (a
    forward function for Captum); the references stay outside the explained forward."""
    refs = references.detach()

    def scores(x: torch.Tensor) -> torch.Tensor:
        return pair_scores(model.embed(x), refs.to(x.device), sign)

    return scores


def layer_activations_and_gradients(
    model: nn.Module, layer: str, image: torch.Tensor, references: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A layer's activation and the gradient of the pair scores with respect to it.

    The image is repeated once per reference (one forward, one backward for all R); rows are
    independent, so the gradient of the summed scores is each row's own gradient.

    Returns:
        ``(activation, gradient, scores)``: ``[R, C, h, w]``, ``[R, C, h, w]`` (detached,
        contiguous) and ``[R]``.

    Raises:
        XfrError: the layer's output is not a ``[R, C, h, w]`` map.
    """
    module = layer_module(model, layer)
    store: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        store["a"] = output

    handle = module.register_forward_hook(hook)
    try:
        x = repeat_image(image, len(references), device)
        scores = score_function(model, references.to(device))(x)
    finally:
        handle.remove()
    act = store.get("a")
    if not isinstance(act, torch.Tensor) or act.ndim != 4:
        shape = list(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
        raise XfrError(f"layer {layer!r} of {model_name(model)} gives {shape}, not a "
                       f"[B, C, h, w] map; use one of: {', '.join(usable_layers(model))}")
    (grad,) = torch.autograd.grad(scores.sum(), act)
    return act.detach().contiguous(), grad.contiguous(), scores.detach()


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[R, h, w]`` layer-resolution maps -> ``[R, H, W]`` with Captum's bilinear
    ``LayerAttribution.interpolate`` (``align_corners=False``: see the module doc)."""
    from captum.attr import LayerAttribution  # here: importing Captum costs ~1 s per process

    return LayerAttribution.interpolate(maps[:, None], tuple(size), "bilinear")[:, 0]



class LayerExplainer(Explainer):
    """Base of the gradient methods that explain at a convolutional layer (Grad-CAM,
    Grad-CAM++): parameters ``layer`` (None = the model's default; resolved and recorded as a
    label or dotted path, :func:`resolve_layer`) and ``batch_size`` (references per pass)."""

    black_box = False
    defaults: ClassVar[dict[str, Any]] = {"layer": None, "batch_size": 32}

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        require_gradients(self.model, self.name)
        params["layer"] = resolve_layer(self.model, params["layer"])
        check_int(params, "batch_size", 1, "a positive number of references per pass")
        return params
