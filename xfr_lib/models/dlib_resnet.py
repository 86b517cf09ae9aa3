"""dlib's ResNet-29 face descriptor as a native PyTorch module, read from dlib's ``.dat`` file.

dlib's ``dlib_face_recognition_resnet_model_v1.dat`` is the network type ``anet_type`` of
dlib's ``dnn_face_recognition_ex.cpp`` written with dlib's own serialisation. This module reads
that file with numpy alone (dlib is not needed to load the model) and rebuilds the network:

* stem: conv 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2: 150x150 -> 72x72 -> 35x35;
* residual blocks ``relu(x + affine(conv3x3(relu(affine(conv3x3(x))))))``, in five stages:
  3 x 32 channels at 35x35, 4 x 64 at 17x17, 3 x 128 at 8x8, 3 x 256 at 4x4, 1 x 256 at 2x2;
  the first block of every stage but the first downsamples: its first conv has stride 2 and
  no padding, its skip is avg_pool 2x2/2, and the two branches are added after zero-padding
  the smaller one (the extra channels of the skip; at 8x8 -> 4x4 also the last row and column
  of the 3x3 residual branch), as dlib's ``add_prev`` does;
* mean over the final 2x2 map, then a 256 -> 128 fully connected layer without bias.

The affine layers are dlib's frozen batch normalisation (``x * gamma + beta`` per channel);
they follow convolutions and are folded into them by default (exact up to float rounding). The input of
dlib's ``input_rgb_image_sized`` is ``(pixel - mean) / 256`` with the per-channel mean stored in
the file (RGB 122.782, 117.001, 104.298); dividing by 255 instead gives errors of 4.7e-4.

Serialisation (dlib/serialize.h, dlib/dnn/core.h, layers.h, tensor.h): integers are a control
byte (low nibble = number of bytes, bit 7 = negative) followed by little-endian bytes; strings
are an integer length then bytes; floats are two integers, mantissa and base-2 exponent; bools
are the characters ``'1'``/``'0'``; tensors are a version (2), four dimensions and raw
little-endian float32 values. A network nests: ``add_loss_layer`` writes its version, the loss
details and then its subnetwork; every ``add_layer`` writes its version and its subnetwork
*first*, then its own layer details, three bools and its cached tensors; ``tag`` and ``skip``
layers write only a version and their subnetwork. So the file holds all versions from the
output inwards, the input layer, then each layer's details from the input outwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xfr_lib.data import asset_file
from xfr_lib.errors import AssetError
from xfr_lib.models._base import MODELS, FaceModel

ASSET = "dlib_resnet29"
DAT_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# (channels, blocks) per stage, input side first; every stage but the first starts with a
# downsampling block. This is dlib's alevel4 .. alevel0.
STAGES: tuple[tuple[int, int], ...] = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
STEM_CHANNELS = 32
EMBEDDING_DIM = 128


# ---------------------------------------------------------------------------------------------
# Reading dlib's serialisation


class _DatError(Exception):
    """Internal: the file is not the expected network (message completed by the caller)."""


class _Reader:
    """Sequential reader of dlib's binary serialisation over a bytes buffer."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _DatError(f"file ends early (needed {n} bytes at offset {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise _DatError(f"bad integer control byte 0x{control:02x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if abs(exponent) >= 32000:  # dlib's codes for inf and nan
            raise _DatError(f"non-finite float at offset {self.pos}")
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise _DatError(f"bad bool {c!r} at offset {self.pos - 1}")
        return c == b"1"

    def str(self, max_len: int = 64) -> str:
        n = self.int()
        if not 0 <= n <= max_len:
            raise _DatError(f"bad string length {n} at offset {self.pos}")
        raw = self._take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise _DatError(f"non-text string at offset {self.pos - n}") from None

    def tensor(self) -> np.ndarray:
        """A tensor as a 4-D float32 array ``[n, k, nr, nc]`` (a copy, not a view of the file)."""
        version = self.int()
        if version != 2:
            raise _DatError(f"tensor version {version} at offset {self.pos}, expected 2")
        dims = [self.int() for _ in range(4)]
        if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) > len(self.data):
            raise _DatError(f"bad tensor shape {dims} at offset {self.pos}")
        n = int(np.prod(dims, dtype=np.int64))
        values = np.frombuffer(self._take(4 * n), dtype="<f4").astype(np.float32)
        return values.reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise _DatError(f"alias_tensor version {version} at offset {self.pos}, expected 1")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]

    def expect(self, value: int, what: str) -> None:
        got = self.int()
        if got != value:
            raise _DatError(f"{what}: found {got}, expected {value} (offset {self.pos})")


