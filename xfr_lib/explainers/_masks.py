"""Random mask sets for perturbation explainers (CorrRISE, RISE), generated batch by batch.

A mask is an ``[H, W]`` float map in [0, 1]: 1 keeps a pixel, 0 replaces it by the fill
(black for the papers' multiplicative masking). A mask set is fully determined by its
parameters and ``seed``: every random number is drawn up front (a few per mask) from a
``numpy.random.Generator`` (PCG64, stable across numpy versions), and :meth:`MaskSet.batch`
builds any slice of masks from them (no per-pixel Python loop). So the masks do not depend on
the batch size used to run a model, and ``N`` masks never need to exist in memory at once.

With ``nested=True`` the masks are drawn in blocks of :data:`NESTED_BLOCK`, block ``i`` from
its own generator seeded ``(seed, i)``, so mask ``k`` depends on ``seed`` and ``k`` only, not
on ``N``: the first ``k`` masks of every set are the same. A run that stops early (the
explainers' ``converge``) then used exactly the first masks of any longer run. The default
(``nested=False``) keeps the one-generator masks, unchanged.

Example:
    >>> masks = PatchMasks(n=50, height=112, width=112, seed=0)
    >>> masks.batch(0, 8).shape
    torch.Size([8, 112, 112])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from xfr_lib.errors import XfrError
from xfr_lib.models import model_device

#: CorrRISE's patch side at its reference input size (30 px at 112x112, Lu et al. 2023).
REFERENCE_PATCH = 30
REFERENCE_SIZE = 112


#: Where :class:`PatchMasks` may put a patch: across the border, or wholly inside the image.
PLACEMENTS = ("clipped", "inside")

#: Masks per generator of a ``nested`` mask set.
NESTED_BLOCK = 64


def default_patch_size(height: int, width: int) -> int:
    """CorrRISE's patch side scaled to an input size: 30 px at 112 px (40 px at 150 px)."""
    return max(1, round(REFERENCE_PATCH * min(height, width) / REFERENCE_SIZE))


class MaskSet:
    """A reproducible set of ``n`` masks of size ``height x width``; subclasses build batches."""

    n: int
    height: int
    width: int

    def __len__(self) -> int:
        return self.n

    def batch(self, start: int, stop: int, device: str | torch.device = "cpu") -> torch.Tensor:
        """Masks ``start .. stop-1`` as a float32 tensor ``[stop-start, H, W]``."""
        raise NotImplementedError

    def batches(
        self, batch_size: int, device: str | torch.device = "cpu", split_every: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start, masks)`` for consecutive batches covering all masks; with
        ``split_every``, no batch crosses a multiple of it (so checkpoints at those mask counts
        fall between batches whatever ``batch_size`` is)."""
        for start, stop in batch_bounds(self.n, batch_size, split_every):
            yield start, self.batch(start, stop, device)

    def all(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """Every mask at once, ``[n, H, W]`` (``4 * n * H * W`` bytes: mind large ``n``)."""
        return self.batch(0, self.n, device)


def batch_bounds(n: int, batch_size: int, split_every: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive batches of at most ``batch_size`` covering ``range(n)``,
    cut at every multiple of ``split_every`` too (when given)."""
    cuts = set(range(0, n, batch_size)) | {n}
    if split_every:
        cuts |= set(range(0, n, split_every))
    return list(pairwise(sorted(cuts)))


def _draw(seed: int, n: int, nested: bool, draw) -> list[np.ndarray]:
    """``draw(rng, count)`` (a list of arrays with ``count`` rows) for ``n`` masks: from one
    generator, or (``nested``) block by block from generators seeded ``(seed, block)``."""
    if not nested:
        return draw(np.random.default_rng(seed), n)
    blocks = [draw(np.random.default_rng([seed, i]), NESTED_BLOCK)
              for i in range(math.ceil(n / NESTED_BLOCK))]
    return [np.concatenate(parts)[:n] for parts in zip(*blocks, strict=True)]


