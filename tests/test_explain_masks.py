"""Mask generators of the perturbation explainers: reproducible, batch-independent, right law."""

import numpy as np
import pytest
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers import (
    PatchMasks,
    RiseMasks,
    apply_masks,
    default_patch_size,
    fill_image,
)


def test_default_patch_size_scales_with_input():
    assert default_patch_size(112, 112) == 30
    assert default_patch_size(150, 150) == 40
    assert PatchMasks(n=2, height=150, width=150).patch_size == 40


def test_patch_masks_are_a_function_of_their_parameters():
    a = PatchMasks(n=40, height=24, width=20, n_patches=3, patch_size=6, seed=5).all()
    b = PatchMasks(n=40, height=24, width=20, n_patches=3, patch_size=6, seed=5).all()
    c = PatchMasks(n=40, height=24, width=20, n_patches=3, patch_size=6, seed=6).all()
    assert a.shape == (40, 24, 20) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_patch_masks_do_not_depend_on_batch_size():
    masks = PatchMasks(n=37, height=16, width=16, n_patches=4, patch_size=5, seed=1)
    whole = masks.all()
    for bs in (1, 5, 64):
        parts = [m for _, m in masks.batches(bs)]
        assert torch.equal(torch.cat(parts), whole)


def test_patch_masks_match_a_pixel_by_pixel_construction():
    masks = PatchMasks(n=6, height=14, width=11, n_patches=4, patch_size=5, low=0.2, high=0.7,
                       seed=3)
    got = masks.all().numpy()
    for k in range(masks.n):
        want = np.ones((14, 11), np.float32)
        for j in range(masks.n_patches):
            top, left, v = masks._tops[k, j], masks._lefts[k, j], masks._values[k, j]
            for i in range(14):
                for c in range(11):
                    if top <= i < top + 5 and left <= c < left + 5:
                        want[i, c] = v  # later patches paint over earlier ones
        np.testing.assert_array_equal(got[k], want)
    hidden = got[got < 1]
    assert hidden.min() >= 0.2 and hidden.max() <= 0.7


def test_every_pixel_is_covered_equally_often():
    # Patches may be clipped by the border, so corners are covered as often as the centre.
    masks = PatchMasks(n=4000, height=20, width=20, n_patches=1, patch_size=6, seed=0).all()
    covered = (masks < 1).float().mean(0)
    expected = 6 * 6 / (25 * 25)
    assert abs(float(covered[0, 0]) - expected) < 0.03
    assert abs(float(covered[10, 10]) - expected) < 0.03


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"patch_size": 0}, {"low": 0.5, "high": 0.2},
                                    {"high": 1.5}, {"n_patches": -1}])
def test_patch_masks_reject_bad_parameters(kwargs):
    params = {"n": 4, "height": 8, "width": 8} | kwargs
    with pytest.raises(XfrError):
        PatchMasks(**params)


def test_rise_masks_shape_range_and_density():
    masks = RiseMasks(n=300, height=30, width=26, s=5, p=0.3, seed=2)
    m = masks.all()
    assert m.shape == (300, 30, 26)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert abs(float(m.mean()) - 0.3) < 0.05
    assert torch.equal(torch.cat([b for _, b in masks.batches(7)]), m)
    assert not torch.equal(RiseMasks(n=300, height=30, width=26, s=5, p=0.3, seed=3).all(), m)
    # Smooth: neighbouring pixels differ far less than pixels a cell apart.
    near = (m[:, :, 1:] - m[:, :, :-1]).abs().mean()
    far = (m[:, :, 6:] - m[:, :, :-6]).abs().mean()
    assert near < 0.5 * far


def test_fills_and_masking():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 8, 8, generator=g)
    masks = torch.zeros(2, 8, 8)
    masks[1] = 1.0
    assert torch.equal(apply_masks(x, masks)[0], torch.zeros(3, 8, 8))
    assert torch.equal(apply_masks(x, masks)[1], x)
    mean = fill_image(x, "mean")
    out = apply_masks(x, masks, mean)
    assert torch.allclose(out[0], x.mean(dim=(1, 2), keepdim=True).expand(3, 8, 8))
    assert torch.allclose(out[1], x)
    noise_a, noise_b = fill_image(x, "noise", seed=1), fill_image(x, "noise", seed=1)
    assert torch.equal(noise_a, noise_b) and not torch.equal(noise_a, fill_image(x, "noise"))
    blur = fill_image(x, "blur", sigma=2.0)
    assert blur.std() < x.std()
    assert fill_image(x, "zero") is None
    assert torch.all(fill_image(x, 0.5) == 0.5)
