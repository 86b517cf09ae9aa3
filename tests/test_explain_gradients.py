"""The gradient methods: Grad-CAM, Grad-CAM++, input-gradient saliency and FGGB.

Known answers on toy models (the convolutional quadrant model, whose embedding sees only the
top-left 25x25 pixels of its 48x48 chip; a patch-linear model whose layer gradient has a closed
form), and the real models on real photos.
"""

import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

import xfr_lib
from xfr_lib.data import load_dataset
from xfr_lib.errors import UnknownNameError, XfrError
from xfr_lib.explainers import METHODS, count_forward_images, explain, explain_identification
from xfr_lib.explainers._gradients import (
    default_layer,
    pair_scores,
    resolve_layer,
    score_function,
    usable_layers,
)

# The package does not import the gradient methods yet: these imports register them.
from xfr_lib.explainers.fggb import FGGB, embedding_jacobian, gaussian_blur
from xfr_lib.explainers.gradcam import GradCAM
from xfr_lib.explainers.gradcampp import GradCAMPlusPlus
from xfr_lib.explainers.saliency import Saliency
from xfr_lib.models import FaceModel

sys.path.insert(0, str(Path(__file__).parent))
from toymodels import ConvQuadrantModel, quadrant_pair, quadrant_share

NAMES = ["gradcam", "gradcam++", "saliency", "fggb"]
CLASSES = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "saliency": Saliency,
           "fggb": FGGB}
# The quadrant model's embedding depends on input rows and columns 0..24 only: conv2's
# top-left 12x12 cells (stride 2, 3x3) read conv1 rows 0..23, which read input rows 0..24.
FIELD = 25


class PatchLinearModel(FaceModel):
    """``A = conv 4x4 / stride 4`` (no bias; cell (i, j) sees exactly pixels ``4i..4i+3``,
    ``4j..4j+3``), then ``f = W vec(A)``: linear, so the gradient of the cosine with respect
    to A has a closed form, ``W^T (r - cos * f / |f|) / |f|`` (f, r unit vectors)."""

    name = "patch_linear"
    input_size = (48, 48)
    embedding_dim = 8
    threshold = 0.3
    alignment = "dlib_5"
    cam_layers: ClassVar[dict[str, str]] = {"patch_12x12": "patch"}

    def __init__(self, channels: int = 4, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.patch = nn.Conv2d(3, channels, 4, stride=4, bias=False)
        self.head = nn.Linear(channels * 144, self.embedding_dim, bias=False)
        with torch.no_grad():
            # Non-negative patch weights on [0, 1] pixels: A >= 0, like a post-ReLU layer.
            self.patch.weight.copy_(torch.rand(self.patch.weight.shape, generator=g) / 12)
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=g) / 24)
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.patch(x).flatten(1))


def closed_form(model: PatchLinearModel, x: torch.Tensor, ref: torch.Tensor):
    """``(A [C, 12, 12], dcos/dA)`` of one chip, by hand in float64 numpy."""
    wc = model.patch.weight.double().numpy()
    wh = model.head.weight.double().numpy()
    c = wc.shape[0]
    patches = x.double().numpy().reshape(3, 12, 4, 12, 4)
    act = np.einsum("cdkl,dikjl->cij", wc, patches)
    f = wh @ act.reshape(-1)
    r = ref.double().numpy() / np.linalg.norm(ref.double().numpy())
    norm = np.linalg.norm(f)
    cos = float(f @ r) / norm
    grad_f = (r - cos * f / norm) / norm
    return act, (wh.T @ grad_f).reshape(c, 12, 12)


def gradcampp_by_hand(act: np.ndarray, grad: np.ndarray) -> np.ndarray:
    g2, g3 = grad**2, grad**3
    denom = 2 * g2 + act.sum(axis=(1, 2), keepdims=True) * g3
    alpha = np.where(denom != 0, g2 / np.where(denom != 0, denom, 1.0), 0.0)
    weights = (alpha * np.maximum(grad, 0)).sum(axis=(1, 2))
    return np.einsum("c,cij->ij", weights, act)


@pytest.fixture(scope="module")
def quad():
    return ConvQuadrantModel()


@pytest.fixture(scope="module")
def linear():
    return PatchLinearModel()


