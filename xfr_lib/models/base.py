"""The one interface every face-recognition model of xfr has.

A model maps an aligned RGB chip, as a float tensor ``[B, 3, H, W]`` in [0, 1], to an
L2-normalised embedding ``[B, D]`` (:meth:`FaceModel.embed`), differentiably. Two faces match
when the cosine similarity of their embeddings is at least :attr:`FaceModel.threshold`.
Each model also knows how its chips are made (:meth:`FaceModel.align`) and which of its
convolutional layers CAM-style explainers may use (:attr:`FaceModel.cam_layers`).

Black-box explainers need only ``embed`` and ``input_size``; anything with those two works.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xfr_lib.errors import UnknownNameError


class FaceModel(nn.Module):
    """Base class of xfr's face-recognition models.

    Subclasses set the class attributes and implement :meth:`features`.

    Attributes:
        name: registry name (``xfr_lib.list_models()``).
        input_size: ``(height, width)`` of the aligned chip.
        embedding_dim: length of the embedding.
        threshold: decision threshold on cosine similarity (accept if ``score >= threshold``).
        alignment: how chips are made, a key of ``xfr_lib.faces.align.ALIGNMENTS``.
        cam_layers: label -> dotted module path of convolutional layers usable by CAM methods,
            ordered from finest to coarsest spatial resolution.
    """

    name: ClassVar[str]
    input_size: ClassVar[tuple[int, int]]
    embedding_dim: ClassVar[int]
    threshold: ClassVar[float]
    alignment: ClassVar[str]
    cam_layers: ClassVar[dict[str, str]]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (not normalised) embeddings of chips ``x`` ``[B,3,H,W]`` in [0, 1], RGB."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``[B, D]`` of aligned chips ``x`` ``[B,3,H,W]`` in [0, 1]."""
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != tuple(self.input_size):
            raise ValueError(
                f"{self.name} expects aligned chips of shape [B, 3, {self.input_size[0]}, "
                f"{self.input_size[1]}], got {list(x.shape)}; use model.align(image) first"
            )
        return F.normalize(self.features(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def layer(self, label: str) -> nn.Module:
        """The module behind a CAM layer label (or a dotted module path)."""
        path = self.cam_layers.get(label, label)
        try:
            return self.get_submodule(path)
        except AttributeError:
            raise UnknownNameError(f"layer of {self.name}", label, list(self.cam_layers)) from None

    def align_face(self, image):
        """Detect the largest face in ``image`` (path or HxWx3 uint8 RGB) and align it.

        Returns an :class:`xfr_lib.faces.align.AlignedFace` (chip, 68 landmarks in chip
        coordinates, the detection, how many faces there were).
        """
        from xfr_lib.faces.align import align_face

        return align_face(image, self.alignment, self.input_size)

    def align(self, image) -> torch.Tensor:
        """The aligned chip of ``image`` as a ``[3, H, W]`` float tensor in [0, 1] (RGB)."""
        return chip_to_tensor(self.align_face(image).chip)

    @torch.no_grad()
    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of aligned chips (``[3,H,W]`` or batches of equal size)."""
        a, b = (t.unsqueeze(0) if t.ndim == 3 else t for t in (a, b))
        dev = self.device
        return (self.embed(a.to(dev)) * self.embed(b.to(dev))).sum(1).cpu()

    def decide(self, score: float) -> bool:
        """The model's verification decision for a cosine score: True = same person."""
        return bool(score >= self.threshold)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}, threshold={self.threshold}"


def chip_to_tensor(chip: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> [3, H, W] float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(chip)).permute(2, 0, 1).float().div_(255.0)


def tensor_to_chip(x: torch.Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> HxWx3 uint8 RGB."""
    return (x.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())


_REGISTRY: dict[str, type[FaceModel]] = {}


def register_model(cls: type[FaceModel]) -> type[FaceModel]:
    """Class decorator: make a model available to :func:`load_model` under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def list_models() -> list[str]:
    """Names of the available face-recognition models."""
    _import_models()
    return sorted(_REGISTRY)


def load_model(name: str, device: str | torch.device = "cpu") -> FaceModel:
    """Load a pretrained model by name, in eval mode, with gradients enabled for its input.

    Args:
        name: one of :func:`list_models`.
        device: torch device (``"cpu"``, ``"cuda"``, ...).
    """
    _import_models()
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, sorted(_REGISTRY))
    return _REGISTRY[name].pretrained().to(device).eval()


def _import_models() -> None:
    # Model modules register themselves on import; importing here keeps `import xfr_lib` light.
    from xfr_lib.models import dlib_resnet, sface  # noqa: F401
