"""Face-recognition models: real pretrained networks in PyTorch behind one interface.

    from xfr_lib.models import load_model
    model = load_model("dlib_resnet29")          # or "sface"; precision="bf16": ~2.4x faster
    chip = model.align("photo.jpg")              # [3, H, W] float in [0, 1]
    model.embed(chip[None])                      # [1, D], unit length

Modules: ``_base`` (the :class:`FaceModel` interface, the registry, batched embedding) and one
module per model, each registering itself: ``dlib_resnet`` (dlib's ResNet-29 read from its
``.dat``) and ``sface`` (OpenCV's SFace rebuilt from its ONNX file).
"""

from xfr_lib.models._base import (
    MODELS,
    PRECISIONS,
    FaceModel,
    check_precision,
    embed,
    list_models,
    load_model,
    model_device,
    model_fingerprint,
)
from xfr_lib.models.dlib_resnet import DlibResNet29, read_dlib_dat
from xfr_lib.models.sface import SFace

__all__ = [
    "MODELS", "PRECISIONS", "DlibResNet29", "FaceModel", "SFace", "check_precision", "embed",
    "list_models", "load_model", "model_device", "model_fingerprint", "read_dlib_dat",
]