@dataclass(frozen=True)
class PatchMasks(MaskSet):
    """CorrRISE masks: all ones with ``n_patches`` square patches of random value and place.

    Each patch is a ``patch_size`` square whose value is drawn uniformly from ``[low, high]``.
    Where patches overlap, the later one is painted over the earlier one. The papers do not say
    whether a patch may cross the image border, so both readings are offered:

    - ``placement="clipped"`` (default): top-left corners uniform in ``[1 - patch_size, H - 1]``,
      so patches may be clipped by the border. Every pixel has the same chance of being
      covered, but a patch keeps on average only ``(H / (H + patch_size - 1))^2`` of its area
      in the image (63 % for 40 px patches on 150 px chips), so each mask hides less.
    - ``placement="inside"``: corners uniform in ``[0, H - patch_size]``, every patch whole.
      Each mask hides more of the face, but border pixels are covered far less often than
      central ones (a corner pixel by one corner position in ``(H - patch_size + 1)^2``), and
      their correlation rests on a handful of masks.

    Args:
        n: number of masks N (paper: 500).
        height: mask height (the model's input height).
        width: mask width.
        n_patches: patches per mask (paper: 10).
        patch_size: patch side in pixels; ``None`` scales 30 px at 112 px to this size.
        low: lower bound of a patch's value.
        high: upper bound of a patch's value.
        seed: seed of the random generator; the masks are a function of all these arguments.
        placement: ``"clipped"`` (patches may cross the border) or ``"inside"`` (see above).
        nested: draw the masks block by block so that mask ``k`` does not depend on ``n``
            (see the module doc); other masks than the default's for the same seed.
    """

    n: int
    height: int
    width: int
    n_patches: int = 10
    patch_size: int | None = None
    low: float = 0.0
    high: float = 1.0
    seed: int = 0
    placement: str = "clipped"
    nested: bool = False
    _tops: np.ndarray = field(init=False, repr=False, compare=False)
    _lefts: np.ndarray = field(init=False, repr=False, compare=False)
    _values: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.patch_size is None:
            object.__setattr__(self, "patch_size", default_patch_size(self.height, self.width))
        _check_positive(n=self.n, height=self.height, width=self.width, patch_size=self.patch_size)
        if self.n_patches < 0:
            raise XfrError(f"n_patches={self.n_patches} is negative; use 0 or more patches")
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise XfrError(
                f"patch values [low={self.low}, high={self.high}] must satisfy "
                "0 <= low <= high <= 1"
            )
        if self.placement not in PLACEMENTS:
            raise XfrError(f"placement={self.placement!r} is unknown; use one of "
                           f"{', '.join(PLACEMENTS)}")
        p = self.patch_size
        if self.placement == "clipped":
            low, top_h, top_w = 1 - p, self.height, self.width
        else:  # corners that keep the whole patch inside (a patch larger than the image fills it)
            low, top_h, top_w = 0, max(self.height - p, 0) + 1, max(self.width - p, 0) + 1

        def draw(rng: np.random.Generator, count: int) -> list[np.ndarray]:
            k = (count, self.n_patches)
            return [rng.integers(low, top_h, size=k), rng.integers(low, top_w, size=k),
                    rng.uniform(self.low, self.high, size=k).astype(np.float32)]

        tops, lefts, values = _draw(self.seed, self.n, self.nested, draw)
        object.__setattr__(self, "_tops", tops)
        object.__setattr__(self, "_lefts", lefts)
        object.__setattr__(self, "_values", values)

    def batch(self, start: int, stop: int, device: str | torch.device = "cpu") -> torch.Tensor:
        p = self.patch_size
        tops, lefts = self._tops[start:stop], self._lefts[start:stop]
        # Clip the patches to the image once, then paint each with one slice write: the work
        # is N * n_patches small writes, about 10x faster here than a vectorised torch.where
        # over all pixels per patch index (which touches every pixel n_patches times).
        t0 = np.maximum(tops, 0).tolist()
        t1 = np.minimum(tops + p, self.height).tolist()
        l0 = np.maximum(lefts, 0).tolist()
        l1 = np.minimum(lefts + p, self.width).tolist()
        values = self._values[start:stop].tolist()
        masks = np.ones((stop - start, self.height, self.width), dtype=np.float32)
        for i, mask in enumerate(masks):
            for j in range(self.n_patches):
                mask[t0[i][j] : t1[i][j], l0[i][j] : l1[i][j]] = values[i][j]
        return torch.from_numpy(masks).to(device)


