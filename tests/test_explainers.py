"""Every method on every model: the hook's signed maps, checked before any clean-up, and the
contract of the maps users get (shape, finite, non-negative); failures are never hidden."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfr_lib.errors import XfrError
from xfr_lib.explainers import explain, get_explainer, list_methods, method_info
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import list_models, load_model

# Small, fast settings per method: enough masks for every pixel to be covered.
FAST = {"corrrise": {"n": 24}, "rise": {"n": 24}}


@pytest.fixture(scope="module", params=list_models())
def model(request):
    return load_model(request.param)


@pytest.fixture(scope="module")
def chips(model):
    from xfr_lib.data import load_dataset
    from xfr_lib.evaluate import embed_dataset

    wild = load_dataset("wild")
    macron = wild.subset([i for i, im in enumerate(wild) if im.identity == "Emmanuel Macron"])
    emb = embed_dataset(model, macron, progress=False)
    assert emb.ok.all()
    return chip_to_tensor(emb.chips)


def test_every_method_has_fast_settings_and_a_summary():
    assert set(FAST) == set(list_methods())
    for name in list_methods():
        assert method_info(name)["summary"]


@pytest.mark.parametrize("method", list_methods())
def test_signed_maps_of_the_hook_have_the_input_shape_and_are_finite(method, model, chips):
    explainer = get_explainer(method, model, seed=0, **FAST[method])
    refs = explainer.embed(chips)
    maps = explainer.signed_maps(chips[0], refs)  # the raw hook output, before any clean-up
    assert maps.signed.shape == (len(refs), *model.input_size)
    assert np.isfinite(maps.signed).all()
    assert len(maps.extras) == len(refs)
    assert (maps.signed > 0).any()  # a photo of the same person: something makes it similar


@pytest.mark.parametrize("method", list_methods())
def test_maps_users_get_are_the_split_signed_map(method, model, chips):
    expl = explain(method, model, chips[0], chips[1], seed=0, **FAST[method])
    for name, m in expl.maps.items():
        assert m.shape == tuple(model.input_size), name
        assert m.dtype == np.float32 and np.isfinite(m).all() and (m >= 0).all(), name
    # A pixel is similar or dissimilar, never both.
    assert not ((expl.similarity_a > 0) & (expl.dissimilarity_a > 0)).any()


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


@pytest.mark.parametrize("method", list_methods())
def test_nan_maps_raise_an_error_naming_method_and_model(method):
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 32, 32, generator=gen) for _ in range(2))
    with pytest.raises(XfrError) as info:
        explain(method, _NaNWhenPerturbed(a, b), a, b, seed=0, **FAST[method])
    message = str(info.value)
    assert f"{method} on nan_model" in message and "NaN" in message
    assert "\n" not in message