# --- parameters, layers and errors -----------------------------------------------------------

def test_methods_are_registered_as_gradient_methods():
    for name in NAMES:
        cls = METHODS.get(name)
        assert cls is CLASSES[name] and not cls.black_box and cls.summary
    assert GradCAM.defaults == {"layer": None, "batch_size": 32}
    assert FGGB.defaults == {"threshold": None, "blur_sigma": None, "chunk_size": 16}


def test_layers_default_and_resolution(quad):
    assert usable_layers(quad) == quad.cam_layers
    assert default_layer(quad) == "conv_24x24"
    assert resolve_layer(quad, None) == "conv_24x24"
    assert resolve_layer(quad, "conv1") == "conv1"  # a dotted module path is accepted

    class Plain(nn.Module):  # a torch model without cam_layers: its Conv2d modules
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))

    assert usable_layers(Plain()) == {"stem.0": "stem.0", "stem.2": "stem.2"}
    assert default_layer(Plain()) == "stem.2"
    assert usable_layers(object()) == {}


def test_a_dotted_path_gives_the_same_maps_as_its_label(quad):
    a, b = quadrant_pair()
    ref = quad.embed(b[None])
    by_label = GradCAM(quad, layer="conv_48x48").signed_maps(a, ref).signed
    by_path = GradCAM(quad, layer="conv1").signed_maps(a, ref).signed
    np.testing.assert_array_equal(by_label, by_path)


def test_bad_parameters_are_one_line_errors_naming_the_parameter(quad):
    cases = [(GradCAM, {"batch_size": 0}, "batch_size"), (GradCAM, {"layer": 3}, "layer"),
             (GradCAMPlusPlus, {"layer": "conv9"}, "conv9"),
             (Saliency, {"batch_size": 1.5}, "batch_size"),
             (FGGB, {"blur_sigma": -1}, "blur_sigma"), (FGGB, {"threshold": 2}, "threshold"),
             (FGGB, {"chunk_size": 0}, "chunk_size"), (FGGB, {"seed": 0}, "seed")]
    for cls, params, word in cases:
        with pytest.raises(XfrError) as err:
            cls(quad, **params)
        assert word in str(err.value) and "\n" not in str(err.value), (cls, params)


def test_a_black_box_object_is_refused_with_a_pointer_to_black_box_methods():
    class BlackBox:
        input_size = (48, 48)
        threshold = 0.5

        def embed(self, x):
            return F.normalize(x.flatten(1)[:, :8], dim=1)

    for cls in CLASSES.values():
        with pytest.raises(XfrError, match="not a torch nn.Module.*black-box method"):
            cls(BlackBox())


def test_a_layer_without_a_spatial_map_is_refused(linear):
    a = torch.rand(3, 48, 48)
    with pytest.raises(XfrError, match=r"layer 'head' .* gives \[1, 8\], not a \[B, C, h, w\]"):
        GradCAMPlusPlus(linear, layer="head").signed_maps(a, linear.embed(a[None]))


# --- (a) the quadrant model: where the embedding looks ---------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_input_gradient_methods_find_the_quadrant(quad, seed):
    """Saliency and FGGB differentiate the embedding with respect to the pixels: outside the
    25x25 pixels the embedding reads, their unblurred maps are exactly 0 (the known answer),
    so the quadrant (24x24) holds all but the one-pixel halo's share (bar 0.9; measured
    0.95-0.97). FGGB's default blur (sigma 2.1 px at 48 px) spreads some mass across the
    border (bar 0.85; measured 0.93)."""
    a, b = quadrant_pair(seed=seed)
    ref = quad.embed(b[None])
    for cls, params in [(Saliency, {}), (Saliency, {"times_input": True}),
                        (FGGB, {"blur_sigma": 0})]:
        signed = cls(quad, **params).signed_maps(a, ref).signed[0]
        assert not signed[FIELD:].any() and not signed[:, FIELD:].any(), (cls, params)
        sim = np.maximum(signed, 0)
        assert sim.sum() > 0 and quadrant_share(sim) >= 0.9, (cls, params)
    sim = np.maximum(FGGB(quad).signed_maps(a, ref).signed[0], 0)
    assert quadrant_share(sim) >= 0.85


