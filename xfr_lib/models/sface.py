"""SFace as a native PyTorch module, rebuilt from OpenCV's int8 block-quantised ONNX file.

The OpenCV model zoo ships SFace (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss
for Robust Face Recognition", IEEE TIP 2021) as ``face_recognition_sface_2021dec_int8bq.onnx``:
a MobileFaceNet-style network (a 3x3 stem, then 13 depthwise-3x3 / pointwise-1x1 pairs, each
convolution followed by batch norm and PReLU, no residual connections), a batch norm, a
fully connected layer to 128 values and a last batch norm. Its weights are stored as int8 in
blocks of 64 (pointwise, fully connected) or 9 (depthwise) values, each block with its own
float scale and int8 zero point, and are expanded at run time by ``DequantizeLinear`` nodes
(opset 21).

This module reads that file with the ``onnx`` package only, dequantises the weights once into
float32, folds every batch norm into the convolution or linear layer before it, and builds an
ordinary ``nn.Module``: each convolution is a real :class:`torch.nn.Conv2d`, so forward hooks,
autograd and Captum's layer methods work on it. No ONNX runtime is used at inference.

Input: OpenCV's ``FaceRecognizerSF.feature`` calls ``blobFromImage(chip, 1, (112, 112),
(0, 0, 0), swapRB=True)`` on the BGR chip made by ``FaceRecognizerSF.alignCrop``; the network
therefore sees the chip as **RGB** values in [0, 255], and normalises them itself,
``(v - 127.5) * 0.0078125``, in its first two nodes. :meth:`SFace.features` takes RGB in [0, 1]
and reproduces exactly that.

Speed on CPU (2 threads, torch 2.13; median images/s at batch 1 / 16 / 32 on a shared 2-core
machine): forward 52 / 58 / 60, forward + backward to the input 18 / 23 / 22. The network is
memory-bound: the 112x112 activations of a large batch leave the CPU cache. Two choices
follow from measurements: the convolutions run in channels_last (NHWC) layout (plain NCHW:
52 / 39 / 29 forward, 17 / 18 / 12 with backward), and batches above
:attr:`SFace.chunk_size` = 16 run in chunks (unchunked batch 32: 48 forward, 16 with backward).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from xfr_lib.data import asset_file
from xfr_lib.errors import AssetError
from xfr_lib.models._base import MODELS, FaceModel

ASSET = "sface"
MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"

# Ops whose outputs are computed once, at load time, from constants (the weight expansion).
_CONSTANT_OPS = ("Constant", "Identity", "DequantizeLinear", "Reshape", "Transpose")
# Ops turned into modules (or, for Sub/Mul/Dropout, into the input scaling or nothing).
_COMPUTE_OPS = ("Sub", "Mul", "Conv", "BatchNormalization", "PRelu", "Dropout", "Flatten", "Gemm")

# What the zoo's file holds; anything else is a different model and is refused.
_EXPECTED_CONV_BLOCKS = 27
_EXPECTED_LAST_MAP = (1024, 7, 7)


class ConvBlock(nn.Module):
    """A convolution (batch norm folded into its weights and bias) and its PReLU.

    Args:
        conv: the convolution.
        act: the activation after it, or ``None``.
    """

    def __init__(self, conv: nn.Conv2d, act: nn.PReLU | None):
        super().__init__()
        self.conv = conv
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class ChannelAffine(nn.Module):
    """A batch norm in inference form, ``x * scale + shift`` per channel (dimension 1).

    Kept as fixed buffers so that ``model.train()`` cannot switch it to batch statistics.
    """

    #: Names of the per-channel (scale, shift) buffers, both learned (for
    #: :func:`xfr_lib.evaluate.randomized_copy`).
    affine_tensors: ClassVar[tuple[str, str]] = ("scale", "shift")

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return torch.addcmul(self.shift.view(shape), x, self.scale.view(shape))


@MODELS.register("sface")
class SFace(FaceModel):
    """SFace (OpenCV model zoo, 2021dec, int8 block-quantised) as a native PyTorch module.

    Reproduces ``cv2.FaceRecognizerSF.feature`` to a cosine of at least 0.9999 on real chips
    (see ``tests/test_model_sface.py``). The decision threshold is OpenCV's for cosine
    similarity, 0.363: the value chosen on LFW (99.60 % accuracy) in OpenCV's tutorial
    "DNN-based Face Detection And Recognition" (docs.opencv.org/4.5.4/d0/dd4/tutorial_dnn_face.html)
    and used as ``_threshold_cosine`` in the zoo's ``models/face_recognition_sface/sface.py``.

    Precision (:attr:`precision`, ``load_model(..., precision=)``): ``"fp32"`` is the parity
    reference above; ``"bf16"`` runs forward passes without gradients under bfloat16 autocast:
    2.3x the fp32 images/s at batch 32 on 2 idle threads and 1.5-2.7x OpenCV's
    ``FaceRecognizerSF`` on the same weights (a busy machine), at cosine >= 0.9998 to fp32 on
    the 400 ORL chips and the same ORL accuracy (bench/bench_precision.py). Passes with
    gradients enabled stay fp32: bf16 input gradients measured at cosine 0.94 to fp32, and no
    faster.

    Args:
        onnx_path: the ONNX file; :meth:`pretrained` passes the verified asset.

    Raises:
        AssetError: the file is missing, unreadable or truncated, uses an op this converter
            does not know, or is not the expected SFace graph.

    Example:
        >>> model = SFace.pretrained()
        >>> model.embed(torch.rand(2, 3, 112, 112)).shape
        torch.Size([2, 128])
    """

    input_size: ClassVar[tuple[int, int]] = (112, 112)
    embedding_dim: ClassVar[int] = 128
    threshold: ClassVar[float] = 0.363
    alignment: ClassVar[str] = "arcface_5pt"
    # Block outputs (convolution + folded batch norm + PReLU), finest to coarsest map.
    cam_layers: ClassVar[dict[str, str]] = {
        "conv_56x56": "body.conv_4",  # 128 channels
        "conv_28x28": "body.conv_6",  # 256 channels
        "conv_14x14": "body.conv_12",  # 512 channels
        "conv_7x7": "body.conv_14",  # 1024 channels, the last spatial map
    }
    #: Grad-CAM's usual choice, the last spatial map: most identity-specific, coarsest (16 px).
    cam_default: ClassVar[str] = "conv_7x7"
    #: The graph's input scaling ``(v - 127.5) * 0.0078125`` is a constant, not learned.
    fixed_buffers: ClassVar[tuple[str, ...]] = ("input_mean", "input_scale")
    #: The affine + linear layer on the flattened 7x7 map: 6.4 M of the 9.6 M parameters.
    last_block: ClassVar[tuple[str, ...]] = ("head",)

    #: Chips per forward pass in :meth:`features`: the activations of bigger batches leave
    #: the CPU cache and each image costs more (see the module doc). 0: no limit.
    chunk_size: int = 16

    def __init__(self, onnx_path: str | Path):
        super().__init__()
        self.onnx_path = Path(onnx_path)
        mean, scale, body, head = build_from_onnx(self.onnx_path)
        # OpenCV feeds 0..255; the graph's own first nodes are (v - mean) * scale.
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("input_scale", torch.tensor(scale, dtype=torch.float32))
        self.body = body
        self.head = head
        # A fixed pretrained model: gradients are wanted for inputs, never for weights.
        self.requires_grad_(False)
        # Depthwise and 1x1 convolutions run faster in NHWC on CPU (see the module doc).
        self._memory_format = torch.channels_last
        self.body.to(memory_format=self._memory_format)
        self.eval()

    @classmethod
    def pretrained(cls) -> SFace:
        """The zoo's SFace weights from the verified ``sface`` asset (fetched on first use)."""
        return cls(asset_file(ASSET, MODEL_FILE))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw 128-D SFace features of chips ``x`` ``[B, 3, 112, 112]``, RGB in [0, 1].

        Equal (up to float rounding) to ``cv2.FaceRecognizerSF.feature`` on the same chip
        given to OpenCV as BGR uint8. Large batches are run :attr:`chunk_size` chips at a
        time (the same result, faster on CPU), unless forward hooks are registered: then
        every layer runs once on the whole batch, as hook-based explainers expect.
        """
        x = (x * 255.0 - self.input_mean) * self.input_scale
        x = x.contiguous(memory_format=self._memory_format)
        if self.chunk_size and len(x) > self.chunk_size and not self._hooked():
            return torch.cat([self.head(self.body(c)) for c in x.split(self.chunk_size)])
        return self.head(self.body(x))

    def _hooked(self) -> bool:
        """Whether any hook would see a layer run more than once if the batch were split."""
        glob = nn.modules.module
        if glob._global_forward_hooks or glob._global_forward_pre_hooks \
                or glob._global_backward_hooks or glob._global_backward_pre_hooks:
            return True
        return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                   or m._backward_pre_hooks for m in self.modules())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", onnx={self.onnx_path.name!r}"


# --- reading and converting the ONNX graph ----------------------------------------------------


def build_from_onnx(path: str | Path) -> tuple[float, float, nn.Sequential, nn.Sequential]:
    """Turn the SFace ONNX graph into modules.

    Args:
        path: the ONNX file.

    Returns:
        ``(mean, scale, body, head)``: the input normalisation ``(v - mean) * scale`` applied
        to 0..255 RGB, the convolutional blocks (named after the ONNX nodes, e.g. ``conv_2_dw``,
        ``conv_2``) and the layers after the last one (``bn1``, ``flatten``, ``pre_fc1``).

    Raises:
        AssetError: unreadable file, unsupported op, or a graph that is not SFace's.
    """
    path = Path(path)
    graph = _load_graph(path)
    try:
        return _build(graph, path)
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as exc:
        # Inconsistent shapes or attributes in a graph that otherwise parsed.
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise _graph_error(path, f"{type(exc).__name__}: {reason}") from None


def _build(graph, path: Path) -> tuple[float, float, nn.Sequential, nn.Sequential]:
    consts, nodes = _fold_constants(graph, path)
    _check_chain(graph, consts, nodes, path)

    mean = scale = None
    layers: list[tuple[str, nn.Module]] = []
    i = 0
    while i < len(nodes):
        node, op = nodes[i], nodes[i].op_type
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        if op == "Sub" and i == 0 and nxt is not None and nxt.op_type == "Mul" \
                and node.input[0] not in consts:  # image - mean, not mean - image
            mean = _scalar(consts, node.input[1], node, path)
            scale = _scalar(consts, nxt.input[1], nxt, path)
            i += 2
        elif op == "Conv":
            conv = _conv(node, consts, path)
            i += 1
            if i < len(nodes) and nodes[i].op_type == "BatchNormalization":
                _fold_bn(conv, *_bn_params(nodes[i], consts, path))
                i += 1
            act = None
            if i < len(nodes) and nodes[i].op_type == "PRelu":
                act = _prelu(nodes[i], consts, conv.out_channels, path)
                i += 1
            layers.append((_module_name(node, "_conv2d"), ConvBlock(conv, act)))
        elif op == "Gemm":
            linear = _gemm(node, consts, path)
            i += 1
            if i < len(nodes) and nodes[i].op_type == "BatchNormalization":
                _fold_bn(linear, *_bn_params(nodes[i], consts, path))
                i += 1
            layers.append((_module_name(node), linear))
        elif op == "BatchNormalization":
            s, t = _bn_params(node, consts, path)
            layers.append((_module_name(node), ChannelAffine(s.float(), t.float())))
            i += 1
        elif op == "Dropout":
            _check_dropout(node, consts, path)
            i += 1  # identity at inference
        elif op == "Flatten":
            if _attrs(node).get("axis", 1) != 1:
                raise _graph_error(path, f"Flatten node {node.name!r} has axis != 1")
            layers.append((_module_name(node), nn.Flatten()))
            i += 1
        else:
            raise _graph_error(path, f"op {op} (node {node.name!r}) is not supported here")

    if mean is None:
        raise _graph_error(path, "it does not start with the Sub/Mul input normalisation")
    if len({n for n, _ in layers}) != len(layers):
        raise _graph_error(path, "two layers have the same node name")
    last_conv = max((k for k, (_, m) in enumerate(layers) if isinstance(m, ConvBlock)), default=-1)
    body = nn.Sequential(OrderedDict(layers[: last_conv + 1]))
    head = nn.Sequential(OrderedDict(layers[last_conv + 1 :]))
    _verify(graph, body, head, path)
    return mean, scale, body, head


def _load_graph(path: Path):
    import onnx

    if not path.is_file():
        raise AssetError(f"SFace model {path} not found; run 'xfr fetch sface' to download it")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types on bad files)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AssetError(
            f"cannot read SFace model {path} ({type(exc).__name__}: {reason}); the file is "
            f"truncated or not ONNX: delete it and run 'xfr fetch sface' again"
        ) from None
    if not model.graph.node:
        raise AssetError(
            f"SFace model {path} holds no ONNX graph (truncated or not ONNX); delete it and run "
            f"'xfr fetch sface' again"
        )
    return model.graph


def _graph_error(path: Path, what: str) -> AssetError:
    return AssetError(
        f"SFace model {path} is not the expected graph: {what}; use the verified asset "
        f"(xfr fetch sface)"
    )


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold_constants(graph, path: Path) -> tuple[dict[str, np.ndarray], list]:
    """Evaluate every node whose inputs are all constants; return constants and the rest."""
    from onnx import numpy_helper

    consts: dict[str, np.ndarray] = {}
    try:
        for init in graph.initializer:
            consts[init.name] = numpy_helper.to_array(init)
    except Exception as exc:  # noqa: BLE001 (a damaged tensor fails in many ways)
        raise AssetError(
            f"SFace model {path} has an unreadable weight ({type(exc).__name__}); delete it and "
            f"run 'xfr fetch sface' again"
        ) from None
    rest = []
    for node in graph.node:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise _graph_error(path, f"op {node.domain}.{op} (node {node.name!r}) is not supported")
        ins = [n for n in node.input if n]
        if op in _CONSTANT_OPS and all(n in consts for n in ins):
            consts[node.output[0]] = _eval_constant(node, [consts[n] for n in ins], path)
        elif op in _COMPUTE_OPS:
            rest.append(node)
        else:
            raise _graph_error(path, f"op {op} (node {node.name!r}) is not supported here")
    return consts, rest


def _eval_constant(node, inputs: list[np.ndarray], path: Path) -> np.ndarray:
    from onnx import numpy_helper

    op, attrs = node.op_type, _attrs(node)
    if op == "Constant":
        if "value" not in attrs:
            raise _graph_error(path, f"Constant node {node.name!r} has no tensor 'value'")
        return numpy_helper.to_array(attrs["value"])
    if op == "Identity":
        return inputs[0]
    if op == "Reshape":
        data, shape = inputs
        shape = [d if d != 0 or attrs.get("allowzero", 0) else data.shape[k]
                 for k, d in enumerate(shape.tolist())]
        return data.reshape(shape)
    if op == "Transpose":
        return np.transpose(inputs[0], attrs.get("perm"))
    return _dequantize(node, inputs, attrs, path)


def _dequantize(node, inputs: list[np.ndarray], attrs: dict, path: Path) -> np.ndarray:
    """ONNX DequantizeLinear: ``(x - zero_point) * scale``, per tensor, axis or block."""
    x, scale = inputs[0], inputs[1].astype(np.float32)
    zero = inputs[2] if len(inputs) > 2 else np.zeros_like(scale, dtype=x.dtype)
    if x.dtype.kind not in "iu":
        raise _graph_error(path, f"DequantizeLinear {node.name!r} input has dtype {x.dtype}")
    axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
    if scale.size == 1:  # per tensor
        scale, zero = scale.reshape(()), zero.reshape(())
    else:
        axis = axis % x.ndim
        if block:  # blocks of `block` values along `axis` share one scale and zero point
            if scale.shape[axis] != -(-x.shape[axis] // block) or scale.ndim != x.ndim:
                raise _graph_error(path, f"DequantizeLinear {node.name!r} has bad block scales")
            keep = (slice(None),) * axis + (slice(0, x.shape[axis]),)  # the last block may be short
            scale = np.repeat(scale, block, axis=axis)[keep]
            zero = np.repeat(zero, block, axis=axis)[keep]
        else:  # per axis: a 1-D scale along `axis`
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
    # int32 difference avoids int8 overflow; product in float32 as the ONNX spec computes it.
    return (x.astype(np.int32) - zero.astype(np.int32)).astype(np.float32) * scale


def _check_chain(graph, consts: dict, nodes: list, path: Path) -> None:
    """The graph must be one chain from its image input to its single output."""
    inputs = [i.name for i in graph.input if i.name not in consts]
    used = {n for node in nodes for n in node.input}
    # Old exporters list unused weights as graph inputs too; only the used one is the image.
    images = [n for n in inputs if n in used]
    if len(images) != 1 or len(graph.output) != 1:
        raise _graph_error(path, f"expected one image input and one output, got {images}")
    current = images[0]
    for node in nodes:
        dynamic = [n for n in node.input if n and n not in consts]
        if dynamic != [current] or len([o for o in node.output if o]) < 1:
            raise _graph_error(path, f"node {node.name!r} ({node.op_type}) breaks the layer chain")
        current = node.output[0]
    if current != graph.output[0].name:
        raise _graph_error(path, "the layer chain does not end at the graph output")


def _const(consts: dict, name: str, node, path: Path) -> np.ndarray:
    if name not in consts:
        raise _graph_error(path, f"input {name!r} of node {node.name!r} is not a constant")
    return consts[name]


def _scalar(consts: dict, name: str, node, path: Path) -> float:
    value = _const(consts, name, node, path)
    if value.size != 1:
        raise _graph_error(path, f"{node.op_type} {node.name!r} is not by a scalar")
    return float(value.reshape(()))


def _module_name(node, suffix: str = "") -> str:
    name = (node.name or node.output[0]).replace(".", "_")
    return name[: -len(suffix)] if suffix and name.endswith(suffix) else name


def _conv(node, consts: dict, path: Path) -> nn.Conv2d:
    a = _attrs(node)
    w = _const(consts, node.input[1], node, path).astype(np.float32)
    if w.ndim != 4 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise _graph_error(path, f"Conv {node.name!r} is not a 2-D convolution with explicit pads")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise _graph_error(path, f"Conv {node.name!r} has asymmetric pads {pads}")
    groups = a.get("group", 1)
    if tuple(a.get("kernel_shape", w.shape[2:])) != w.shape[2:]:
        raise _graph_error(path, f"Conv {node.name!r} kernel_shape does not match its weight")
    # skip_init: the random initialisation would be overwritten anyway.
    conv = skip_init(nn.Conv2d, w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                     stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                     dilation=tuple(a.get("dilations", [1, 1])), groups=groups, bias=True)
    bias = (_const(consts, node.input[2], node, path) if len(node.input) > 2 and node.input[2]
            else np.zeros(w.shape[0], np.float32))
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return conv


def _gemm(node, consts: dict, path: Path) -> nn.Linear:
    a = _attrs(node)
    if a.get("transA", 0):
        raise _graph_error(path, f"Gemm {node.name!r} transposes its input")
    w = _const(consts, node.input[1], node, path).astype(np.float32)
    w = (w if a.get("transB", 0) else w.T) * np.float32(a.get("alpha", 1.0))
    bias = np.zeros(w.shape[0], np.float32)
    if len(node.input) > 2 and node.input[2]:
        c = _const(consts, node.input[2], node, path).astype(np.float32).reshape(-1)
        bias = np.broadcast_to(c, (w.shape[0],)) * np.float32(a.get("beta", 1.0))
    linear = skip_init(nn.Linear, w.shape[1], w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        linear.bias.copy_(torch.from_numpy(bias))
    return linear


def _bn_params(node, consts: dict, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` of an inference batch norm, computed in float64."""
    if len([o for o in node.output if o]) != 1 or _attrs(node).get("training_mode", 0):
        raise _graph_error(path, f"BatchNormalization {node.name!r} is in training mode")
    gamma, beta, mean, var = (_const(consts, n, node, path).astype(np.float64).reshape(-1)
                              for n in node.input[1:5])
    scale = gamma / np.sqrt(var + _attrs(node).get("epsilon", 1e-5))
    return torch.from_numpy(scale), torch.from_numpy(beta - mean * scale)


