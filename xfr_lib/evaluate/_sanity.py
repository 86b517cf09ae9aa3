"""Model-randomisation sanity checks (Adebayo et al. 2018): the model with its weights re-drawn.

A faithful explanation depends on the model: explain the same pairs with a copy whose learned
weights are random, and the maps should change. :func:`randomized_copy` makes that copy.

What is learned. Each model declares the buffers that are fixed constants of its input
normalisation (:attr:`xfr_lib.models.FaceModel.fixed_buffers`: dlib's pixel mean, SFace's
input mean and scale); every other parameter *and buffer* is learned
(:meth:`xfr_lib.models.FaceModel.learned_tensors`, listed by :func:`learned_tensor_names`).
So dlib's unfolded affine layers (``gamma``/``beta``) and SFace's stand-alone batch norm
(``scale``/``shift``), stored as buffers, are re-drawn like the parameters.

What is drawn (one value per element, independently):

=========================================  ====================================================
tensor                                     drawn from
=========================================  ====================================================
conv / linear weight                       ``N(0, gain^2 / fan_in)`` (He / Kaiming-normal);
                                           ``fan_in`` = input channels per group x kernel size
conv / linear bias                         ``N(0, 0.01^2)`` (:data:`BIAS_STD`)
PReLU slope                                ``U(0, 0.5)`` (:data:`PRELU_SLOPES`; mean 0.25,
                                           PyTorch's default)
affine scale (``gamma``, ``scale``)        ``N(1, 0.1^2)`` (:data:`AFFINE_SCALE_STD`)
affine shift (``beta``, ``shift``)         ``N(0, 0.01^2)`` (:data:`BIAS_STD`)
=========================================  ====================================================

``gain`` is that of the non-linearity after the layer, so that the mean square of the
activations is kept from layer to layer: ``sqrt(2 / (1 + E[a^2]))`` = 1.359 before a PReLU
whose slopes ``a`` are drawn as above (``E[a^2]`` = 1/12), ``sqrt(2)`` before a ReLU, and 1
for the last conv / linear layer (the embedding). The non-linearity is the first activation
module (ReLU, LeakyReLU, PReLU) called after the layer and before the next conv / linear
layer; a hidden layer followed by none gets the ReLU gain (dlib applies its ReLUs as
functions, ``F.relu``, after every convolution).

Biases and shifts are random but small (the convolutions' outputs have a root mean square of
0.2-0.7 in the randomised SFace, 0.4-30 in dlib's, on real chips) so that they do not drown
the input. That is what went wrong with PyTorch's default initialisation (Kaiming-uniform with
``a = sqrt(5)``, a gain of ``1 / sqrt(3)``, and biases uniform up to ``1 / sqrt(fan_in)``,
0.33 for SFace's depthwise convolutions): the part of SFace's activations that depends on the
input shrinks about 2.5x per layer (1e-11 after its 27 convolutions) while every layer adds a
bias of about 0.1, so the embedding no longer depends on the input: every pair scored 1.0000
and every map was empty. A copy is checked for exactly that failure (:func:`embedding_spread`).

What to expect. Random networks of ReLUs pull the embeddings of different inputs together
as depth grows (each ReLU makes the features more alike): on the 11 wild photos the
randomised SFace (PReLUs, no skip connections) scores pairs at 0.69-0.92 (median 0.84, seed
0; trained: -0.10-0.81), the randomised dlib ResNet at 0.9948-0.9991 (median 0.9975; trained:
0.78-0.97). Both vary with the input far above float rounding (standard deviation 0.06 and
0.001), which is what an explainer needs; a score near 1 is not a "match" here.

Layers and cascading. A *layer* is a module that owns learned tensors (a convolution, a
linear layer, a PReLU, an affine layer), in the order of a forward pass (the order in which
the modules are first called on one probe image). ``top=k`` re-draws the ``k`` layers nearest
the output (the last ``k``), Adebayo et al.'s cascading randomisation; ``top=None`` all of them.
Each layer's values come from a random generator seeded by ``(seed, layer name)`` only, so the
copy with ``top=k`` is the fully randomised copy with all but its top ``k`` layers trained.

Example:
    >>> from xfr_lib.models import load_model
    >>> model = load_model("sface")
    >>> random_model = randomized_copy(model, seed=0)
    >>> len(randomization_layers(model)), randomization_layers(model)[-2:]
    (56, ['head.bn1', 'head.pre_fc1'])
    >>> embedding_spread(random_model).min < CONSTANT_COSINE
    True
"""

from __future__ import annotations

import copy
import functools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xfr_lib.errors import XfrError

