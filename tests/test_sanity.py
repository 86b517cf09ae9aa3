"""The model-randomisation sanity check on the real models: what is re-drawn, how, and that the
randomised models still look at their input (real aligned chips, real CorrRISE maps)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import xfr_lib
from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    CONSTANT_COSINE,
    _sanity,
    embed_dataset,
    embedding_spread,
    learned_tensor_names,
    probe_inputs,
    randomization_layers,
    randomized_copy,
)
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import DlibResNet29, SFace, embed, load_model

VARIANTS = ["sface", "dlib_resnet29", "dlib_resnet29_unfused"]
FIXED = {"sface": {"input_mean", "input_scale"}, "dlib_resnet29": {"mean"},
         "dlib_resnet29_unfused": {"mean"}}
N_LAYERS = {"sface": 27 + 27 + 2,  # 27 conv blocks (conv, PReLU), the head's affine and linear
            "dlib_resnet29": 29 + 1,  # 29 convolutions (affine folded), fc
            "dlib_resnet29_unfused": 29 * 2 + 1}  # 29 convolutions and their affine layers, fc


def _load(variant: str) -> nn.Module:
    if variant == "dlib_resnet29_unfused":
        return DlibResNet29.pretrained(fuse_affine=False)
    return load_model(variant)


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request):
    """(name, trained model, a snapshot of its state, its fully randomised copy, seed 0)."""
    model = _load(request.param)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    return request.param, model, snapshot, randomized_copy(model, seed=0)


def _owner(name: str) -> str:
    return name.rpartition(".")[0]


def _state_unchanged(model: nn.Module, snapshot: dict) -> bool:
    state = model.state_dict()
    return state.keys() == snapshot.keys() and all(torch.equal(state[k], v)
                                                   for k, v in snapshot.items())


def test_learned_tensors_and_layers_are_declared(variant):
    name, model, _, _ = variant
    buffers = {n for n, _ in model.named_buffers()}
    everything = {n for n, _ in model.named_parameters()} | buffers
    learned = learned_tensor_names(model)
    assert set(model.fixed_buffers) == FIXED[name] <= buffers
    assert set(learned) == everything - FIXED[name] and len(learned) == len(set(learned))
    # The learned buffers: the affine layers that are not folded into a convolution.
    learned_buffers = sorted(set(learned) & buffers)
    if name == "sface":
        assert learned_buffers == ["head.bn1.scale", "head.bn1.shift"]
    elif name == "dlib_resnet29":
        assert learned_buffers == []
    else:
        assert len(learned_buffers) == 2 * 29 and "stage3.1.bn2.gamma" in learned_buffers
    layers = randomization_layers(model)
    assert len(layers) == N_LAYERS[name]
    assert sorted(layers) == sorted({_owner(n) for n in learned})  # every owner is one layer
    first, last = {"sface": ("body.conv_1.conv", "head.pre_fc1")}.get(name, ("conv1", "fc"))
    assert layers[0] == first and layers[-1] == last
    if name == "dlib_resnet29_unfused":  # forward order: each convolution, then its affine
        assert layers[:4] == ["conv1", "bn1", "stage1.0.conv1", "stage1.0.bn1"]
    if name == "sface":
        assert layers[:4] == ["body.conv_1.conv", "body.conv_1.act", "body.conv_2_dw.conv",
                              "body.conv_2_dw.act"]
    misdeclared = copy.deepcopy(model)
    misdeclared.fixed_buffers = ("no_such_buffer",)
    with pytest.raises(AttributeError, match="no_such_buffer"):
        misdeclared.learned_tensors()


def test_every_learned_tensor_is_redrawn_and_constants_kept(variant):
    _, model, snapshot, full = variant
    trained, random = model.state_dict(), full.state_dict()
    learned = set(learned_tensor_names(model))
    for key, value in trained.items():
        if key in learned:
            assert not torch.equal(random[key], value), key
            # Continuous draws: (almost) no element keeps its trained value.
            assert (random[key] == value).float().mean() < 1e-4, key
            assert torch.isfinite(random[key]).all(), key
        else:
            assert torch.equal(random[key], value), key
    assert _state_unchanged(model, snapshot)
    assert not full.training and all(not p.requires_grad for p in full.parameters())


SD_REL = 2 ** -0.5  # sd of an estimated standard deviation, relative, times sqrt(n)


def _tol(n: int, sd: float) -> float:
    """Five standard errors of a statistic of ``n`` draws whose spread is ``sd / sqrt(n)``."""
    return 5 * sd / math.sqrt(n)


def test_redrawn_values_follow_the_scheme(variant):
    """He-normal weights with the next non-linearity's gain, small biases and shifts, scales
    around 1, PReLU slopes in [0, 0.5]."""
    name, model, _, full = variant
    prelu_gain = math.sqrt(2 / (1 + 1 / 12))  # E[a^2] = 1/12 for a ~ U(0, 0.5)
    seen = set()
    for layer in randomization_layers(model):
        m = full.get_submodule(layer)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            if layer in ("fc", "head.pre_fc1"):
                gain = 1.0  # the embedding: no non-linearity after it
            elif name == "sface":
                gain = prelu_gain
            else:
                gain = math.sqrt(2)  # dlib: a ReLU after every convolution
            expected = gain / math.sqrt(w[0].numel())
            assert float(w.std()) == pytest.approx(expected, rel=_tol(w.numel(), SD_REL)), layer
            assert abs(float(w.mean())) < _tol(w.numel(), expected), layer
            if m.bias is not None:
                b = m.bias
                assert float(b.std()) == pytest.approx(_sanity.BIAS_STD, rel=_tol(len(b), SD_REL))
                assert abs(float(b.mean())) < _tol(len(b), _sanity.BIAS_STD), layer
            seen.add("weight")
        elif isinstance(m, nn.PReLU):
            a = m.weight
            assert 0 <= float(a.min()) and float(a.max()) <= 0.5, layer
            assert float(a.mean()) == pytest.approx(0.25, abs=_tol(len(a), 0.5 / 12 ** 0.5))
            seen.add("prelu")
        else:
            scale, shift = (getattr(m, t) for t in m.affine_tensors)
            n, sd = scale.numel(), _sanity.AFFINE_SCALE_STD
            assert float(scale.mean()) == pytest.approx(1, abs=_tol(n, sd)), layer
            assert float(scale.std()) == pytest.approx(sd, rel=_tol(n, SD_REL)), layer
            assert float(shift.mean()) == pytest.approx(0, abs=_tol(n, _sanity.BIAS_STD))
            assert float(shift.std()) == pytest.approx(_sanity.BIAS_STD, rel=_tol(n, SD_REL))
            seen.add("affine")
    assert seen == {"sface": {"weight", "prelu", "affine"}, "dlib_resnet29": {"weight"},
                    "dlib_resnet29_unfused": {"weight", "affine"}}[name]


def test_every_cascade_depth(variant):
    """top=k re-draws exactly the last k layers, with the values of the full copy."""
    _, model, snapshot, full = variant
    layers = randomization_layers(model)
    learned = learned_tensor_names(model)
    trained, random = model.state_dict(), full.state_dict()
    rng = torch.random.get_rng_state()
    checked = {1, len(layers) // 2, None}  # the check costs a forward pass: three depths
    for k in [*range(1, len(layers) + 1), None]:
        state = randomized_copy(model, seed=0, top=k, check=k in checked).state_dict()
        top = set(layers if k is None else layers[-k:])
        for key in trained:
            source = random if key in learned and _owner(key) in top else trained
            assert torch.equal(state[key], source[key]), (k, key)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the global RNG is not touched
    assert _state_unchanged(model, snapshot)
    with pytest.raises(XfrError, match="top"):
        randomized_copy(model, top=0)
    with pytest.raises(XfrError, match="top"):
        randomized_copy(model, top=1.5)
    with pytest.raises(XfrError, match=f"from 1 to {len(layers)}"):
        randomized_copy(model, top=len(layers) + 1)


def test_seeds(variant):
    _, model, snapshot, full = variant
    rng = torch.random.get_rng_state()
    again, other = randomized_copy(model, seed=0), randomized_copy(model, seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng)
    a, b, c = full.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same copy
    for key in learned_tensor_names(model):
        assert not torch.equal(a[key], c[key]), key  # another seed, other values
    for key in model.fixed_buffers:
        assert torch.equal(a[key], c[key])
    assert _state_unchanged(model, snapshot)
    with pytest.raises(XfrError, match="seed"):
        randomized_copy(model, seed=-1)


def test_randomised_copies_look_at_their_input(variant):
    _, model, _, full = variant
    probes = probe_inputs(model.input_size)
    assert probes.shape == (8, 3, *model.input_size) and 0 <= probes.min() and probes.max() <= 1
    assert torch.equal(probes, probe_inputs(model.input_size))
    spread = embedding_spread(full)
    assert spread.n == 8 and not spread.constant
    assert spread.min < CONSTANT_COSINE and spread.std > 1e-4
    assert "28 pairs of 8 inputs" in str(spread)


def test_check_refuses_a_copy_whose_embeddings_ignore_the_input():
    """PyTorch's default initialisation is what made SFace's copy constant; and a model whose
    head sees a constant (its batch-norm scale zeroed) stays constant whatever the last layer."""
    model = SFace.pretrained()
    default = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for m in default.modules():
            if m is not default and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    spread = embedding_spread(default)
    assert spread.constant and spread.min > CONSTANT_COSINE
    broken = randomized_copy(model, top=1)
    with torch.no_grad():
        broken.head.bn1.scale.zero_()
    with pytest.raises(XfrError, match=r"randomized_copy\('sface', seed=3, top=1\).*input") as err:
        randomized_copy(broken, seed=3, top=1)
    assert "\n" not in str(err.value) and "28 pairs" in str(err.value)
    randomized_copy(broken, seed=3, top=1, check=False)  # the check can be skipped
    with pytest.raises(XfrError, match="learned tensors"):
        randomized_copy(nn.Linear(2, 2))


@pytest.fixture(scope="module")
def wild():
    return load_dataset("wild")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sface", "dlib_resnet29"])
def test_randomised_models_on_real_chips(name, wild):
    model = load_model(name)
    faces = embed_dataset(model, wild, progress=False)
    assert faces.ok.all()
    random = randomized_copy(model, seed=0)
    emb = embed(random, faces.chips).double()
    scores = (emb @ emb.T)[tuple(torch.triu_indices(len(emb), len(emb), 1))]
    trained = faces.similarity()[np.triu_indices(len(emb), 1)]
    assert torch.isfinite(scores).all() and len(scores) == 55
    assert float(scores.std()) > 1e-4  # float noise is ~1e-7
    assert float(scores.min()) < CONSTANT_COSINE
    assert not np.allclose(scores.numpy(), trained, atol=1e-3)  # not the trained model
    a, b = (chip_to_tensor(c) for c in faces.chips[:2])
    expl = xfr_lib.explain("corrrise", random, a, b, n=64, seed=0)
    for map_name, m in expl.maps.items():
        assert np.isfinite(m).all() and m.max() > 0, map_name  # not empty
    for side in ("a", "b"):
        assert np.std(expl.extras[f"correlation_{side}"]) > 0