def _fold_bn(layer: nn.Conv2d | nn.Linear, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """Make ``layer`` compute ``bn(layer(x))``: scale its weights per output, shift its bias."""
    with torch.no_grad():
        shape = (-1,) + (1,) * (layer.weight.ndim - 1)
        layer.weight.mul_(scale.float().view(shape))
        layer.bias.copy_((layer.bias.double() * scale + shift).float())


def _prelu(node, consts: dict, channels: int, path: Path) -> nn.PReLU:
    slope = _const(consts, node.input[1], node, path).astype(np.float32)
    # ONNX broadcasts the slope numpy-style: per channel of NCHW means shape (C, 1, 1).
    if slope.size != 1 and slope.shape != (channels, 1, 1):
        raise _graph_error(path, f"PRelu {node.name!r} slope {slope.shape} is not per channel")
    act = nn.PReLU(slope.size)
    with torch.no_grad():
        act.weight.copy_(torch.from_numpy(slope.reshape(-1)))
    return act


def _check_dropout(node, consts: dict, path: Path) -> None:
    training = node.input[2] if len(node.input) > 2 else ""
    if training and bool(_const(consts, training, node, path).reshape(())):
        raise _graph_error(path, f"Dropout {node.name!r} is in training mode")


def _verify(graph, body: nn.Sequential, head: nn.Sequential, path: Path) -> None:
    """Check the rebuilt network against what the zoo's SFace file is known to be."""
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    if dims[1:] != [3, *SFace.input_size]:
        raise _graph_error(path, f"input shape {dims}, expected [N, 3, 112, 112]")
    blocks = [m for m in body if isinstance(m, ConvBlock)]
    if len(blocks) != _EXPECTED_CONV_BLOCKS or len(blocks) != len(body):
        raise _graph_error(path, f"{len(blocks)} convolution blocks, expected "
                                 f"{_EXPECTED_CONV_BLOCKS}")
    # Follow the feature map's shape through the layers (no forward pass needed).
    c, h, w = 3, *SFace.input_size
    for name, block in body.named_children():
        conv = block.conv
        if conv.in_channels != c:
            raise _graph_error(path, f"{name} takes {conv.in_channels} channels, gets {c}")
        h, w = ((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
            (h, w), conv.padding, conv.dilation, conv.kernel_size, conv.stride, strict=True))
        c = conv.out_channels
    linears = [m for m in head if isinstance(m, nn.Linear)]
    if (c, h, w) != _EXPECTED_LAST_MAP or len(linears) != 1 \
            or linears[0].in_features != c * h * w \
            or linears[0].out_features != SFace.embedding_dim:
        raise _graph_error(path, f"last map {[c, h, w]} and head {list(head)}, expected "
                                 f"{list(_EXPECTED_LAST_MAP)} and one linear layer to "
                                 f"{SFace.embedding_dim}")