#: Standard deviation of the re-drawn biases and affine shifts (mean 0).
BIAS_STD = 0.01
#: Standard deviation of the re-drawn affine scales (mean 1).
AFFINE_SCALE_STD = 0.1
#: Range of the uniformly re-drawn PReLU slopes.
PRELU_SLOPES = (0.0, 0.5)
#: Embeddings count as constant (not depending on the input) when every pairwise cosine of
#: the probe images is above this.
CONSTANT_COSINE = 0.9999
#: Probe images used to check a randomised copy (:func:`probe_inputs`).
PROBE_IMAGES = 8

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_RELU_GAIN = math.sqrt(2.0)
# E[a^2] of a ~ U(lo, hi) is (lo^2 + lo hi + hi^2) / 3.
_PRELU_GAIN = math.sqrt(2.0 / (1.0 + sum(PRELU_SLOPES[0] ** i * PRELU_SLOPES[1] ** (2 - i)
                                         for i in range(3)) / 3.0))


@dataclass(frozen=True)
class EmbeddingSpread:
    """How much a model's embeddings vary with the input: the pairwise cosines of ``n`` inputs.

    Attributes:
        n: number of inputs (``n * (n - 1) / 2`` pairs).
        min, median, max: of the pairwise cosine similarities (NaN if an embedding is not
            finite).
        std: their sample standard deviation (over the pairs).
    """

    n: int
    min: float
    median: float
    max: float
    std: float

    @property
    def constant(self) -> bool:
        """Whether the embeddings are (near) constant: every pairwise cosine above
        :data:`CONSTANT_COSINE`, or an embedding that is not finite."""
        return not self.min <= CONSTANT_COSINE

    def __str__(self) -> str:
        return (f"cosine over {self.n * (self.n - 1) // 2} pairs of {self.n} inputs: median "
                f"{self.median:.4f}, range {self.min:.4f} to {self.max:.4f}, sd {self.std:.4f}")


@dataclass
class _Layer:
    name: str  # dotted module path ("" = the model itself)
    module: nn.Module
    tensors: list[str]  # local names of its learned tensors
    gain: float = 1.0  # of the non-linearity after it (conv / linear weights only)


def learned_tensor_names(model: nn.Module) -> list[str]:
    """Dotted names of the tensors :func:`randomized_copy` re-draws (``model.learned_tensors()``).

    Parameters and the buffers that are not fixed input-normalisation constants
    (:attr:`xfr_lib.models.FaceModel.fixed_buffers`).
    """
    return list(_learned(model))


def randomization_layers(model: nn.Module) -> list[str]:
    """Dotted names of the layers (modules owning learned tensors), in forward order.

    ``randomized_copy(model, top=k)`` re-draws the last ``k`` of them.
    """
    return [layer.name for layer in _layers(model)]


def probe_inputs(input_size: tuple[int, int], n: int = PROBE_IMAGES, seed: int = 0) -> torch.Tensor:
    """``n`` varied, seeded images ``[n, 3, H, W]`` in [0, 1] to probe a model's embeddings.

    Even indices are pixel noise, uniform in [0, 1]; odd indices are smooth images: a colour
    gradient in a random direction plus low-frequency noise (a random 4x4 grid per channel,
    upsampled bilinearly), clipped to [0, 1]. Not faces: they only need to differ.
    """
    return _probe_inputs(tuple(int(s) for s in input_size), int(n), int(seed)).clone()


