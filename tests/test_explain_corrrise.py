"""CorrRISE, RISE and the shared explainer interface, on models with known answers.

The synthetic models see only the top-left quadrant of the chip (a fixed random linear
projection of its pixels), so a faithful similarity map must put its mass there.
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from xfr_lib.errors import ImageError, UnknownNameError, XfrError
from xfr_lib.explainers import (
    Gallery,
    PatchMasks,
    PearsonAccumulator,
    RiseMasks,
    SimilarityTarget,
    explain,
    explain_identification,
    gaussian_regularize,
    get_explainer,
    list_methods,
    map_summary,
    method_info,
    pearson_map,
)


class QuadrantModel(torch.nn.Module):
    """Embedding = normalised random projection of the top-left quadrant's pixels."""

    name = "quadrant"
    threshold = 0.5

    def __init__(self, size=32, dim=48, seed=0):
        super().__init__()
        self.input_size = (size, size)
        self.q = size // 2
        g = torch.Generator().manual_seed(seed)
        self.proj = torch.nn.Parameter(torch.randn(3 * self.q * self.q, dim, generator=g),
                                       requires_grad=False)

    def embed(self, x):
        region = x[:, :, : self.q, : self.q].reshape(len(x), -1)
        return torch.nn.functional.normalize((region - 0.5) @ self.proj, dim=1)


class PlainQuadrant:
    """The same model as a plain object (no nn.Module, no parameters): black-box use only."""

    def __init__(self, size=32):
        self._m = QuadrantModel(size)
        self.input_size = self._m.input_size

    def embed(self, x):
        return self._m.embed(x)