def _anet_layers() -> list[tuple]:
    """dlib's ``anet_type`` from the output inwards: what the file must hold, in its order.

    Entries: ``("con", filters, size, stride)``, ``("affine",)``, ``("relu",)``,
    ``("max_pool", size, stride)``, ``("avg_pool", size, stride)`` (size 0 = everything),
    ``("add_prev",)``, ``("fc", outputs)``, ``("tag",)``, ``("skip",)``.
    """

    def block(n: int, stride: int) -> list[tuple]:  # affine(con(relu(affine(con(x))))), outer first
        return [("affine",), ("con", n, 3, 1), ("relu",), ("affine",), ("con", n, 3, stride)]

    layers: list[tuple] = [("fc", EMBEDDING_DIM), ("avg_pool", 0, 1)]
    for n, count in reversed(STAGES):
        downsample = n != STAGES[0][0]
        for i in range(count):
            if downsample and i == count - 1:  # the stage's innermost block is the downsampler
                layers += [("relu",), ("add_prev",), ("avg_pool", 2, 2), ("skip",), ("tag",)]
                layers += block(n, 2) + [("tag",)]
            else:
                layers += [("relu",), ("add_prev",)] + block(n, 1) + [("tag",)]
    layers += [("max_pool", 3, 2), ("relu",), ("affine",), ("con", STEM_CHANNELS, 7, 2)]
    return layers


@dataclass
class DlibWeights:
    """The content of dlib's face-recognition ``.dat`` file, as numpy arrays.

    Attributes:
        mean_rgb: per-channel input mean ``[3]`` (pixel units, RGB).
        input_size: ``(rows, cols)`` of the input chip.
        convs: ``(weight [out, in, kh, kw], bias [out])`` of the 29 convolutions, input first.
        affines: ``(gamma [C], beta [C])`` following each convolution, same order.
        fc: fully connected weight ``[128, 256]`` (torch's ``Linear`` layout: out x in).
        loss: the metric loss's ``margin`` and ``distance_threshold`` (0.6 for this model).
        path: the file read.
    """

    mean_rgb: np.ndarray
    input_size: tuple[int, int]
    convs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    affines: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    fc: np.ndarray | None = None
    loss: dict[str, float] = field(default_factory=dict)
    path: Path | None = None