@pytest.mark.parametrize("seed", [1, 2])
def test_grad_cam_cannot_localise_on_the_quadrant_model(quad, seed):
    """Grad-CAM and Grad-CAM++ weigh whole activation maps by one number per channel: where
    the score's gradient is 0 (outside the quadrant) the map is still ``sum_c w_c A_c``. On
    this model the activations are alike everywhere (random pixels), so their maps are spread
    at chance (0.25; measured 0.23-0.29 for |map|, at both layers): the known limit of
    channel-weighted CAMs, not a bug. The bar says "not most mass in the quadrant"."""
    a, b = quadrant_pair(seed=seed)
    ref = quad.embed(b[None])
    for cls in (GradCAM, GradCAMPlusPlus):
        for layer in quad.cam_layers:
            signed = cls(quad, layer=layer).signed_maps(a, ref).signed[0]
            assert np.abs(signed[FIELD + 2:, FIELD + 2:]).sum() > 0, (cls, layer)
            assert quadrant_share(np.abs(signed)) < 0.5, (cls, layer)


# --- (b) Grad-CAM: closed form, negation, upsampling ------------------------------------------

def test_grad_cam_matches_the_closed_form(linear):
    g = torch.Generator().manual_seed(3)
    x, ref = torch.rand(3, 48, 48, generator=g), torch.randn(8, generator=g)
    act, grad = closed_form(linear, x, ref)
    expected = np.einsum("c,cij->ij", grad.mean(axis=(1, 2)), act)
    maps = GradCAM(linear).signed_maps(x, F.normalize(ref, dim=0)[None])
    cam = maps.extras[0]["cam"]
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    up = F.interpolate(torch.from_numpy(cam)[None, None], size=(48, 48), mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(maps.signed[0], up, rtol=1e-6, atol=1e-9)


def test_grad_cam_dissimilarity_is_grad_cam_of_the_negated_score(quad):
    """Grad-CAM is linear in the gradient: Captum's Grad-CAM of ``-s`` is ``-L``, so the
    dissimilarity map is the ReLU of its upsampled map."""
    a, b = quadrant_pair(seed=4)
    ref = quad.embed(b[None])
    signed = GradCAM(quad).signed_maps(a, ref).signed[0]
    neg = LayerGradCam(score_function(quad, ref, sign=-1.0), quad.conv2).attribute(
        a[None].clone().requires_grad_(True), relu_attributions=False).detach()
    neg = F.interpolate(neg, size=(48, 48), mode="bilinear", align_corners=False)[0, 0]
    assert (neg > 0).any() and (neg < 0).any()
    np.testing.assert_allclose(np.maximum(-signed, 0), np.maximum(neg.numpy(), 0), rtol=1e-5,
                               atol=1e-6 * float(neg.abs().max()))


def test_upsampling_puts_a_cell_on_its_pixels(linear):
    """Only cell (3, 8) of the 12x12 layer is nonzero (the chip is black elsewhere): the
    upsampled map must peak on that cell's pixels, rows 12..15 and columns 32..35, and be
    centred on them (13.5, 33.5)."""
    x = torch.zeros(3, 48, 48)
    x[:, 12:16, 32:36] = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(5)) + 0.1
    ref = torch.randn(1, 8, generator=torch.Generator().manual_seed(6))
    maps = GradCAM(linear).signed_maps(x, F.normalize(ref, dim=1))
    cam = maps.extras[0]["cam"]
    assert np.count_nonzero(cam) == 1 and cam[3, 8] != 0
    m = np.abs(maps.signed[0])
    row, col = np.unravel_index(np.argmax(m), m.shape)
    assert 12 <= row <= 15 and 32 <= col <= 35
    ys, xs = np.mgrid[:48, :48]
    centre = ((m * ys).sum() / m.sum(), (m * xs).sum() / m.sum())
    np.testing.assert_allclose(centre, (13.5, 33.5), atol=1e-4)


# --- (c) Grad-CAM++ ---------------------------------------------------------------------------

