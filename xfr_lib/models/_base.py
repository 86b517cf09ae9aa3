"""The one interface every face-recognition model of xfr has.

A model maps an aligned RGB chip, as a float tensor ``[B, 3, H, W]`` in [0, 1], to an
L2-normalised embedding ``[B, D]`` (:meth:`FaceModel.embed`), differentiably. Two faces match
when the cosine similarity of their embeddings is at least :attr:`FaceModel.threshold`.
Each model also knows how its chips are made (:meth:`FaceModel.align`) and which of its
convolutional layers CAM-style explainers may use (:attr:`FaceModel.cam_layers`).

Black-box explainers need only ``embed`` and ``input_size``; anything with those two works.

Precision (:data:`PRECISIONS`, :attr:`FaceModel.precision`): ``"fp32"`` (default) runs every
forward pass in float32; ``"bf16"`` runs the forward passes made with gradients disabled
(``torch.no_grad`` / ``torch.inference_mode``: embedding, black-box explainers) under
``torch.autocast(dtype=torch.bfloat16)``, and those made with gradients enabled (gradient
explainers, fine-tuning) in float32, so input gradients are always the float32 ones.

Models register themselves in :data:`MODELS` (``@MODELS.register("name")``); importing
:mod:`xfr_lib.models` imports each model module, so the table is full.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xfr_lib._registry import Registry
from xfr_lib.errors import UnknownNameError
from xfr_lib.faces import FaceChoice, align_face, chip_to_tensor

#: Face-recognition model classes by name; each has a ``pretrained()`` constructor.
MODELS: Registry = Registry("model")

#: Numeric precisions of a model's forward pass (:attr:`FaceModel.precision`). No int8:
#: torch.ao's FX static quantisation (x86 backend), calibrated on 80 ORL chips, ran SFace's
#: body 1.6x faster than bf16 but its embeddings were unrelated to fp32 (cosine -0.17).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`.

    Raises:
        UnknownNameError: any other value (the message lists the choices).
    """
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", str(precision), PRECISIONS)
    return precision


class FaceModel(nn.Module):
    """Base class of xfr's face-recognition models.

    Subclasses set the class attributes and implement :meth:`features`.

    Attributes:
        name: registry name (``xfr_lib.list_models()``).
        input_size: ``(height, width)`` of the aligned chip.
        embedding_dim: length of the embedding.
        threshold: decision threshold on cosine similarity (accept if ``score >= threshold``).
        alignment: how chips are made, a key of ``xfr_lib.faces.ALIGNMENTS``.
        cam_layers: label -> dotted module path of convolutional layers usable by CAM methods,
            ordered from finest to coarsest spatial resolution.
        cam_default: the ``cam_layers`` label gradient-CAM methods use by default (None: the
            coarsest); see :mod:`xfr_lib.explainers._gradients` for the trade-off.
    """

    name: ClassVar[str]
    input_size: ClassVar[tuple[int, int]]
    embedding_dim: ClassVar[int]
    threshold: ClassVar[float]
    alignment: ClassVar[str]
    cam_layers: ClassVar[dict[str, str]]
    cam_default: ClassVar[str | None] = None
    #: Dotted names of the buffers that are fixed constants of the input normalisation, not
    #: learned (e.g. an input mean). Every other parameter and buffer of the model counts as
    #: learned (:meth:`learned_tensors`): the model-randomisation sanity check
    #: (:func:`xfr_lib.evaluate.randomized_copy`) re-draws those and keeps these.
    fixed_buffers: ClassVar[tuple[str, ...]] = ()
    #: Dotted paths of the model's last block (the modules after its last spatial map): what
    #: an identity classifier fine-tunes with ``finetune="last"`` (:mod:`xfr_lib.classify`).
    last_block: ClassVar[tuple[str, ...]] = ()
    #: Numeric precision of :meth:`embed`, one of :data:`PRECISIONS` (set per model object).
    _precision: str = "fp32"

    @property
    def precision(self) -> str:
        """``"fp32"`` or ``"bf16"``: how :meth:`embed` computes (see the module doc).

        Settable (``model.precision = "bf16"``); part of :func:`model_fingerprint`.
        """
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._precision = check_precision(value)

    def learned_tensors(self) -> dict[str, torch.Tensor]:
        """The learned tensors by dotted name: parameters and buffers not in :attr:`fixed_buffers`.

        Ordered module by module (``named_modules`` order), each module's parameters before
        its buffers. The tensors are the model's own (not copies).

        Raises:
            AttributeError: :attr:`fixed_buffers` names a buffer the model does not have.
        """
        buffers = dict(self.named_buffers())
        unknown = [n for n in self.fixed_buffers if n not in buffers]
        if unknown:
            raise AttributeError(f"{type(self).__name__}.fixed_buffers names {unknown}, which "
                                 f"are not buffers of the model")
        learned: dict[str, torch.Tensor] = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, t in module.named_parameters(recurse=False):
                learned[dot + name] = t
            for name, t in module.named_buffers(recurse=False):
                if dot + name not in self.fixed_buffers:
                    learned[dot + name] = t
        return learned

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (not normalised) embeddings of chips ``x`` ``[B,3,H,W]`` in [0, 1], RGB."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``[B, D]`` of aligned chips ``x`` ``[B,3,H,W]`` in [0, 1],
        computed at :attr:`precision`, in the dtype of ``x`` (float32 for bf16 too)."""
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != tuple(self.input_size):
            raise ValueError(
                f"{self.name} expects aligned chips of shape [B, 3, {self.input_size[0]}, "
                f"{self.input_size[1]}], got {list(x.shape)}; use model.align(image) first"
            )
        # With gradients on, stay fp32: bf16 input gradients measured at cosine 0.94-0.96.
        if self._precision == "bf16" and not torch.is_grad_enabled():
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                features = self.features(x)
            features = features.to(x.dtype)
        else:
            features = self.features(x)
        return F.normalize(features, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    @property
    def device(self) -> torch.device:
        return model_device(self)

    def layer(self, label: str) -> nn.Module:
        """The module behind a CAM layer label (or a dotted module path)."""
        path = self.cam_layers.get(label, label)
        try:
            return self.get_submodule(path)
        except AttributeError:
            raise UnknownNameError(f"layer of {self.name}", label, list(self.cam_layers)) from None

    def align_face(self, image, face: FaceChoice = None):
        """Detect the faces in ``image`` (path or HxWx3 uint8 RGB) and align one for this model.

        Args:
            image: the photo.
            face: which face (see :func:`xfr_lib.faces.align_face`; None = the largest).

        Returns an :class:`xfr_lib.faces.AlignedFace` (chip, 68 landmarks in chip coordinates,
        the detection, how many faces there were).
        """
        return align_face(image, self.alignment, self.input_size, face=face)

    def align(self, image, face: FaceChoice = None) -> torch.Tensor:
        """The aligned chip of ``image`` as a ``[3, H, W]`` float tensor in [0, 1] (RGB)."""
        return chip_to_tensor(self.align_face(image, face).chip)

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
        return (f"name={self.name!r}, input_size={self.input_size}, threshold={self.threshold}, "
                f"precision={self.precision!r}")


def model_fingerprint(model: Any) -> str:
    """A short SHA-256 of a model's name, precision and every tensor of its state: caches of
    anything computed with a model (maps, curves, trained classifiers) key on it, because the
    weights are what explain.

    bf16 leaves the weights as they are (it is autocast), so the precision is hashed
    explicitly; fp32 adds nothing, which keeps the fingerprints of existing caches."""
    h = hashlib.sha256(str(getattr(model, "name", type(model).__name__)).encode())
    precision = getattr(model, "precision", "fp32")
    if precision != "fp32":
        h.update(f"precision={precision}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def model_device(model: Any) -> torch.device:
    """The device of a model's parameters (or buffers); CPU for a model without either."""
    for tensors in ("parameters", "buffers"):
        get = getattr(model, tensors, None)
        if callable(get):
            for t in get():
                return t.device
    return torch.device("cpu")


