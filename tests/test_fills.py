"""Fills of Deletion/Insertion: exact values, ROAD's imputation against known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from xfr_lib.data import asset_dir
from xfr_lib.errors import XfrError
from xfr_lib.evaluate._fills import (
    EVALUATION_FILLS,
    ROAD_NOISE,
    blur_sigma_for,
    check_evaluation_fill,
    fill_removed,
)
from xfr_lib.faces import aligned_chip


def _chip(h=24, w=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h=24, w=20, p=0.4, seed=1):
    return np.random.default_rng(seed).random((h, w)) < p


def _blob_masks(h, w, ps, seed=0):
    """Top-p masks of a smooth random map: blobby holes like a saliency map's."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.random((h, w)), (0, 0), h / 15).ravel()
    order = np.argsort(-smooth, kind="stable")
    out = []
    for p in ps:
        m = np.zeros(h * w, bool)
        m[order[: round(p * h * w)]] = True
        out.append(m.reshape(h, w))
    return out


def _road_reference(chip, removed):
    """ROAD's system written pixel by pixel (independent of the module) and solved directly."""
    h, w = removed.shape
    where = np.argwhere(removed)
    index = -np.ones((h, w), int)
    index[removed] = np.arange(len(where))
    a = sp.lil_matrix((len(where), len(where)))
    b = np.zeros((len(where), 3))
    for i, (y, x) in enumerate(where):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                    continue
                weight = 1 / 6 if dy == 0 or dx == 0 else 1 / 12
                a[i, i] += weight
                if removed[yy, xx]:
                    a[i, index[yy, xx]] -= weight
                else:
                    b[i] += weight * chip[yy, xx]
    out = chip.astype(float)
    out[removed] = spsolve(a.tocsc(), b)
    return out


@pytest.fixture(scope="module")
def face():
    chip = aligned_chip(asset_dir("wild") / "obama" / "obama_1.jpg", "dlib_chip", (150, 150))
    assert chip["error"] is None
    return chip["chip"]


@pytest.mark.parametrize("fill", EVALUATION_FILLS)
def test_kept_pixels_are_untouched(fill):
    chip, removed = _chip(), _mask()
    out = fill_removed(chip, removed, fill, seed=3)
    assert out.shape == chip.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~removed], chip[~removed])
    assert (out[removed] != chip[removed]).any()  # and the removed ones did change


def test_constant_fills_have_exact_values():
    chip, removed = _chip(), _mask()
    assert (fill_removed(chip, removed, "zero")[removed] == 0).all()
    assert (fill_removed(chip, removed, "grey")[removed] == 128).all()
    chip = np.zeros((4, 4, 3), np.uint8)
    chip[0, 0] = (255, 10, 7)  # means 15.94, 0.625, 0.4375 -> 16, 1, 0
    out = fill_removed(chip, np.ones((4, 4), bool), "mean")
    assert (out.reshape(-1, 3) == (16, 1, 0)).all()
    # the mean is over the whole unmodified chip, not only the kept pixels
    removed = np.zeros((4, 4), bool)
    removed[2:, 2:] = True
    np.testing.assert_array_equal(fill_removed(chip, removed, "mean")[3, 3], (16, 1, 0))


def test_blur_is_opencv_gaussian_on_removed_pixels(face):
    removed = _blob_masks(150, 150, [0.5])[0]
    assert blur_sigma_for(224) == 5.0 and blur_sigma_for(112) == 2.5
    for sigma in (None, 1.5):
        s = blur_sigma_for(150) if sigma is None else sigma
        expected = cv2.GaussianBlur(face, (0, 0), sigmaX=s, sigmaY=s)
        out = fill_removed(face, removed, "blur", blur_sigma=sigma)
        np.testing.assert_array_equal(out[removed], expected[removed])
        np.testing.assert_array_equal(out[~removed], face[~removed])


def _ramp(h, w, slopes):
    y, x = np.mgrid[0:h, 0:w].astype(float)
    return np.stack([ax * x + ay * y + c for ax, ay, c in slopes], axis=-1)