@functools.lru_cache(maxsize=8)
def _probe_inputs(input_size: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    if n < 1:
        raise XfrError(f"probe_inputs needs n >= 1 images, got {n}")
    h, w = input_size
    g = torch.Generator().manual_seed(int(seed))
    out = torch.empty(n, 3, h, w)
    ys = torch.linspace(-1.0, 1.0, h).view(h, 1)
    xs = torch.linspace(-1.0, 1.0, w).view(1, w)
    for k in range(n):
        if k % 2 == 0:
            out[k] = torch.rand(3, h, w, generator=g)
        else:
            angle = float(torch.rand((), generator=g)) * 2 * math.pi
            ramp = (math.cos(angle) * xs + math.sin(angle) * ys) / 2  # in [-0.71, 0.71]
            ends = torch.rand(2, 3, 1, 1, generator=g)
            image = ends[0] + (ends[1] - ends[0]) * (ramp + 0.5)
            blobs = F.interpolate(torch.rand(1, 3, 4, 4, generator=g) - 0.5, size=(h, w),
                                  mode="bilinear", align_corners=False)[0]
            out[k] = (image + 0.5 * blobs).clamp(0.0, 1.0)
    return out


@torch.no_grad()
def embedding_spread(model: Any, chips: torch.Tensor | np.ndarray | None = None, *,
                     n: int = PROBE_IMAGES, seed: int = 0) -> EmbeddingSpread:
    """How much ``model``'s embeddings vary: statistics of the pairwise cosines of some inputs.

    Args:
        model: a face model (``embed`` and ``input_size``).
        chips: the inputs, ``[N, 3, H, W]`` float in [0, 1] or ``[N, H, W, 3]`` uint8 (e.g.
            ``EmbeddingSet.chips``); default: ``n`` :func:`probe_inputs` made with ``seed``.
        n, seed: number and seed of the probe images when ``chips`` is None.

    Returns:
        An :class:`EmbeddingSpread`; its ``constant`` says whether the embeddings are (near)
        constant (every pairwise cosine above :data:`CONSTANT_COSINE`).
    """
    from xfr_lib.models import embed

    if chips is None:
        chips = probe_inputs(model.input_size, n, seed)
    if len(chips) < 2:
        raise XfrError(f"embedding_spread needs at least 2 inputs, got {len(chips)}")
    e = embed(model, chips).double()
    cos = (e @ e.T)[tuple(torch.triu_indices(len(e), len(e), 1))]
    if not torch.isfinite(cos).all():
        nan = float("nan")
        return EmbeddingSpread(len(e), nan, nan, nan, nan)
    return EmbeddingSpread(len(e), float(cos.min()), float(np.median(cos.numpy())),
                           float(cos.max()), float(cos.std()))


def randomized_copy(model: nn.Module, seed: int = 0, top: int | None = None, *,
                    check: bool = True) -> nn.Module:
    """A copy of ``model`` with its learned tensors re-drawn at random (the sanity-check model).

    Every learned tensor of the re-drawn layers (parameters and learned buffers) gets new
    random values, drawn as the module doc says (He-normal weights with the gain of the next
    non-linearity, small biases and shifts, scales around 1, PReLU slopes in [0, 0.5]); fixed
    input-normalisation constants are kept. This is Adebayo et al.'s "re-initialise"
    randomisation, not a shuffle of the trained weights.

    Args:
        model: a face model (``embed``, ``input_size`` and ``learned_tensors()``, as every
            :class:`xfr_lib.models.FaceModel` has); left unchanged.
        seed: seed of the new values (a non-negative integer). Drawn with generators seeded by
            ``(seed, layer name)``, inside ``torch.random.fork_rng``: the global torch random
            state is not touched, and the same seed gives the same copy.
        top: cascading randomisation: re-draw only the last ``top`` layers of
            :func:`randomization_layers` (the layers nearest the output); None re-draws all.
        check: embed :data:`PROBE_IMAGES` :func:`probe_inputs` with the copy and raise if the
            embeddings are (near) constant.

    Returns:
        The randomised copy, in eval mode, on the model's device.

    Raises:
        XfrError: a bad ``seed`` or ``top``, a layer of a kind this function cannot re-draw,
            or (``check``) a copy whose embeddings do not depend on the input.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise XfrError(f"seed={seed!r} must be a non-negative integer")
    clone = copy.deepcopy(model).eval()
    layers = _layers(clone)
    if top is not None:
        if not isinstance(top, (int, np.integer)) or isinstance(top, bool) \
                or not 1 <= top <= len(layers):
            raise XfrError(f"top={top!r} must be a number of layers from 1 to {len(layers)} "
                           f"(or None for all)")
        layers = layers[-int(top):]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for layer in layers:
            gen = torch.Generator().manual_seed(_layer_seed(int(seed), layer.name))
            for local, value in _draw(layer, gen).items():
                getattr(layer.module, local).copy_(value)
    if check:
        spread = embedding_spread(clone)
        if spread.constant:
            label = getattr(model, "name", type(model).__name__)
            raise XfrError(
                f"randomized_copy({label!r}, seed={seed}, top={top}): the embeddings of the "
                f"randomised model do not depend on the input ({spread}; all above "
                f"{CONSTANT_COSINE} or not finite)"
            )
    return clone


# ---------------------------------------------------------------------------------------------


def _learned(model: nn.Module) -> dict[str, torch.Tensor]:
    get = getattr(model, "learned_tensors", None)
    if not callable(get):
        raise XfrError(f"{type(model).__name__} does not declare its learned tensors (no "
                       f"learned_tensors(); see xfr_lib.models.FaceModel)")
    return dict(get())


def _layer_seed(seed: int, name: str) -> int:
    """A 63-bit seed from the user's seed and the layer's name."""
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(2)
    return (int(state[0]) << 31) ^ int(state[1])


def _layers(model: nn.Module) -> list[_Layer]:
    """The modules owning learned tensors in forward order, with the gain for their weights."""
    owned: dict[str, list[str]] = {}
    for full in _learned(model):
        owner, _, local = full.rpartition(".")
        owned.setdefault(owner, []).append(local)
    if not owned:
        raise XfrError(f"{type(model).__name__} has no learned tensor; nothing to randomise")
    modules = dict(model.named_modules())
    calls = _forward_calls(model)
    first: dict[str, int] = {}
    for i, name in enumerate(calls):
        first.setdefault(name, i)
    unused = [name for name in owned if name not in first]
    if unused:
        raise XfrError(f"{type(model).__name__}: layers {unused} own learned tensors but are not "
                       f"called in a forward pass; cannot order them for randomisation")
    names = sorted(owned, key=first.__getitem__)
    weighted = [n for n in names if isinstance(modules[n], _WEIGHTED)]
    layers = []
    for name in names:
        layer = _Layer(name, modules[name], owned[name])
        if isinstance(layer.module, _WEIGHTED):
            layer.gain = _gain_after(calls, first[name], modules, last=name == weighted[-1])
        layers.append(layer)
    return layers


# Call orders by model structure (class, module names and types): the order of the calls does
# not depend on the values of the weights, so one forward pass serves every copy of a model.
_CALLS: dict[tuple, list[str]] = {}


def _forward_calls(model: nn.Module) -> list[str]:
    """Names of the modules called (each call, in order) when one probe image is embedded."""
    key = (type(model), tuple((n, type(m)) for n, m in model.named_modules()))
    if key not in _CALLS:
        _CALLS[key] = _trace(model)
    return list(_CALLS[key])


def _trace(model: nn.Module) -> list[str]:
    calls: list[str] = []
    handles = [m.register_forward_pre_hook(lambda *_, name=name: calls.append(name))
               for name, m in model.named_modules()]
    try:
        device = next(iter(_learned(model).values())).device
        with torch.no_grad():
            model.embed(probe_inputs(model.input_size, 1).to(device))
    finally:
        for h in handles:
            h.remove()
    return calls


def _gain_after(calls: list[str], start: int, modules: dict[str, nn.Module], last: bool) -> float:
    """Gain of the first activation module called after ``calls[start]``, before the next
    conv / linear layer: PReLU, LeakyReLU, ReLU; otherwise ReLU's (1 for the last layer)."""
    for name in calls[start + 1:]:
        m = modules[name]
        if isinstance(m, _WEIGHTED):
            break
        if isinstance(m, nn.PReLU):
            return _PRELU_GAIN
        if isinstance(m, nn.LeakyReLU):
            return nn.init.calculate_gain("leaky_relu", m.negative_slope)
        if isinstance(m, nn.ReLU):
            return _RELU_GAIN
    return 1.0 if last else _RELU_GAIN


def _draw(layer: _Layer, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """New values (float32, CPU) for every learned tensor of ``layer``, in a fixed order."""
    m = layer.module
    current = {local: getattr(m, local) for local in layer.tensors}
    # local name -> ("normal", mean, std) or ("uniform", low, high)
    if isinstance(m, _WEIGHTED):
        rules = {"bias": ("normal", 0.0, BIAS_STD)}
        if "weight" in current:
            fan_in = math.prod(current["weight"].shape[1:])
            rules = {"weight": ("normal", 0.0, layer.gain / math.sqrt(fan_in)), **rules}
    elif isinstance(m, nn.PReLU):
        rules = {"weight": ("uniform", *PRELU_SLOPES)}
    elif isinstance(getattr(m, "affine_tensors", None), tuple):
        scale, shift = m.affine_tensors
        rules = {scale: ("normal", 1.0, AFFINE_SCALE_STD), shift: ("normal", 0.0, BIAS_STD)}
    else:
        raise XfrError(f"randomized_copy cannot re-draw layer {layer.name!r} "
                       f"({type(m).__name__}, learned {sorted(current)}): it knows convolutions, "
                       f"linear layers, PReLU and modules declaring affine_tensors")
    unknown = sorted(set(current) - set(rules))
    if unknown:
        raise XfrError(f"randomized_copy does not know how to re-draw {unknown} of layer "
                       f"{layer.name!r} ({type(m).__name__})")
    out = {}
    for local, (kind, a, b) in rules.items():
        if local in current:
            value = torch.empty(current[local].shape, dtype=torch.float32)
            out[local] = (value.normal_(a, b, generator=gen) if kind == "normal"
                          else value.uniform_(a, b, generator=gen))
    return out