@torch.no_grad()
def embed(model: Any, chips: torch.Tensor | np.ndarray, batch_size: int = 32) -> torch.Tensor:
    """L2-normalised embeddings ``[N, D]`` (float32, CPU) of aligned chips, in batches.

    Args:
        model: anything with ``embed(x)`` for ``[B, 3, H, W]`` floats in [0, 1].
        chips: ``[N, 3, H, W]`` float tensor in [0, 1], or ``[N, H, W, 3]`` uint8 array
            (converted batch by batch, so a large set is never held as floats).
        batch_size: chips per forward pass.
    """
    device = model_device(model)
    out = []
    for start in range(0, len(chips), batch_size):
        batch = chips[start:start + batch_size]
        x = chip_to_tensor(batch) if isinstance(batch, np.ndarray) else batch
        emb = model.embed(x.to(device)).float()
        out.append(F.normalize(emb, dim=1).cpu())
    if not out:
        return torch.zeros((0, int(getattr(model, "embedding_dim", 0))))
    return torch.cat(out)


def list_models() -> list[str]:
    """Names of the available face-recognition models."""
    return MODELS.names()


def load_model(name: str, device: str | torch.device = "cpu",
               precision: str = "fp32") -> FaceModel:
    """Load a pretrained model by name, in eval mode, with gradients enabled for its input.

    Args:
        name: one of :func:`list_models`.
        device: torch device (``"cpu"``, ``"cuda"``, ...).
        precision: ``"fp32"`` (the reference) or ``"bf16"``: forward passes with gradients
            disabled run under bfloat16 autocast, the others (input gradients) in float32;
            the weights, and :meth:`FaceModel.embed`'s float32 unit-length output, are the
            same either way. Measured with bench/bench_precision.py and bench_models.py (2
            threads, a CPU with bf16 instructions, batch 32): dlib_resnet29 2.5x and sface
            2.3x the fp32 images/s on an idle machine (1.6-2.9x on a busy one); embeddings at
            cosine >= 0.99996 (dlib) and >= 0.9998 (sface) to fp32 on the 400 ORL chips; ORL
            verification accuracy unchanged (the same 10-fold mean); CorrRISE maps (n=500,
            same seed) at Spearman 0.9999 to fp32, faster per pair by less than the forward
            pass (its masks and correlations stay fp32: 1.0-2.5x measured). The speed-up needs
            native bf16 instructions (AVX512-BF16 or AMX); elsewhere measure it first.

    Raises:
        UnknownNameError: unknown model name or precision.
    """
    check_precision(precision)
    model = MODELS.get(name).pretrained().to(device).eval()
    model.precision = precision
    return model