def test_road_reproduces_a_linear_ramp_inside_a_hole():
    ramp = _ramp(40, 48, [(2, 3, 10), (-1, -2, 200), (1.5, 0.5, 30)])
    chip = ramp.astype(np.uint8)
    y, x = np.mgrid[0:40, 0:48]
    removed = ((y - 20) ** 2 + (x - 22) ** 2 < 12**2) | ((y > 5) & (y < 12) & (x > 30) & (x < 44))
    out = fill_removed(chip, removed, "road", noise=0.0)
    assert np.abs(out[removed].astype(int) - ramp[removed]).max() <= 1
    assert (out[removed] == chip[removed]).mean() > 0.95  # exact, but for rounding


def test_road_reproduces_a_ramp_over_a_large_hole():
    # Everything but a one-pixel frame: many multigrid levels, 148 x 148 unknowns.
    ramp = _ramp(150, 150, [(0.8, 0.6, 10), (-0.5, 1.0, 100), (0.2, -0.7, 200)])
    chip = np.round(ramp).astype(np.uint8)
    removed = np.zeros((150, 150), bool)
    removed[1:-1, 1:-1] = True
    out = fill_removed(chip, removed, "road", noise=0.0)
    assert np.abs(out[removed].astype(float) - ramp[removed]).max() <= 1.0


