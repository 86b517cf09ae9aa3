"""Deterministic occluders for the occlusion explainers (xFace, Mery's family, MinPlus).

Unlike the random masks of :mod:`~xfr_lib.explainers._masks`, these are fixed grids: square
patches at a stride (xFace) and Gaussian windows centred on a grid (Mery's family). Masks keep
the convention of ``_masks``: 1 shows the image, 0 shows the fill, so
:func:`~xfr_lib.explainers._masks.masked_scores` runs them.

Example:
    >>> w = gaussian_windows(40, 40, stride=10, sigma=5.0)  # centres at 4.5, 14.5, ...
    >>> w.shape, round(float(w[0, 4, 4]), 2)
    ((16, 40, 40), 0.99)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from xfr_lib.explainers._masks import MaskSet, fill_image

#: Sizes in the papers are given at the 112 px chips of ArcFace-style models.
REFERENCE_SIZE = 112


def scaled(px: float, height: int, width: int) -> int:
    """A length of ``px`` pixels at 112 px, scaled to a ``height x width`` input (at least 1)."""
    return max(1, round(px * min(height, width) / REFERENCE_SIZE))


def grid_centres(length: int, stride: float) -> np.ndarray:
    """``ceil(length / stride)`` centres ``stride`` apart, centred on the axis (pixel units)."""
    n = max(1, math.ceil(length / stride - 1e-9))  # length / (length / n) is n, not n + eps
    return (length - 1) / 2.0 + (np.arange(n) - (n - 1) / 2.0) * stride


def gaussian_windows(height: int, width: int, stride: float, sigma: float) -> np.ndarray:
    """``[K, H, W]`` float32 Gaussian windows ``exp(-d^2 / (2 sigma^2))`` (peak 1) centred on a
    grid of spacing ``stride``; K = rows x columns, row-major."""
    ys, xs = grid_centres(height, stride), grid_centres(width, stride)
    gy = np.exp(-((np.arange(height)[None] - ys[:, None]) ** 2) / (2 * sigma**2))
    gx = np.exp(-((np.arange(width)[None] - xs[:, None]) ** 2) / (2 * sigma**2))
    w = gy[:, None, :, None] * gx[None, :, None, :]
    return w.reshape(-1, height, width).astype(np.float32)


def paint(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """``[R, H, W]`` maps: each pixel's window-weighted mean of the ``[R, K]`` region values,
    ``sum_k v_k w_k / sum_k w_k`` (so a constant value paints a constant map)."""
    k = windows.shape[0]
    w = windows.reshape(k, -1).astype(np.float64)
    total = w.sum(0)
    maps = np.atleast_2d(values).astype(np.float64) @ w
    # Far from every centre the windows underflow to 0: nothing was measured there.
    maps = np.where(total > 1e-12, maps / np.maximum(total, 1e-12), 0.0)
    return maps.reshape(-1, *windows.shape[1:])


def patch_corners(length: int, size: int, stride: int) -> np.ndarray:
    """Top-left corners of ``size`` patches ``stride`` apart, inside the axis, the last one
    flush with the far border so that every pixel is covered."""
    last = max(length - size, 0)
    corners = list(range(0, last + 1, stride))
    if corners[-1] != last:
        corners.append(last)
    return np.asarray(corners)


@dataclass(frozen=True)
class SquarePatches(MaskSet):
    """Occlusion masks: all ones with one square patch of zeros each.

    Args:
        height: mask height.
        width: mask width.
        tops: ``[N]`` top rows of the patches.
        lefts: ``[N]`` left columns.
        sizes: ``[N]`` patch sides (patches lie inside the image).
    """

    height: int
    width: int
    tops: np.ndarray
    lefts: np.ndarray
    sizes: np.ndarray

    @property
    def n(self) -> int:  # type: ignore[override]
        return len(self.tops)

    def batch(self, start: int, stop: int, device: str | torch.device = "cpu") -> torch.Tensor:
        masks = np.ones((stop - start, self.height, self.width), dtype=np.float32)
        for mask, t, l, s in zip(masks, self.tops[start:stop].tolist(),
                                 self.lefts[start:stop].tolist(),
                                 self.sizes[start:stop].tolist(), strict=True):
            mask[t : t + s, l : l + s] = 0.0
        return torch.from_numpy(masks).to(device)


def patch_grid(height: int, width: int, sizes: tuple[int, ...], stride: int) -> SquarePatches:
    """Every square patch of every side in ``sizes`` on a grid of ``stride`` (xFace)."""
    tops, lefts, sides = [], [], []
    for s in sizes:
        t, l = np.meshgrid(patch_corners(height, s, stride), patch_corners(width, s, stride),
                           indexing="ij")
        tops.append(t.ravel())
        lefts.append(l.ravel())
        sides.append(np.full(t.size, s))
    return SquarePatches(height, width, np.concatenate(tops), np.concatenate(lefts),
                         np.concatenate(sides))


@dataclass(frozen=True)
class StackMasks(MaskSet):
    """A mask set held as one ``[N, H, W]`` tensor (small, computed masks: greedy steps)."""

    masks: torch.Tensor

    @property
    def n(self) -> int:  # type: ignore[override]
        return int(self.masks.shape[0])

    @property
    def height(self) -> int:  # type: ignore[override]
        return int(self.masks.shape[1])

    @property
    def width(self) -> int:  # type: ignore[override]
        return int(self.masks.shape[2])

    def batch(self, start: int, stop: int, device: str | torch.device = "cpu") -> torch.Tensor:
        return self.masks[start:stop].to(device)


def neutral_image(image: torch.Tensor, fill: str | float, *, seed: int = 0,
                  sigma: float = 4.0) -> torch.Tensor:
    """The image a fully hidden chip shows: :func:`fill_image`, with "zero" as black."""
    f = fill_image(image, fill, seed=seed, sigma=sigma)
    return torch.zeros_like(image) if f is None else f


def gaussian_blur_kernel(ksize: int) -> np.ndarray:
    """A normalised 1-D Gaussian of odd length ``ksize`` with OpenCV's default sigma for that
    size, ``0.3 * ((ksize - 1) / 2 - 1) + 0.8`` (what ``cv2.GaussianBlur(.., (k, k), 0)`` uses)."""
    sigma = 0.3 * ((ksize - 1) / 2 - 1) + 0.8
    x = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()
