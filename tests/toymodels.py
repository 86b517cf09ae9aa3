"""Small models with known answers, shared by the explainer tests.

:class:`ConvQuadrantModel` is a real :class:`~xfr_lib.models.FaceModel` (convolutions, CAM
layers, gradients) whose embedding depends only on the top-left quadrant of the chip (plus a
one-pixel halo from its 3x3 receptive fields): a faithful similarity map of any method, white
or black box, must put most of its mass there. :func:`quadrant_pair` gives two chips that are
alike in that quadrant, so the pair's score is high and there is similarity to find.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from xfr_lib.models import FaceModel


class ConvQuadrantModel(FaceModel):
    """conv 3x3 -> ReLU -> conv 3x3 stride 2 -> ReLU -> keep the top-left quadrant -> linear.

    Layers for CAM methods: ``conv_48x48`` (``conv1``) and ``conv_24x24`` (``conv2``).
    """

    name = "conv_quadrant"
    input_size = (48, 48)
    embedding_dim = 32
    threshold = 0.5
    alignment = "dlib_5"
    cam_layers: ClassVar[dict[str, str]] = {"conv_48x48": "conv1", "conv_24x24": "conv2"}
    cam_default = "conv_24x24"  # the last spatial map, as for the real models

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16 * 12 * 12, self.embedding_dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / max(p[0].numel(), 1)) ** 0.5)
        self.act1, self.act2 = nn.ReLU(), nn.ReLU()
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.conv2(self.act1(self.conv1(x - 0.5))))
        return self.head(h[:, :, :12, :12].flatten(1))


def quadrant_pair(seed: int = 1, noise: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``[3, 48, 48]`` chips: B is A plus uniform noise of amplitude ``noise``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(3, 48, 48, generator=g)
    b = (a + noise * (torch.rand(3, 48, 48, generator=g) - 0.5)).clamp(0, 1)
    return a, b


def quadrant_share(m: np.ndarray) -> float:
    """Share of a non-negative map's mass in the top-left quadrant (chance: 0.25)."""
    q = m.shape[0] // 2
    total = float(m.sum())
    return float(m[:q, :q].sum()) / total if total > 0 else float("nan")