def test_road_obeys_the_maximum_principle():
    # Values inside the hole come only from its boundary: never outside the boundary's range,
    # whatever the pixels farther away hold.
    rng = np.random.default_rng(5)
    chip = rng.choice(np.array([0, 255], np.uint8), (60, 60, 3))
    removed = _blob_masks(60, 60, [0.3], seed=2)[0] & (np.arange(60)[:, None] > 2)
    boundary = cv2.dilate(removed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    boundary &= ~removed
    chip[boundary] = rng.integers(60, 181, (int(boundary.sum()), 3))
    out = fill_removed(chip, removed, "road", noise=0.0)
    for c in range(3):
        lo, hi = chip[boundary, c].min(), chip[boundary, c].max()
        assert lo <= out[removed, c].min() and out[removed, c].max() <= hi


def test_road_solves_the_system_at_the_border_too(face):
    # Masks that touch the image border and corners, against a direct solve of ROAD's system.
    small = _chip(30, 26, seed=7)
    for chip, removed in [(small, _mask(30, 26, 0.6, seed=8)),
                          (small, _blob_masks(30, 26, [0.7], seed=3)[0]),
                          (face, _blob_masks(150, 150, [0.5], seed=4)[0])]:
        assert removed[0].any() or removed[-1].any() or removed[:, 0].any()
        expected = _road_reference(chip, removed)
        out = fill_removed(chip, removed, "road", noise=0.0)
        assert np.abs(out.astype(float) - expected).max() <= 0.6  # rounding only


def test_road_with_a_single_kept_pixel_is_that_colour():
    chip = _chip(150, 150, seed=2)
    removed = np.ones((150, 150), bool)
    removed[40, 100] = False
    out = fill_removed(chip, removed, "road", noise=0.0)
    assert (out.reshape(-1, 3) == chip[40, 100]).all()


def test_road_noise_is_seeded_and_has_the_requested_std():
    chip = np.full((80, 80, 3), 128, np.uint8)
    removed = _blob_masks(80, 80, [0.5])[0]
    a = fill_removed(chip, removed, "road", seed=1, noise=6.0)
    np.testing.assert_array_equal(a, fill_removed(chip, removed, "road", seed=1, noise=6.0))
    b = fill_removed(chip, removed, "road", seed=2, noise=6.0)
    assert (a[removed] != b[removed]).mean() > 0.5
    residual = a[removed].astype(float) - 128  # the noiseless fill of a flat chip is 128
    assert residual.std() == pytest.approx(6.0, rel=0.05)  # rounding adds only 1/12 variance
    assert abs(residual.mean()) < 0.2
    np.testing.assert_array_equal(a[~removed], chip[~removed])
    default = fill_removed(chip, removed, "road", seed=1)[removed].astype(float) - 128
    assert default.std() == pytest.approx(np.hypot(ROAD_NOISE, 12**-0.5), rel=0.05)
    assert ROAD_NOISE == pytest.approx(2.55)


@pytest.mark.parametrize("fill", EVALUATION_FILLS)
def test_a_stack_equals_the_masks_one_at_a_time(fill):
    chip = _chip(40, 36, seed=4)
    stack = np.stack(_blob_masks(40, 36, [0.1, 0.5, 0.9], seed=6) + [_mask(40, 36, 0.3)])
    out = fill_removed(chip, stack, fill, seed=9)
    assert out.shape == (4, 40, 36, 3) and out.dtype == np.uint8
    for k, removed in enumerate(stack):
        np.testing.assert_array_equal(out[k], fill_removed(chip, removed, fill, seed=9))


def test_everything_removed_falls_back_to_the_mean_colour():
    chip = _chip(50, 50, seed=3)
    removed = np.ones((50, 50), bool)
    mean = chip.reshape(-1, 3).mean(axis=0)
    out = fill_removed(chip, removed, "road", noise=0.0)
    assert (out.reshape(-1, 3) == np.round(mean)).all()
    noisy = fill_removed(chip, removed, "road", noise=5.0).reshape(-1, 3).astype(float)
    np.testing.assert_allclose(noisy.mean(axis=0), mean, atol=0.5)
    np.testing.assert_allclose(noisy.std(axis=0), 5.0, rtol=0.1)


def test_nothing_removed_returns_the_chip():
    chip = _chip()
    for fill in EVALUATION_FILLS:
        np.testing.assert_array_equal(fill_removed(chip, np.zeros((24, 20), bool), fill), chip)


def _one_line_error(call, *words):
    with pytest.raises(XfrError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    return message


def test_bad_input_gives_one_line_errors():
    chip, removed = _chip(), _mask()
    _one_line_error(lambda: check_evaluation_fill("blurry"), "'blurry'", *EVALUATION_FILLS)
    _one_line_error(lambda: fill_removed(chip, removed, "black"), "'black'", *EVALUATION_FILLS)
    assert check_evaluation_fill("road") == "road"
    for bad in (chip[..., 0], np.concatenate([chip, chip[..., :1]], axis=2),
                chip.astype(np.float32)):
        _one_line_error(lambda b=bad: fill_removed(b, removed, "zero"), "HxWx3 uint8")
    _one_line_error(lambda: fill_removed(chip, removed[:-1], "zero"), "bool", "24x20")
    _one_line_error(lambda: fill_removed(chip, removed.astype(np.uint8), "road"), "bool")
    _one_line_error(lambda: fill_removed(chip, removed[None, None], "zero"), "SxHxW")
    _one_line_error(lambda: fill_removed(chip, removed, "road", noise=-1.0), "noise")
    _one_line_error(lambda: fill_removed(chip, removed, "blur", blur_sigma=0.0), "blur_sigma")


def test_real_face_deletion_steps(face):
    # The steps of one deletion curve on a real chip: kept pixels untouched, and ROAD's
    # hole edges far smoother than a black fill's (the shape of the hole is hard to read).
    masks = np.stack(_blob_masks(150, 150, [0.1, 0.5, 0.9], seed=1))
    road = fill_removed(face, masks, "road", seed=0)
    zero = fill_removed(face, masks, "zero")
    edges = cv2.dilate(masks[1].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edges &= ~cv2.erode(masks[1].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

    def jump(img):
        g = img.astype(float).mean(axis=2)
        return (np.abs(np.diff(g, axis=0))[edges[1:]].mean()
                + np.abs(np.diff(g, axis=1))[edges[:, 1:]].mean())

    for k in range(3):
        np.testing.assert_array_equal(road[k][~masks[k]], face[~masks[k]])
    assert jump(road[1]) < 0.25 * jump(zero[1])
