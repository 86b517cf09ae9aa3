"""Every method on every model, on a matching and a non-matching pair: the hook's signed maps,
checked before any clean-up; the contract of the maps users get (shape, finite,
non-negative); the same maps under the same seed; the recorded parameters reproduce the
result; and failures are never hidden."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers import explain, get_explainer, list_methods, method_info
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import list_models, load_model

# Small, fast settings per method: every pixel still covered by some perturbation.
FAST = {
    "corrrise": {"n": 24},
    "rise": {"n": 24},
    "lime": {"n_samples": 40, "n_segments": 16},
    "xface": {"stride": 24},
    "single_removal": {"stride": 30},
    "single_aggregation": {"stride": 30},
    "greedy_removal": {"grid": 3},
    "greedy_aggregation": {"grid": 3},
    "mery_average": {"stride": 30, "grid": 3},
    "minplus": {"stride": 30, "grid": 3},
    "gradcam": {},
    "gradcam++": {},
    "saliency": {},
    "fggb": {},
}
# Pairs of the wild photos: (identity of A, of B); the same photo is never used twice.
PAIRS = {"matching": ("Emmanuel Macron", "Emmanuel Macron"),
         "non-matching": ("Jacinda Ardern", "Rishi Sunak")}


def _params(method: str, seed: int = 0) -> dict:
    """FAST settings, plus the seed for the methods that draw at random."""
    extra = {"seed": seed} if "seed" in method_info(method)["defaults"] else {}
    return {**FAST[method], **extra}


@pytest.fixture(scope="module", params=list_models())
def model(request):
    return load_model(request.param)


@pytest.fixture(scope="module")
def chips(model):
    from xfr_lib.data import load_dataset
    from xfr_lib.evaluate import embed_dataset

    wild = load_dataset("wild")
    people = {who for pair in PAIRS.values() for who in pair}
    subset = wild.subset([i for i, im in enumerate(wild) if im.identity in people])
    emb = embed_dataset(model, subset, progress=False)
    assert emb.ok.all()
    tensors = chip_to_tensor(emb.chips)
    out = {}
    for kind, (who_a, who_b) in PAIRS.items():
        ia = emb.identities.index(who_a)
        ib = next(i for i, w in enumerate(emb.identities) if w == who_b and i != ia)
        out[kind] = (tensors[ia], tensors[ib])
    return out


def test_every_method_has_fast_settings_a_summary_and_says_if_it_needs_gradients():
    assert set(FAST) == set(list_methods())
    for name in list_methods():
        info = method_info(name)
        assert info["summary"] and isinstance(info["black_box"], bool)
        assert set(FAST[name]) <= set(info["defaults"])


@pytest.mark.parametrize("method", list_methods())
def test_signed_maps_of_the_hook_have_the_input_shape_and_are_finite(method, model, chips):
    explainer = get_explainer(method, model, **_params(method))
    a, b = chips["matching"]
    refs = explainer.embed(torch.stack([b, chips["non-matching"][1]]))
    maps = explainer.signed_maps(a, refs)  # the raw hook output, before any clean-up
    assert maps.signed.shape == (len(refs), *model.input_size)
    assert np.isfinite(maps.signed).all()
    assert len(maps.extras) == len(refs)
    assert (maps.signed > 0).any()  # a photo of the same person: something makes it similar


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("method", list_methods())
def test_maps_are_reproducible_from_the_recorded_parameters(method, kind, model, chips):
    a, b = chips[kind]
    expl = explain(method, model, a, b, **_params(method))
    assert expl.decision == (kind == "matching")
    for name, m in expl.maps.items():
        assert m.shape == tuple(model.input_size), name
        assert m.dtype == np.float32 and np.isfinite(m).all() and (m >= 0).all(), name
    # A pixel is similar or dissimilar, never both.
    assert not ((expl.similarity_a > 0) & (expl.dissimilarity_a > 0)).any()
    assert any(m.max() > 0 for m in expl.maps.values())
    # Every parameter is recorded, resolved: passing them back gives the same maps. Black-box
    # maps are bit-identical; a backward pass through dlib's channels-last convolutions on two
    # threads sums in a varying order, so gradient maps agree to float rounding (~1e-8 of
    # their peak, measured), not bit for bit.
    assert set(expl.params) == set(method_info(method)["defaults"])
    if kind != "matching" or model.name != "dlib_resnet29":
        return  # the re-run once per method, on the faster model (FGGB on SFace: 8 s)
    again = explain(method, model, a, b, **expl.params)
    for name in expl.maps:
        if method_info(method)["black_box"]:
            np.testing.assert_array_equal(again.maps[name], expl.maps[name], err_msg=name)
        else:
            peak = max(float(m.max()) for m in expl.maps.values())
            np.testing.assert_allclose(again.maps[name], expl.maps[name], rtol=0,
                                       atol=1e-5 * peak, err_msg=name)


@pytest.mark.parametrize("method", [m for m in list_methods() if "seed" in
                                    method_info(m)["defaults"]])
def test_another_seed_gives_other_maps(method):
    model = load_model("dlib_resnet29")
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 150, 150, generator=gen) for _ in range(2))
    one = explain(method, model, a, b, **_params(method, seed=0))
    two = explain(method, model, a, b, **_params(method, seed=1))
    assert not np.array_equal(one.similarity_a + one.dissimilarity_a,
                              two.similarity_a + two.dissimilarity_a)


class _NaNWhenPerturbed:
    """A black-box model whose embedding is NaN for any chip but the two it was shown."""

    input_size = (32, 32)
    name = "nan_model"

    def __init__(self, *known: torch.Tensor) -> None:
        self.known = known

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        emb = x.mean(dim=(2, 3))
        seen = torch.stack([(x == k).flatten(1).all(1) for k in self.known]).any(0)
        return torch.where(seen[:, None], emb, torch.full_like(emb, float("nan")))


class _NaNGradients(torch.nn.Module):
    """A differentiable model whose gradients are NaN: sqrt at 0 in the forward pass."""

    input_size = (32, 32)
    name = "nan_model"
    threshold = 0.5
    cam_layers: ClassVar[dict[str, str]] = {"conv": "conv"}
    cam_default = "conv"

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        feats = torch.cat([h.mean(dim=(2, 3)), torch.sqrt(0 * h[:, :1].mean(dim=(2, 3)))], 1)
        return torch.nn.functional.normalize(feats + 1.0, dim=1)


@pytest.mark.parametrize("method", list_methods())
def test_nan_maps_raise_an_error_naming_method_and_model(method):
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 32, 32, generator=gen) for _ in range(2))
    black_box = method_info(method)["black_box"]
    model = _NaNWhenPerturbed(a, b) if black_box else _NaNGradients()
    params = {k: v for k, v in _params(method).items() if k not in ("stride", "grid")}
    with pytest.raises(XfrError) as info:
        explain(method, model, a, b, **params)
    message = str(info.value)
    assert f"{method} on nan_model" in message and "NaN" in message
    assert "\n" not in message