@dataclass(frozen=True)
class RiseMasks(MaskSet):
    """RISE masks (Petsiuk et al. 2018): smooth random masks from coarse binary grids.

    Each mask is an ``s x s`` grid of cells, each cell 1 with probability ``p``, upsampled
    bilinearly to ``(s + 1) * cell`` pixels (``cell = ceil(H / s)``) and cropped to ``H x W``
    at a random shift in ``[0, cell)`` along each axis, so that the grid's edges fall anywhere.

    Args:
        n: number of masks.
        height: mask height.
        width: mask width.
        s: grid cells per side (Petsiuk et al.: 7 or 8).
        p: probability that a cell is kept (1).
        seed: seed of the random generator.
        nested: draw the masks block by block so that mask ``k`` does not depend on ``n``
            (see the module doc); other masks than the default's for the same seed.
    """

    n: int
    height: int
    width: int
    s: int = 8
    p: float = 0.5
    seed: int = 0
    nested: bool = False
    _grids: np.ndarray = field(init=False, repr=False, compare=False)
    _shifts: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_positive(n=self.n, height=self.height, width=self.width, s=self.s)
        if not 0.0 < self.p <= 1.0:
            raise XfrError(f"RISE keep probability p={self.p} must be in (0, 1]")
        cell_h, cell_w = self._cells()

        def draw(rng: np.random.Generator, count: int) -> list[np.ndarray]:
            grids = rng.random((count, self.s, self.s)) < self.p
            shifts = [rng.integers(0, cell_h, size=count), rng.integers(0, cell_w, size=count)]
            return [grids, np.stack(shifts, axis=1)]

        grids, shifts = _draw(self.seed, self.n, self.nested, draw)
        object.__setattr__(self, "_grids", grids)
        object.__setattr__(self, "_shifts", shifts)

    def _cells(self) -> tuple[int, int]:
        return math.ceil(self.height / self.s), math.ceil(self.width / self.s)

    def batch(self, start: int, stop: int, device: str | torch.device = "cpu") -> torch.Tensor:
        cell_h, cell_w = self._cells()
        up = ((self.s + 1) * cell_h, (self.s + 1) * cell_w)
        grids = torch.from_numpy(self._grids[start:stop]).to(device=device, dtype=torch.float32)
        big = F.interpolate(grids[:, None], size=up, mode="bilinear", align_corners=False)[:, 0]
        big = big.clamp_(0.0, 1.0)  # interpolation can overshoot 1 by a rounding error
        shifts = torch.from_numpy(self._shifts[start:stop]).to(device)
        # Crop each mask at its own shift with two gathers (rows, then columns).
        rows = (shifts[:, 0, None] + torch.arange(self.height, device=device))[:, :, None]
        big = torch.gather(big, 1, rows.expand(-1, -1, up[1]))
        cols = (shifts[:, 1, None] + torch.arange(self.width, device=device))[:, None, :]
        return torch.gather(big, 2, cols.expand(-1, self.height, -1)).contiguous()


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise XfrError(f"{name}={value} must be a positive integer")


# --------------------------------------------------------------------------------------------
# What a mask reveals, and the masked forward passes

#: Names accepted by ``fill`` (a float in [0, 1], a constant grey, is accepted too).
FILLS = ("zero", "grey", "mean", "blur", "noise")


