"""What an explainer accepts: images in several forms, made into aligned chips, and galleries.

An image is a path, an HxWx3 uint8 photo (both aligned with the model's ``align``) or an
aligned ``[3, H, W]`` float chip in [0, 1] (used as is). A gallery is a :class:`Gallery` or
anything :meth:`Gallery.from_any` understands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfr_lib.errors import ImageError, XfrError
from xfr_lib.faces import FaceChoice, chip_to_tensor, load_image

#: An image as accepted by the explainers: a path, an HxWx3 uint8 photo, or an aligned chip
#: as a ``[3, H, W]`` float tensor in [0, 1].
ImageInput = str | Path | np.ndarray | torch.Tensor


def model_name(model: Any) -> str:
    """A model's registry name, or its class name."""
    return str(getattr(model, "name", type(model).__name__))


def describe_input(image: ImageInput) -> str:
    """A short name for an input image: its path, or its kind and shape."""
    if isinstance(image, (str, Path)):
        return str(image)
    kind = "tensor" if isinstance(image, torch.Tensor) else "array"
    return f"<{kind} {'x'.join(str(d) for d in getattr(image, 'shape', ()))}>"


def prepare_image(image: ImageInput, model: Any, face: FaceChoice = None) -> torch.Tensor:
    """Turn a path, a photo or a chip into the model's aligned ``[3, H, W]`` float chip.

    Tensors are taken as aligned chips (``[3, H, W]`` or ``[1, 3, H, W]``, in [0, 1]) and only
    checked against ``model.input_size``. Paths and arrays are photos: they are aligned with
    ``model.align`` when the model has it; a model without ``align`` accepts only arrays or
    files that already have its input size.

    Args:
        image: the image.
        model: the model whose chips to make.
        face: which face of a photo (None: the largest; an index; an ``(x, y, w, h)`` box).

    Raises:
        ImageError: wrong shape, range or type, or no way to align the image.
    """
    size = tuple(int(v) for v in model.input_size)
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3 or tuple(x.shape[1:]) != size:
            raise ImageError(
                f"chip tensor of shape {list(image.shape)} does not fit {model_name(model)}: "
                f"pass an aligned [3, {size[0]}, {size[1]}] tensor or a photo to align"
            )
        if not x.is_floating_point():
            raise ImageError(
                f"chip tensor has dtype {x.dtype}; pass floats in [0, 1] (chip_to_tensor does it)"
            )
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ImageError(
                f"chip tensor values span [{lo:.3g}, {hi:.3g}]; expected RGB floats in [0, 1]"
            )
        return x.float().clamp(0, 1).cpu()
    if not isinstance(image, (str, Path, np.ndarray)):
        raise ImageError(
            f"cannot use a {type(image).__name__} as an image; pass a path, an HxWx3 uint8 "
            "array or a [3, H, W] float tensor"
        )
    align = getattr(model, "align", None)
    if callable(align):
        x = align(image) if face is None else align(image, face=face)
        return x.detach().float().cpu()
    rgb = load_image(image)
    if rgb.shape[:2] != size:
        raise ImageError(
            f"{describe_input(image)}: {model_name(model)} cannot align photos (no align()) and "
            f"the image is {rgb.shape[1]}x{rgb.shape[0]}, not its input size "
            f"{size[1]}x{size[0]}; pass an aligned chip"
        )
    return chip_to_tensor(rgb)




@dataclass
class Gallery:
    """Images with identities, optionally with their embeddings already computed.

    Only the top-K entries are aligned and explained, so a large gallery with precomputed
    ``embeddings`` costs K alignments, not one per entry.

    Args:
        items: images (paths, HxWx3 uint8 photos or aligned ``[3, H, W]`` chips).
        identities: one label per item; default: the file stem of a path, else ``"#i"``.
        embeddings: optional ``[len(items), D]`` L2-normalised embeddings of the items' chips,
            computed with the same model.
    """

    items: Sequence[ImageInput]
    identities: Sequence[str] | None = None
    embeddings: np.ndarray | torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.items = list(self.items)
        if not self.items:
            raise XfrError("the gallery is empty; pass at least one image")
        if self.identities is None:
            self.identities = [
                Path(it).stem if isinstance(it, (str, Path)) else f"#{i}"
                for i, it in enumerate(self.items)
            ]
        self.identities = [str(v) for v in self.identities]
        if len(self.identities) != len(self.items):
            raise XfrError(
                f"the gallery has {len(self.items)} images but {len(self.identities)} "
                "identities; pass one identity per image"
            )
        if self.embeddings is not None:
            emb = self.embeddings
            emb = (emb.detach().float().cpu() if isinstance(emb, torch.Tensor)
                   else torch.as_tensor(np.asarray(emb), dtype=torch.float32))
            if emb.ndim != 2 or len(emb) != len(self.items):
                raise XfrError(
                    f"gallery embeddings have shape {list(emb.shape)}; expected "
                    f"[{len(self.items)}, D], one row per image"
                )
            self.embeddings = torch.nn.functional.normalize(emb, dim=1)

    @classmethod
    def from_any(cls, gallery: Any) -> Gallery:
        """A :class:`Gallery` from a Gallery, a list of images, a ``[N, 3, H, W]`` stack of
        chips, a list of ``(identity, image)`` pairs, or a mapping identity -> image(s)."""
        if isinstance(gallery, Gallery):
            return gallery
        if isinstance(gallery, Mapping):
            items, ids = [], []
            for identity, value in gallery.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                items += list(values)
                ids += [str(identity)] * len(values)
            return cls(items, ids)
        if isinstance(gallery, torch.Tensor) and gallery.ndim == 4:
            return cls(list(gallery))  # a stack of aligned chips [N, 3, H, W]
        if isinstance(gallery, (str, Path, np.ndarray, torch.Tensor)):
            raise XfrError(
                "the gallery must be a list of images (or a Gallery), not a single "
                f"{type(gallery).__name__}"
            )
        entries = list(gallery)
        if entries and all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str)
                           for e in entries):
            return cls([e[1] for e in entries], [e[0] for e in entries])
        return cls(entries)