def test_grad_cam_plus_plus_matches_the_closed_form(linear):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(3, 48, 48, generator=g)
    # References of slightly changed chips (a matching pair): the gradient is small, which
    # keeps Grad-CAM++'s denominators 2 + g * sum(A) away from 0.
    refs = linear.embed((x + 0.1 * torch.rand(2, 3, 48, 48, generator=g)).clamp(0, 1))
    maps = GradCAMPlusPlus(linear).signed_maps(x, refs)  # R = 2 in one pass
    for r in range(2):
        act, grad = closed_form(linear, x, refs[r])
        # The closed form is well conditioned here (no denominator near 0).
        assert np.abs(2 + act.sum(axis=(1, 2), keepdims=True) * grad).min() > 0.1
        pos, neg = gradcampp_by_hand(act, grad), gradcampp_by_hand(act, -grad)
        ex = maps.extras[r]
        for got, want in ((ex["cam_similarity"], pos), (ex["cam_dissimilarity"], neg)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
        assert not np.allclose(pos, -neg)  # not linear in the gradient, unlike Grad-CAM
        net = torch.from_numpy(np.maximum(pos, 0) - np.maximum(neg, 0)).float()
        up = F.interpolate(net[None, None], size=(48, 48), mode="bilinear",
                           align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(maps.signed[r], up, rtol=1e-3,
                                   atol=1e-4 * np.abs(up).max())


# --- (d) FGGB ---------------------------------------------------------------------------------

def test_fggb_jacobian_equals_autograd_per_coordinate(quad):
    a, _ = quadrant_pair(seed=8)
    x = a.clone().requires_grad_(True)
    emb = quad.embed(x[None])[0]
    loop = torch.stack([torch.autograd.grad(emb[k], x, retain_graph=True)[0]
                        for k in range(len(emb))])
    for chunk in (5, 32):  # 5 does not divide 32: the last chunk is short
        jac, e = embedding_jacobian(quad, a, chunk_size=chunk)
        torch.testing.assert_close(e, emb.detach())
        torch.testing.assert_close(jac, loop, rtol=1e-5, atol=1e-7)


def test_fggb_map_is_the_weighted_sum_of_normalised_gradient_maps(quad):
    a, b = quadrant_pair(seed=9)
    c = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(10))
    refs = quad.embed(torch.stack([b, c]))
    x = a.clone().requires_grad_(True)
    emb = quad.embed(x[None])[0]
    jac = torch.stack([torch.autograd.grad(emb[k], x, retain_graph=True)[0]
                       for k in range(len(emb))]).double().numpy()
    g = np.abs(jac).mean(axis=1)
    g /= np.linalg.norm(g.reshape(len(g), -1), axis=1)[:, None, None]
    fa = emb.detach().double().numpy()
    for theta in (None, 0.2):
        maps = FGGB(quad, threshold=theta, blur_sigma=0).signed_maps(a, refs)
        t = quad.threshold if theta is None else theta
        for r in range(2):
            w = fa * refs[r].double().numpy() - t / len(fa)
            np.testing.assert_allclose(maps.extras[r]["weights"], w, rtol=1e-5, atol=1e-7)
            expected = np.einsum("k,kij->ij", w, g)
            np.testing.assert_allclose(maps.signed[r], expected, rtol=1e-4,
                                       atol=1e-5 * np.abs(expected).max())


def test_costs_one_forward_image_per_reference_and_fggb_one_per_image(quad):
    """Grad-CAM, Grad-CAM++ and saliency: the chip once per reference, one backward pass each;
    FGGB: the chip once whatever R, and D backward passes (vector-Jacobian products)."""
    a, b = quadrant_pair(seed=11)
    refs = quad.embed(torch.stack([a, b, 1 - b])).detach()
    for cls, images, backward in ((GradCAM, 3, 1), (GradCAMPlusPlus, 3, 1), (Saliency, 3, 1),
                                  (FGGB, 1, quad.embedding_dim)):
        explainer = cls(quad)
        with count_forward_images(quad) as n:
            maps = explainer.signed_maps(a, refs)
        assert n[0] == images, cls
        assert [e["backward_passes"] for e in maps.extras] == [backward] * 3, cls


def test_fggb_blur_is_the_25_px_sigma_5_kernel_at_112_px():
    for size, width in ((112, 25), (150, 33)):
        delta = np.zeros((1, size, size))
        delta[0, size // 2, size // 2] = 1.0
        sigma = 5.0 * size / 112
        kernel = gaussian_blur(delta, sigma)[0]
        cols = np.flatnonzero(kernel[size // 2] > 0)
        assert len(cols) == width and cols[0] == size // 2 - width // 2
        assert kernel.sum() == pytest.approx(1.0)
    assert FGGB(PatchLinearModel()).params["blur_sigma"] == pytest.approx(5.0 * 48 / 112)


def test_pair_scores_are_the_similarity_target_per_row():
    emb = F.normalize(torch.randn(3, 8), dim=1)
    refs = F.normalize(torch.randn(3, 8), dim=1)
    torch.testing.assert_close(pair_scores(emb, refs), (emb * refs).sum(1))
    torch.testing.assert_close(pair_scores(emb, refs, sign=-1), -(emb * refs).sum(1))


# --- (e) real models on real photos -----------------------------------------------------------

@pytest.fixture(scope="module")
def photos():
    wild = load_dataset("wild")
    first = {}
    for im in wild:
        first.setdefault(im.identity, []).append(im.path)
    macron = first["Emmanuel Macron"]
    return macron[0], macron[1], first["Barack Obama"][0], first["Jacinda Ardern"][0]


@pytest.fixture(scope="module", params=["dlib_resnet29", "sface"])
def real(request, photos):
    model = xfr_lib.load_model(request.param)
    chips = torch.stack([model.align(p) for p in photos])
    return model, chips, model.embed(chips).detach()


def test_real_models_unknown_layer_lists_the_usable_ones(real):
    model = real[0]
    for cls in (GradCAM, GradCAMPlusPlus):
        with pytest.raises(UnknownNameError) as err:
            cls(model, layer="block_99x99")
        msg = str(err.value)
        assert "\n" not in msg and all(label in msg for label in model.cam_layers)
    assert default_layer(model) == model.cam_default == list(model.cam_layers)[-1]


@pytest.mark.slow
def test_real_models_maps_and_identification_rows(real):
    """Every method on a real matching pair: finite maps of the input shape; against R = 3
    references at once (identification), row r equals the single-reference result."""
    model, chips, emb = real
    refs = emb[1:]  # Macron 2, Obama, Ardern (not the probe itself: at cos = 1 the gradient
    # is 0 and the maps are rounding noise)
    for name in NAMES:
        expl = CLASSES[name](model)
        many = expl.signed_maps(chips[0], refs)
        assert many.signed.shape == (3, *model.input_size)
        assert np.isfinite(many.signed).all() and np.abs(many.signed).max() > 0, name
        # FGGB's Jacobian costs ~1 s (dlib) to ~5 s (SFace) per call: one row on dlib only
        # (its rows are checked against the formula on the toy model).
        rows = range(3) if name != "fggb" else [1] if model.name == "dlib_resnet29" else []
        for r in rows:
            one = expl.signed_maps(chips[0], refs[r:r + 1]).signed[0]
            # Equal up to float rounding (a batch of 3 and of 1 convolve in different orders).
            np.testing.assert_allclose(many.signed[r], one, rtol=1e-4,
                                       atol=1e-5 * np.abs(one).max(), err_msg=f"{name} row {r}")


@pytest.mark.slow
def test_real_verification_and_identification_through_the_api(real):
    model, chips, _ = real
    expl = explain("gradcam", model, chips[0], chips[1])
    assert expl.decision and expl.params["layer"] == model.cam_default
    assert expl.extras["backward_passes_a"] == expl.extras["backward_passes_b"] == 1
    for m in expl.maps.values():
        assert m.shape == model.input_size and np.isfinite(m).all()
    ident = explain_identification("gradcam++", model, chips[0],
                                   [("macron", chips[1]), ("obama", chips[2])], k=2)
    top = ident.matches[0]
    assert top.identity == "macron"
    pair = explain("gradcam++", model, chips[0], chips[1])
    # Up to float rounding: explain embeds A and B in one batch, identification one by one.
    for got, want in ((top.similarity_probe, pair.similarity_a),
                      (top.dissimilarity_gallery, pair.dissimilarity_b),
                      (top.similarity_gallery, pair.similarity_b)):
        np.testing.assert_allclose(got, want, rtol=1e-4,
                                   atol=1e-4 * max(want.max(), got.max()) + 1e-12)