def check_fill(fill: str | float) -> str | float:
    """Validate a ``fill`` parameter; return it (floats as float)."""
    if isinstance(fill, str):
        if fill not in FILLS:
            raise XfrError(
                f"fill={fill!r} is unknown; choose one of {', '.join(FILLS)} "
                "or a grey level in [0, 1]"
            )
        return fill
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.0 <= fill <= 1.0:
        raise XfrError(f"fill={fill!r}: use one of {', '.join(FILLS)} or a grey level in [0, 1]")
    return float(fill)


def fill_image(
    image: torch.Tensor, fill: str | float, *, seed: int = 0, sigma: float = 4.0
) -> torch.Tensor | None:
    """What a mask value of 0 shows instead of ``image`` (``[3, H, W]``); None for ``"zero"``.

    Args:
        image: the chip, ``[3, H, W]`` in [0, 1].
        fill: ``"zero"`` (black: the image multiplied by the mask, as the CorrRISE papers
            describe it), ``"grey"`` (0.5: what multiplying a *normalised* tensor, as RISE's
            reference code does, shows in a hidden pixel: the dataset mean, mid-grey),
            ``"mean"`` (the chip's mean colour), ``"blur"`` (the chip blurred with a Gaussian
            of ``sigma`` px: hides detail, keeps colour), ``"noise"`` (one uniform-noise image
            drawn from ``seed``), or a float: that constant grey.
        seed: seed of the noise image.
        sigma: blur radius for ``"blur"``.
    """
    if fill == "zero":
        return None
    if fill == "grey":
        return torch.full_like(image, 0.5)
    if fill == "mean":
        return image.mean(dim=(1, 2), keepdim=True).expand_as(image).clone()
    if fill == "blur":
        from scipy.ndimage import gaussian_filter

        arr = image.numpy().astype(np.float64)
        blurred = gaussian_filter(arr, (0, sigma, sigma), mode="nearest")
        return torch.from_numpy(blurred.astype(np.float32))
    if fill == "noise":
        rng = np.random.default_rng([int(seed), 1])  # a stream apart from the masks' own
        return torch.from_numpy(rng.random(tuple(image.shape), dtype=np.float32))
    return torch.full_like(image, float(fill))


def apply_masks(
    image: torch.Tensor, masks: torch.Tensor, fill: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, 3, H, W]`` perturbed chips: ``masks * image + (1 - masks) * fill``."""
    m = masks[:, None]
    if fill is None:
        return image[None] * m
    return fill[None] + m * (image - fill)[None]


@torch.no_grad()
def masked_scores(
    model,
    image: torch.Tensor,
    references: torch.Tensor,
    masks: MaskSet,
    *,
    batch_size: int = 32,
    fill: torch.Tensor | None = None,
    progress: bool = False,
    desc: str = "masks",
    split_every: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Run the model on masked copies of ``image``, batch by batch.

    Yields ``(masks, scores)`` per batch: the ``[b, H, W]`` masks (CPU) and the ``[R, b]``
    cosine similarities (float64, CPU) between each masked chip and each of the ``R`` rows
    of ``references`` (L2-normalised). Only the model's ``embed`` is called. Batches are also
    cut at multiples of ``split_every`` (see :meth:`MaskSet.batches`); a caller may stop
    iterating at any batch, and the remaining masks are never run.
    """
    from tqdm.auto import tqdm

    device = model_device(model)
    x = image.to(device)
    refs = references.to(device=device, dtype=torch.float32)
    f = None if fill is None else fill.to(device)
    n_batches = len(batch_bounds(len(masks), batch_size, split_every))
    for _, m in tqdm(masks.batches(batch_size, split_every=split_every), total=n_batches,
                     disable=not progress, desc=desc, leave=False):
        emb = model.embed(apply_masks(x, m.to(device), f)).float()
        emb = F.normalize(emb, dim=1)
        yield m, (refs @ emb.T).double().cpu()