def read_dlib_dat(path: str | Path) -> DlibWeights:
    """Parse dlib's ``dlib_face_recognition_resnet_model_v1.dat`` with numpy.

    Every byte is accounted for: the layer sequence must be exactly dlib's ``anet_type``,
    parameter sizes must match the layer shapes, channels must chain from layer to layer,
    and the file must end where the network ends.

    Args:
        path: the ``.dat`` file.

    Returns:
        The weights, with the affine layers still separate from the convolutions.

    Raises:
        AssetError: the file is missing or is not dlib's ResNet-29 face descriptor.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AssetError(
            f"{path}: cannot read dlib model file ({e.strerror}); "
            f"re-fetch it with 'xfr fetch {ASSET}'"
        ) from None
    try:
        weights = _parse(_Reader(data))
    except _DatError as e:
        raise AssetError(
            f"{path}: not dlib's face-recognition ResNet ({e}); the file is corrupt or another "
            f"model: delete it and re-fetch it with 'xfr fetch {ASSET}'"
        ) from None
    weights.path = path
    return weights


def _parse(r: _Reader) -> DlibWeights:
    r.expect(1, "add_loss_layer version")
    loss_name = r.str()
    if loss_name != "loss_metric_2":
        raise _DatError(f"loss layer {loss_name!r}, expected 'loss_metric_2'")
    loss = {"margin": r.float(), "distance_threshold": r.float()}

    layers = _anet_layers()
    for spec in layers[:-1]:  # versions, output inwards
        r.expect(1 if spec[0] in ("tag", "skip") else 2, f"version of layer {spec[0]}")
    input_version = r.int()  # the innermost add_layer (the stem conv) holds the input layer
    if input_version not in (2, 3):
        raise _DatError(f"input add_layer version {input_version}, expected 2 or 3")

    name = r.str()
    if name != "input_rgb_image_sized":
        raise _DatError(f"input layer {name!r}, expected 'input_rgb_image_sized'")
    mean_rgb = np.array([r.float(), r.float(), r.float()], dtype=np.float32)
    input_size = (r.int(), r.int())
    if not np.all((mean_rgb > 0) & (mean_rgb < 255)) or input_size != (150, 150):
        raise _DatError(f"input layer mean {mean_rgb.tolist()} size {input_size}")

    w = DlibWeights(mean_rgb=mean_rgb, input_size=input_size, loss=loss)
    # Walk the layers input first, as dlib runs them, checking that channel counts chain: a
    # tag saves the current output; in a downsampling block a skip sets the residual branch
    # (saved by the last tag) aside and returns to the block input (the tag before it);
    # add_prev adds the saved output, zero-padding the smaller one.
    channels, tags, branch = 3, [], None
    for i, spec in enumerate(reversed(layers)):
        kind = spec[0]
        if kind == "tag":
            tags.append(channels)
            continue
        if kind == "skip":
            branch, channels = tags.pop(), tags.pop()
            continue
        _read_details(r, spec, w, channels)
        if kind in ("con", "fc"):
            channels = spec[1]
        elif kind == "add_prev" and branch is not None:
            if channels > branch:
                raise _DatError(f"skip of {channels} channels onto a branch of {branch}")
            channels, branch = branch, None
        elif kind == "add_prev" and tags.pop() != channels:
            raise _DatError(f"residual add onto {channels} channels from a different count")
        for _ in range(3):
            r.bool()  # setup called, gradient stale, output getters disabled
        for _ in range(3):
            r.tensor()  # x_grad, cached_output and params_grad (grad_final): unused
        if i == 0 and input_version == 3:
            r.int()  # sample expansion factor of the input add_layer
    if r.pos != len(r.data):
        raise _DatError(f"{len(r.data) - r.pos} unexpected bytes after the network")
    if tags or len(w.convs) != 29 or len(w.affines) != 29 or w.fc is None:
        raise _DatError("wrong number of layers")
    return w


def _read_details(r: _Reader, spec: tuple, w: DlibWeights, channels: int) -> None:
    kind = spec[0]
    name = r.str()
    if kind == "con":
        _, n, size, stride = spec
        if name != "con_4":
            raise _DatError(f"layer {name!r}, expected 'con_4'")
        params = r.tensor().ravel()
        geometry = [r.int() for _ in range(7)]
        pad = 0 if stride != 1 else size // 2
        if geometry != [n, size, size, stride, stride, pad, pad]:
            raise _DatError(f"convolution {geometry}, expected {[n, size, size, stride, stride]}")
        filters, biases = r.alias(), r.alias()
        if filters != (n, channels, size, size) or biases != (1, n, 1, 1):
            raise _DatError(f"convolution filters {filters}, expected {(n, channels, size, size)}")
        n_w = n * channels * size * size
        if params.size != n_w + n:
            raise _DatError(f"convolution has {params.size} parameters, expected {n_w + n}")
        for _ in range(4):
            r.float()  # learning-rate and weight-decay multipliers
        w.convs.append((params[:n_w].reshape(filters), params[n_w:].copy()))
    elif kind == "affine":
        if name != "affine_":
            raise _DatError(f"layer {name!r}, expected 'affine_'")
        params = r.tensor().ravel()
        gamma, beta = r.alias(), r.alias()
        r.int()  # mode (conv or fc): both act per channel here
        if gamma != (1, channels, 1, 1) or beta != gamma or params.size != 2 * channels:
            raise _DatError(f"affine of {params.size} values for {channels} channels")
        w.affines.append((params[:channels].copy(), params[channels:].copy()))
    elif kind == "relu" or kind == "add_prev":
        if name != f"{kind}_":
            raise _DatError(f"layer {name!r}, expected '{kind}_'")
    elif kind in ("max_pool", "avg_pool"):
        _, size, stride = spec
        if name != f"{kind}_2":
            raise _DatError(f"layer {name!r}, expected '{kind}_2'")
        geometry = [r.int() for _ in range(6)]
        if geometry != [size, size, stride, stride, 0, 0]:
            raise _DatError(f"{kind} {geometry}, expected {[size, size, stride, stride, 0, 0]}")
    elif kind == "fc":
        if name != "fc_2":
            raise _DatError(f"layer {name!r}, expected 'fc_2'")
        outputs, inputs = r.int(), r.int()
        params = r.tensor().ravel()
        weights, biases = r.alias(), r.alias()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        if (outputs, inputs) != (spec[1], channels) or params.size != inputs * outputs:
            raise _DatError(f"fc {inputs}->{outputs} with {params.size} parameters")
        if weights != (inputs, outputs, 1, 1) or bias_mode != 1:  # FC_NO_BIAS
            raise _DatError(f"fc weights {weights}, bias mode {bias_mode}")
        # dlib computes output = input x W with W [inputs, outputs]; torch wants [out, in].
        w.fc = np.ascontiguousarray(params.reshape(inputs, outputs).T)
    else:  # pragma: no cover - the layer table has no other kinds
        raise _DatError(f"unknown layer kind {kind}")


# ---------------------------------------------------------------------------------------------
# The network in PyTorch


class _Affine(nn.Module):
    """dlib's ``affine_`` layer (frozen batch norm): ``x * gamma + beta`` per channel."""

    #: Names of the per-channel (scale, shift) buffers, both learned (for
    #: :func:`xfr_lib.evaluate.randomized_copy`).
    affine_tensors: ClassVar[tuple[str, str]] = ("gamma", "beta")

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("gamma", torch.ones(1, channels, 1, 1))
        self.register_buffer("beta", torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, x, self.gamma)