def images(size=32, seed=1, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(3, size, size, generator=g)
    b = (a + noise * (torch.rand(3, size, size, generator=g) - 0.5)).clamp(0, 1)
    return a, b


def quadrant_share(m):
    q = m.shape[0] // 2
    return float(m[:q, :q].sum() / m.sum())


FAST = {"n": 200, "patch_size": 8}


@pytest.fixture(scope="module")
def model():
    return QuadrantModel()


@pytest.fixture(scope="module")
def pair_expl(model):
    a, b = images()
    return explain("corrrise", model, a, b, **FAST)


def test_methods_are_registered():
    assert {"corrrise", "rise"} <= set(list_methods())
    info = method_info("corrrise")
    assert info["black_box"] and info["defaults"]["n"] == 500 and info["summary"]
    with pytest.raises(UnknownNameError):
        method_info("gradcam++-typo")


def test_maps_have_the_input_shape_and_are_finite_non_negative(pair_expl, model):
    for name, m in pair_expl.maps.items():
        assert m.shape == model.input_size, name
        assert m.dtype == np.float32
        assert np.isfinite(m).all() and (m >= 0).all()
    assert pair_expl.chip_a.shape == (32, 32, 3) and pair_expl.chip_a.dtype == np.uint8


def test_similarity_concentrates_where_the_model_looks(pair_expl):
    # Chance is 0.25: outside the quadrant the score does not depend on the pixels at all.
    assert quadrant_share(pair_expl.similarity_a) > 0.7
    assert quadrant_share(pair_expl.similarity_b) > 0.7
    peak = map_summary(pair_expl.similarity_a)["peak"]
    assert peak[0] < 16 and peak[1] < 16


def test_score_decision_and_params_are_recorded(pair_expl, model):
    a, b = images()
    want = float((model.embed(a[None]) * model.embed(b[None])).sum())
    assert pair_expl.score == pytest.approx(want, abs=1e-6)
    assert pair_expl.decision == (want >= model.threshold)
    assert pair_expl.threshold == model.threshold and pair_expl.model == "quadrant"
    p = pair_expl.params
    assert p["n"] == 200 and p["seed"] == 0 and p["patch_size"] == 8 and p["n_patches"] == 10
    assert p["sigma"] == 2.0 and p["fill"] == "zero" and p["regularize"] is None
    d = pair_expl.to_dict()
    assert d["method"] == "corrrise" and set(d["maps"]) == {
        "similarity_a", "dissimilarity_a", "similarity_b", "dissimilarity_b"}


def test_default_patch_size_scales_with_model_input():
    ex = get_explainer("corrrise", QuadrantModel(size=150))
    assert ex.params["patch_size"] == 40 and ex.params["n"] == 500


def test_same_seed_same_maps_other_seed_other_maps(model, pair_expl):
    a, b = images()
    again = explain("corrrise", model, a, b, **FAST)
    other = explain("corrrise", model, a, b, seed=1, **FAST)
    for name in pair_expl.maps:
        np.testing.assert_array_equal(again.maps[name], pair_expl.maps[name])
    assert not np.allclose(other.similarity_a, pair_expl.similarity_a)
    # Batch size changes only how the work is split, not the masks.
    split = explain("corrrise", model, a, b, batch_size=7, **FAST)
    np.testing.assert_allclose(split.similarity_a, pair_expl.similarity_a, atol=1e-5)


def test_correlation_equals_brute_force_pearson():
    model = QuadrantModel(size=16, dim=16, seed=3)
    a, b = images(size=16, seed=4)
    expl = explain("corrrise", model, a, b, n=50, patch_size=4, n_patches=3, seed=7)
    masks = PatchMasks(n=50, height=16, width=16, n_patches=3, patch_size=4, seed=7).all()
    scores = expl.extras["scores_a"]
    # The recorded scores are those of A masked alone against unmasked B.
    emb_b = model.embed(b[None])
    direct = (model.embed(a[None] * masks[:, None]) * emb_b).sum(1).numpy()
    np.testing.assert_allclose(scores, direct, atol=1e-5)
    m = masks.numpy().astype(np.float64)
    want = np.zeros((16, 16))
    for i in range(16):
        for j in range(16):
            if m[:, i, j].std() > 0:
                want[i, j] = pearsonr(scores, m[:, i, j]).statistic
    np.testing.assert_allclose(expl.extras["correlation_a"], want, atol=1e-5)
    np.testing.assert_allclose(expl.similarity_a, np.maximum(want, 0), atol=1e-5)
    np.testing.assert_allclose(expl.dissimilarity_a, np.maximum(-want, 0), atol=1e-5)
    np.testing.assert_allclose(pearson_map(scores, m), want, atol=1e-10)



def test_spearman_variant_equals_brute_force_rank_correlation():
    from scipy.stats import spearmanr

    model = QuadrantModel(size=16, dim=16, seed=3)
    a, b = images(size=16, seed=4)
    params = {"n": 50, "patch_size": 4, "n_patches": 3, "seed": 7}
    expl = explain("corrrise", model, a, b, correlation="spearman", **params)
    assert expl.params["correlation"] == "spearman"
    masks = PatchMasks(n=50, height=16, width=16, n_patches=3, patch_size=4, seed=7).all()
    scores = expl.extras["scores_a"]
    m = masks.numpy().astype(np.float64)
    want = np.zeros((16, 16))
    for i in range(16):
        for j in range(16):
            if m[:, i, j].std() > 0:
                want[i, j] = spearmanr(scores, m[:, i, j]).statistic
    np.testing.assert_allclose(expl.extras["correlation_a"], want, atol=1e-5)
    # Same masks, same scores: only the correlation differs from the Pearson map.
    pearson = explain("corrrise", model, a, b, **params)
    np.testing.assert_array_equal(pearson.extras["scores_a"], scores)
    assert not np.allclose(pearson.extras["correlation_a"], want, atol=1e-3)


def test_inside_placement_keeps_whole_patches_and_is_recorded():
    clipped = PatchMasks(n=300, height=20, width=20, n_patches=1, patch_size=6, low=0.0,
                         high=0.0, seed=2).all()
    inside = PatchMasks(n=300, height=20, width=20, n_patches=1, patch_size=6, low=0.0,
                        high=0.0, seed=2, placement="inside").all()
    assert ((inside == 0).sum((1, 2)) == 36).all()  # every patch whole
    assert ((clipped == 0).sum((1, 2)) < 36).any()  # some clipped by the border
    # Corner pixels: covered by clipped patches as often as any; by inside ones rarely.
    assert (clipped[:, 0, 0] == 0).float().mean() > 2 * (inside[:, 0, 0] == 0).float().mean()
    model = QuadrantModel()
    a, b = images()
    expl = explain("corrrise", model, a, b, placement="inside", **FAST)
    assert expl.params["placement"] == "inside"
    assert quadrant_share(expl.similarity_a) > 0.6
    with pytest.raises(XfrError, match="placement='border' is unknown; use one of clipped"):
        explain("corrrise", model, a, b, placement="border", **FAST)
    with pytest.raises(XfrError, match="correlation='kendall' is unknown"):
        explain("corrrise", model, a, b, correlation="kendall", **FAST)

def test_streaming_pearson_equals_one_matrix_product_and_guards_constant_pixels():
    rng = np.random.default_rng(0)
    m = rng.random((64, 5, 6))
    m[:, 0, 0] = 1.0  # never masked: zero variance
    s = rng.random((3, 64))
    s[2] = 0.25  # a constant score series
    acc = PearsonAccumulator(3, 5, 6)
    for start in range(0, 64, 10):
        acc.update(torch.from_numpy(s[:, start:start + 10]), torch.from_numpy(m[start:start + 10]))
    got = acc.result()
    want = pearson_map(s, m)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert got[:, 0, 0].tolist() == [0.0, 0.0, 0.0] and not got[2].any()
    assert np.isfinite(got).all()


def test_gaussian_regularisation_removes_noise_keeps_strong_effects():
    rng = np.random.default_rng(0)
    n = 500
    noise = rng.normal(0, 1 / math.sqrt(n), (40, 40))  # what N masks give with no effect
    effect = noise.copy()
    effect[10:20, 10:20] -= 0.5
    reg_noise = gaussian_regularize(noise, n, sigma=2.0, z=2.0)
    reg_effect = gaussian_regularize(effect, n, sigma=2.0, z=2.0)
    assert np.abs(reg_noise).max() < 0.2 * np.abs(noise).max()
    assert reg_effect[12:18, 12:18].max() < -0.3
    assert np.array_equal(gaussian_regularize(noise, n, 0.0, 0.0), noise)


def test_regularisation_acts_on_the_signed_map(model, pair_expl):
    a, b = images()
    reg = explain("corrrise", model, a, b, regularize="gaussian", **FAST)
    # The same masks: the raw correlation is unchanged, and the maps are its regularised parts.
    np.testing.assert_array_equal(reg.extras["correlation_a"], pair_expl.extras["correlation_a"])
    p = reg.params
    signed = gaussian_regularize(reg.extras["correlation_a"], p["n"], p["sigma"], p["z"])
    np.testing.assert_allclose(reg.similarity_a, np.maximum(signed, 0), atol=1e-6)
    np.testing.assert_allclose(reg.dissimilarity_a, np.maximum(-signed, 0), atol=1e-6)
    # Outside the quadrant the model sees nothing: dissimilarity there is sampling noise.
    outside = np.ones((32, 32), bool)
    outside[:16, :16] = False
    assert reg.dissimilarity_a[outside].sum() < 0.2 * pair_expl.dissimilarity_a[outside].sum()
    # The similarity the model does have stays where it is.
    assert quadrant_share(reg.similarity_a) > 0.9
    assert reg.params["regularize"] == "gaussian" and reg.params["z"] == 2.0


def test_fill_is_recorded_and_changes_the_maps(model, pair_expl):
    a, b = images()
    noisy = explain("corrrise", model, a, b, fill="noise", **FAST)
    assert noisy.params["fill"] == "noise"
    assert not np.allclose(noisy.similarity_a, pair_expl.similarity_a)
    assert quadrant_share(noisy.similarity_a) > 0.6


def test_black_box_model_without_parameters_works(pair_expl):
    a, b = images()
    expl = explain("corrrise", PlainQuadrant(), a, b, **FAST)
    np.testing.assert_allclose(expl.similarity_a, pair_expl.similarity_a, atol=1e-6)
    assert expl.model == "PlainQuadrant" and expl.decision is None and math.isnan(expl.threshold)


def test_rise_maps_shape_and_known_answer(model):
    a, b = images()
    expl = explain("rise", model, a, b, n=300, s=4)
    for m in expl.maps.values():
        assert m.shape == (32, 32) and np.isfinite(m).all() and (m >= 0).all()
    # Plain RISE saliency is Petsiuk's estimator, sum_k s_k M_k / (N p).
    masks = RiseMasks(n=300, height=32, width=32, s=4, p=0.5, seed=0).all().numpy()
    s = expl.extras["scores_a"]
    want = np.tensordot(s, masks, axes=1) / (300 * 0.5)
    np.testing.assert_allclose(expl.extras["saliency_a"], want, rtol=1e-5, atol=1e-6)
    # The plain signed map is that saliency: the scores are positive, so it has no negative part.
    np.testing.assert_allclose(expl.similarity_a, np.maximum(want, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expl.dissimilarity_a, np.maximum(-want, 0), atol=1e-6)
    # Debiased: the deviation from each pixel's mask-density baseline, split by sign.
    base = s.mean() * masks.sum(0) / (300 * 0.5)
    debiased = explain("rise", model, a, b, n=300, s=4, debias=True)
    np.testing.assert_allclose(debiased.similarity_a, np.maximum(want - base, 0), atol=1e-5)
    np.testing.assert_allclose(debiased.dissimilarity_a, np.maximum(base - want, 0), atol=1e-5)
    assert quadrant_share(debiased.similarity_a) > 0.5
    again = explain("rise", model, a, b, n=300, s=4)
    np.testing.assert_array_equal(again.similarity_b, expl.similarity_b)


def test_unknown_method_and_parameter_errors(model):
    a, b = images()
    with pytest.raises(UnknownNameError, match="corrrise") as err:
        explain("nope", model, a, b)
    assert err.value.kind == "method"
    with pytest.raises(UnknownNameError) as err:
        explain("corrrise", model, a, b, nn=5)
    msg = str(err.value)
    assert "nn" in msg and "n_patches" in msg and "seed" in msg and "\n" not in msg
    for bad in ({"n": 2}, {"fill": "purple"}, {"regularize": "l1"}, {"low": 0.8, "high": 0.1},
                {"batch_size": 0}, {"n": 1.5}):
        with pytest.raises(XfrError):
            get_explainer("corrrise", model, **bad)
    with pytest.raises(XfrError):
        get_explainer("rise", model, p=0.0)


def test_bad_images_are_user_errors(model):
    a, _ = images()
    with pytest.raises(ImageError, match="32"):
        explain("corrrise", model, torch.rand(3, 20, 20), a, n=10)
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        explain("corrrise", model, a * 255, a, n=10)
    # A plain black-box model cannot align photos: only arrays of its input size pass.
    with pytest.raises(ImageError, match="align"):
        explain("corrrise", PlainQuadrant(), np.zeros((40, 50, 3), np.uint8), a, n=10)
    chip = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ok = explain("corrrise", PlainQuadrant(), chip, a, n=10, patch_size=8)
    assert ok.similarity_a.shape == (32, 32)


def test_identification_ranks_the_copy_first_and_reuses_pair_maps(model):
    gal = [images(seed=s)[0] for s in range(10, 16)]
    probe = gal[3].clone()
    expl = explain_identification("corrrise", model, probe, gal, k=3, **FAST)
    assert [m.rank for m in expl.matches] == [1, 2, 3]
    assert expl.matches[0].index == 3 and expl.matches[0].identity == "#3"
    assert expl.matches[0].score == pytest.approx(1.0, abs=1e-5)
    scores = [m.score for m in expl.matches]
    assert scores == sorted(scores, reverse=True)
    assert expl.gallery_size == 6 and len(expl.ranking) == 6 and expl.ranking[0] == 3
    second = expl.matches[1]
    pair = explain("corrrise", model, probe, gal[second.index], **FAST)
    np.testing.assert_allclose(second.similarity_probe, pair.similarity_a, atol=1e-5)
    np.testing.assert_allclose(second.similarity_gallery, pair.similarity_b, atol=1e-5)
    np.testing.assert_allclose(second.dissimilarity_probe, pair.dissimilarity_a, atol=1e-5)
    for m in expl.matches:
        assert all(v.shape == (32, 32) and (v >= 0).all() for v in m.maps.values())
    d = expl.to_dict()
    assert d["task"] == "identification" and len(d["matches"]) == 3


def test_identification_with_precomputed_embeddings_and_identities(model):
    gal = [images(seed=s)[0] for s in range(20, 25)]
    emb = model.embed(torch.stack(gal)).detach().numpy()
    names = ["ann", "bob", "cid", "dan", "eve"]
    g = Gallery(gal, names, embeddings=emb)
    expl = explain_identification("rise", model, gal[4], g, k=10, n=50)
    assert expl.k == 5 and len(expl.matches) == 5
    assert expl.matches[0].identity == "eve"
    pairs = explain_identification("rise", model, gal[1], list(zip(names, gal, strict=True)), k=1,
                                   n=50)
    assert pairs.matches[0].identity == "bob"
    with pytest.raises(XfrError):
        Gallery(gal, names[:2])
    with pytest.raises(XfrError):
        explain_identification("rise", model, gal[0], gal, k=0)


def test_similarity_target_is_the_pair_cosine_and_differentiable():
    g = torch.Generator().manual_seed(0)
    ref, emb = torch.randn(16, generator=g), torch.randn(4, 16, generator=g, requires_grad=True)
    want = torch.nn.functional.cosine_similarity(emb, ref[None], dim=1)
    got = SimilarityTarget(ref)(emb)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(SimilarityTarget(ref, sign=-1)(emb), -want)
    got.sum().backward()
    # One gradient step raises every row's cosine with the reference.
    step = (emb + 0.1 * emb.grad).detach()
    assert (SimilarityTarget(ref)(step) > want.detach()).all()