class ResidualBlock(nn.Module):
    """``relu(skip(x) + affine(conv(relu(affine(conv(x))))))``, both convs 3x3.

    A downsampling block's first conv has stride 2 and no padding (dlib's default for strided
    convolutions); its skip is avg_pool 2x2/2, and the branches are added after zero-padding
    whichever is smaller in channels, rows or columns (dlib's ``add_prev``).
    """

    def __init__(self, in_channels: int, channels: int, downsample: bool, fuse_affine: bool):
        super().__init__()
        stride, pad = (2, 0) if downsample else (1, 1)
        self.downsample = downsample
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, pad)
        self.bn1 = nn.Identity() if fuse_affine else _Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.bn2 = nn.Identity() if fuse_affine else _Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        if self.downsample:
            skip = F.avg_pool2d(x, 2, 2)
            y, skip = _pad_to_common(y, skip)
            return F.relu(y + skip, inplace=True)
        return F.relu(y + x, inplace=True)


def _pad_to_common(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``a`` and ``b`` at the end of channels, rows and columns to a common shape."""
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - d for s, d in zip(shape, t.shape[1:], strict=True))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a), pad(b)


@MODELS.register("dlib_resnet29")
class DlibResNet29(FaceModel):
    """dlib's ResNet-29 face descriptor (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

    128-D descriptor of a 150x150 RGB chip aligned by dlib's 5-point shape predictor and
    ``get_face_chip(size=150, padding=0.25)``. Reproduces
    ``dlib.face_recognition_model_v1.compute_face_descriptor`` (see tests/test_model_dlib.py)
    and is differentiable with respect to the chip.

    Threshold. dlib's rule is "same person if the Euclidean distance of the raw descriptors is
    below 0.6" (the file also stores 0.6 as the metric loss's ``distance_threshold``); xfr
    compares unit-length embeddings by cosine similarity. For two descriptors of norm r,
    ``|a - b|^2 = 2 r^2 (1 - cos)``, so ``|a - b| < 0.6`` becomes
    ``cos > 1 - 0.6^2 / (2 r^2)``. Raw descriptors are not unit length, but their norms vary
    little, so r is taken as their median norm on real dlib chips, which gives ``threshold``
    (rounded to two decimals). bench/bench_dlib_threshold.py measures the figures behind it
    on dlib's own chips (the ORL photos in which dlib's HOG detector finds a face and the
    in-the-wild photos): the spread of the norms, the threshold derived from their median,
    how often the cosine rule at ``threshold`` agrees with dlib's L2 rule over all pairs, the
    best single cosine threshold, and both rules' pair accuracy on those people.

    CAM layers are the outputs of the last residual block at 35x35 (32 channels), 17x17 (64)
    and 8x8 (128). The later stages are too coarse: 4x4, with a zero row and column in the
    residual branch of its first block, and the final 2x2.

    The parameters are frozen (``requires_grad=False``): gradients flow to the input only.
    The default layout (affine folded, channels-last) is the fastest measured on CPU
    (bench/bench_dlib_layout.py); with it, intermediate activations (e.g. of the CAM layers)
    are channels-last tensors: reshape or flatten them, ``.view`` fails. Input gradients are
    ordinary contiguous tensors.

    Precision (:attr:`precision`, ``load_model(..., precision=)``): ``"fp32"`` is the reference
    above; ``"bf16"`` runs forward passes without gradients under bfloat16 autocast (oneDNN bf16
    convolutions, channels-last): 2.5x the fp32 images/s at batch 32 on 2 idle threads, at
    cosine >= 0.99996 to fp32 on the 400 ORL chips and the same ORL accuracy
    (bench/bench_precision.py). Passes with gradients enabled stay fp32: bf16 input
    gradients measured at cosine 0.96 to fp32. Tried and not used: weights converted to bf16
    (1.13x autocast's speed, but a second copy of the weights or no fp32 oracle) and
    ``torch.compile`` (1.3x more, after a 75 s cold compile per process).

    Example:
        >>> model = DlibResNet29.pretrained()
        >>> chips = torch.rand(2, 3, 150, 150)  # aligned chips, RGB in [0, 1]
        >>> model.embed(chips).shape
        torch.Size([2, 128])

    Args:
        weights: parsed ``.dat`` content; ``None`` leaves the parameters uninitialised
            (use :meth:`pretrained`).
        fuse_affine: fold each affine layer into the convolution before it (faster; the
            outputs differ from the unfolded network by float rounding only).
        channels_last: run convolutions in channels-last memory format.
    """

    input_size: ClassVar[tuple[int, int]] = (150, 150)
    embedding_dim: ClassVar[int] = EMBEDDING_DIM
    threshold: ClassVar[float] = 0.91
    alignment: ClassVar[str] = "dlib_chip"
    cam_layers: ClassVar[dict[str, str]] = {
        "block_35x35": "stage1.2",
        "block_17x17": "stage2.3",
        "block_8x8": "stage3.2",
    }
    #: Grad-CAM's usual choice, the last usable map: most identity-specific, coarsest (~19 px).
    cam_default: ClassVar[str] = "block_8x8"
    #: The input mean (dlib's per-channel pixel mean) is a constant, not learned.
    fixed_buffers: ClassVar[tuple[str, ...]] = ("mean",)
    #: The 2x2 stage and the linear layer after its average: 1.2 M of the 5.6 M parameters.
    last_block: ClassVar[tuple[str, ...]] = ("stage5", "fc")

    def __init__(
        self,
        weights: DlibWeights | None = None,
        *,
        fuse_affine: bool = True,
        channels_last: bool = True,
    ):
        super().__init__()
        self.fuse_affine = fuse_affine
        self.channels_last = channels_last
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, 7, 2, 0)
        self.bn1 = nn.Identity() if fuse_affine else _Affine(STEM_CHANNELS)
        in_ch = STEM_CHANNELS
        for s, (ch, count) in enumerate(STAGES, start=1):
            blocks = [
                ResidualBlock(in_ch if i == 0 else ch, ch, s > 1 and i == 0, fuse_affine)
                for i in range(count)
            ]
            self.add_module(f"stage{s}", nn.Sequential(*blocks))
            in_ch = ch
        self.fc = nn.Linear(in_ch, EMBEDDING_DIM, bias=False)
        if weights is not None:
            self.load_dlib_weights(weights)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        # Frozen: explainers need gradients for the input only, and weight gradients would
        # cost more than the whole forward pass.
        self.requires_grad_(False)
        self.eval()

    def _conv_pairs(self) -> list[tuple[nn.Conv2d, nn.Module]]:
        pairs = [(self.conv1, self.bn1)]
        for s in range(1, len(STAGES) + 1):
            for block in getattr(self, f"stage{s}"):
                pairs += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
        return pairs

    @torch.no_grad()
    def load_dlib_weights(self, weights: DlibWeights) -> None:
        """Copy parsed ``.dat`` weights in, folding affine layers if ``fuse_affine``."""
        self.mean.copy_(torch.from_numpy(weights.mean_rgb).view(1, 3, 1, 1))
        pairs = self._conv_pairs()
        for (conv, bn), (w, b), (gamma, beta) in zip(
            pairs, weights.convs, weights.affines, strict=True
        ):
            if self.fuse_affine:
                # Fold in float64, round once: y = (w*x + b) * gamma + beta
                g = gamma.astype(np.float64)
                w = (w.astype(np.float64) * g[:, None, None, None]).astype(np.float32)
                b = (b.astype(np.float64) * g + beta).astype(np.float32)
            else:
                bn.gamma.copy_(torch.from_numpy(gamma).view(1, -1, 1, 1))
                bn.beta.copy_(torch.from_numpy(beta).view(1, -1, 1, 1))
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
        self.fc.weight.copy_(torch.from_numpy(weights.fc))

    @classmethod
    def pretrained(cls, path: str | Path | None = None, **options) -> DlibResNet29:
        """The model with dlib's weights, in eval mode.

        Args:
            path: a ``.dat`` file; default: the verified asset ``dlib_resnet29``.
            **options: ``fuse_affine``, ``channels_last`` (see the class).
        """
        if path is None:
            path = asset_file(ASSET, DAT_FILE)
        return cls(read_dlib_dat(path), **options)

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> dlib's input ``(pixel - mean) / 256`` with pixel = 255 x."""
        return (x * 255.0 - self.mean) / 256.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw 128-D descriptors (dlib's, not unit length) of chips ``[B,3,150,150]`` in [0, 1]."""
        x = self.normalize_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.max_pool2d(x, 3, 2)
        x = self.stage5(self.stage4(self.stage3(self.stage2(self.stage1(x)))))
        return self.fc(x.mean(dim=(2, 3)))
