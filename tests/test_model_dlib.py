"""dlib ResNet-29 in PyTorch: parity with dlib itself on real chips, interface, file checks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from xfr_lib.data import asset_dir, asset_file
from xfr_lib.errors import AssetError
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import FaceModel
from xfr_lib.models.dlib_resnet import ASSET, DAT_FILE, DlibResNet29, read_dlib_dat

ORL_SUBJECTS = 10  # one photo of each of the first ten ORL people
MAX_SIDE = 1000  # wild photos are shrunk to this for dlib's (slow) HOG detector


@pytest.fixture(scope="module")
def model() -> DlibResNet29:
    return DlibResNet29.pretrained()


@pytest.fixture(scope="module")
def dlib_chips() -> dict:
    """Chips made by dlib (HOG detector, 5-point predictor, get_face_chip) and dlib's descriptors.

    From every in-the-wild photo (the Tom Hanks file is already a 112x112 chip of another
    alignment and is left out) and the first detected photo of ten ORL people (grey, 92x112,
    replicated to RGB).
    """
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(asset_file("dlib_landmarks", "shape_predictor_5_face_landmarks.dat"))
    )
    recognizer = dlib.face_recognition_model_v1(str(asset_file(ASSET, DAT_FILE)))

    def chip(rgb: np.ndarray, upsample: int) -> np.ndarray | None:
        faces = detector(rgb, upsample)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.area())
        return dlib.get_face_chip(rgb, predictor(rgb, face), size=150, padding=0.25)

    chips, names = [], []
    for path in sorted(asset_dir("wild").rglob("*.jpg")):
        img = Image.open(path).convert("RGB")
        img.thumbnail((MAX_SIDE, MAX_SIDE))
        c = chip(np.asarray(img), upsample=0)
        if c is not None:
            chips.append(c)
            names.append(path.stem)
    orl = asset_dir("orl")
    for person in range(1, ORL_SUBJECTS + 1):
        for photo in range(1, 11):
            grey = Image.open(orl / f"s{person}" / f"{photo}.pgm")
            c = chip(np.asarray(grey.convert("RGB")), upsample=1)  # 92x112: needs upsampling
            if c is not None:
                chips.append(c)
                names.append(f"orl_s{person}_{photo}")
                break
    descriptors = np.array([np.array(recognizer.compute_face_descriptor(c)) for c in chips])
    return {"chips": np.stack(chips), "names": names, "dlib": descriptors}


def _batch(chips: np.ndarray) -> torch.Tensor:
    return torch.stack([chip_to_tensor(c) for c in chips])


@pytest.mark.dlib
def test_made_enough_real_chips(dlib_chips):
    names = dlib_chips["names"]
    assert sum(not n.startswith("orl") for n in names) >= 8  # nine wild photos, one face each
    assert sum(n.startswith("orl") for n in names) == ORL_SUBJECTS
    assert dlib_chips["chips"].shape[1:] == (150, 150, 3)


@pytest.mark.dlib
@pytest.mark.parametrize("fuse_affine", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_descriptors_match_dlib(dlib_chips, fuse_affine, channels_last):
    model = DlibResNet29.pretrained(fuse_affine=fuse_affine, channels_last=channels_last)
    with torch.no_grad():
        ours = model.features(_batch(dlib_chips["chips"])).double().numpy()
    diff = np.abs(ours - dlib_chips["dlib"]).max()
    assert diff <= 1e-4, f"max abs difference to dlib {diff:.2e}"


@pytest.mark.dlib
def test_input_scaling_is_dlibs(dlib_chips, model):
    """(pixel - mean) / 256 matches; the tempting / 255 does not (guards the constant)."""
    x = _batch(dlib_chips["chips"][:4])
    # the input for which the model's (255 x - mean) / 256 equals (255 x - mean) / 255
    as_if_255 = x * 256.0 / 255.0 + model.mean / 255.0 * (1 - 256.0 / 255.0)
    with torch.no_grad():
        wrong = model.features(as_if_255)
        right = model.features(x)
    ref = dlib_chips["dlib"][:4]
    assert np.abs(right.double().numpy() - ref).max() < 1e-5
    assert np.abs(wrong.double().numpy() - ref).max() > 1e-4


@pytest.mark.dlib
def test_threshold_is_dlibs_l2_rule_in_cosine(dlib_chips, model):
    """threshold = 1 - 0.6^2 / (2 r^2) with r the typical norm of raw descriptors."""
    ref = dlib_chips["dlib"]
    r = np.median(np.linalg.norm(ref, axis=1))
    assert 1.3 < r < 1.5  # raw descriptors are not unit length
    assert model.threshold == pytest.approx(1 - 0.36 / (2 * r**2), abs=0.005)
    # The two rules agree on (nearly) every pair of these chips.
    unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    iu = np.triu_indices(len(ref), 1)
    l2_same = np.linalg.norm(ref[:, None] - ref[None], axis=2)[iu] < 0.6
    cos_same = (unit @ unit.T)[iu] >= model.threshold
    assert (l2_same == cos_same).mean() >= 0.97
    # and the cosine rule verifies these people: obama_1..4, macron_1..2, ... one ORL each
    person = np.array([n.rsplit("_", 1)[0] for n in dlib_chips["names"]])
    truth = (person[:, None] == person[None])[iu]
    assert truth.sum() >= 6
    assert (cos_same == truth).mean() >= 0.95


def test_interface_attributes(model):
    assert isinstance(model, FaceModel)
    assert model.name == "dlib_resnet29"
    assert model.input_size == (150, 150) and model.embedding_dim == 128
    assert model.alignment == "dlib_chip"
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_embed_is_unit_length(model):
    x = torch.rand(3, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        e = model.embed(x)
        f = model.features(x)
    assert e.shape == (3, 128)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(f.norm(dim=1), torch.ones(3), atol=1e-2)  # features are raw
    with pytest.raises(ValueError, match="150"):
        model.embed(torch.rand(1, 3, 112, 112))


def test_batch_equals_single(model):
    x = torch.rand(4, 3, 150, 150, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batch = model.embed(x)
        single = torch.cat([model.embed(x[i : i + 1]) for i in range(len(x))])
    assert (batch - single).abs().max() < 1e-5


def test_gradient_to_input(model):
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 150, 150, generator=gen, requires_grad=True)
    ref = model.embed(torch.rand(1, 3, 150, 150, generator=gen)).detach()
    (model.embed(x) * ref).sum().backward()
    g = x.grad
    assert g is not None and g.shape == x.shape
    assert torch.isfinite(g).all() and (g.abs() > 0).float().mean() > 0.5
    # The directional derivative agrees with a central difference on a float64 copy (a small
    # step: ReLU and max-pool kinks make larger ones inexact).
    m64 = DlibResNet29.pretrained(channels_last=False).double()
    x64 = x[:1].detach().double().requires_grad_(True)

    def score(t: torch.Tensor) -> torch.Tensor:
        return (m64.embed(t) * ref.double()).sum()

    score(x64).backward()
    d = torch.randn(x64.shape, generator=gen, dtype=torch.float64)
    eps = 1e-6
    with torch.no_grad():
        fd = (score(x64 + eps * d) - score(x64 - eps * d)) / (2 * eps)
    assert float((x64.grad * d).sum()) == pytest.approx(float(fd), rel=1e-4)
    # and the float32 gradient of the library model is the float64 one
    assert torch.allclose(g[:1].double(), x64.grad, rtol=1e-3, atol=1e-4 * x64.grad.abs().max())


def test_cam_layers_are_conv_maps(model):
    shapes = {}
    hooks = [
        model.layer(label).register_forward_hook(
            lambda _m, _i, out, label=label: shapes.__setitem__(label, tuple(out.shape[1:]))
        )
        for label in model.cam_layers
    ]
    with torch.no_grad():
        model.features(torch.rand(1, 3, 150, 150))
    for h in hooks:
        h.remove()
    assert shapes == {
        "block_35x35": (32, 35, 35),
        "block_17x17": (64, 17, 17),
        "block_8x8": (128, 8, 8),
    }
    sides = [s[-1] for s in shapes.values()]
    assert sides == sorted(sides, reverse=True)  # finest first


def test_parsed_weights():
    w = read_dlib_dat(asset_file(ASSET, DAT_FILE))
    np.testing.assert_allclose(w.mean_rgb, [122.782, 117.001, 104.298], atol=1e-3)
    assert w.input_size == (150, 150)
    assert w.loss["distance_threshold"] == pytest.approx(0.6)
    assert len(w.convs) == len(w.affines) == 29
    assert w.convs[0][0].shape == (32, 3, 7, 7) and w.fc.shape == (128, 256)
    for (prev, _), (cur, _) in zip(w.convs, w.convs[1:], strict=False):
        # channels chain, except into a downsampling block's second conv (same count anyway)
        assert cur.shape[1] in (prev.shape[0], cur.shape[0])
    n_params = sum(a.size + b.size for a, b in w.convs) + w.fc.size
    assert 5.5e6 < n_params < 5.7e6  # dlib: 5.6 M


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "header":
        return data.replace(b"loss_metric_2", b"loss_metric_9", 1)
    if how == "shape":  # the stem's filter count 32 -> 33, in the con_4 geometry after its params
        i = data.index(b"con_4") + 5
        # params tensor: version (2 bytes), size 4736 (3 bytes), 1, 1, 1 (2 bytes each), floats
        geometry = i + 2 + 3 + 6 + 4 * 4736
        assert data[geometry : geometry + 2] == b"\x01\x20"
        return data[:geometry] + b"\x01\x21" + data[geometry + 2 :]
    if how == "trailing":
        return data + b"\x00" * 16
    if how == "empty":
        return b""
    raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated", "header", "shape", "trailing", "empty"])
def test_bad_dat_file_raises_asset_error(tmp_path, how):
    bad = tmp_path / "bad.dat"
    bad.write_bytes(_corrupt(asset_file(ASSET, DAT_FILE).read_bytes(), how))
    with pytest.raises(AssetError) as info:
        DlibResNet29.pretrained(bad)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and "re-fetch" in message


def test_missing_dat_file_raises_asset_error(tmp_path):
    with pytest.raises(AssetError, match="cannot read"):
        read_dlib_dat(tmp_path / "nothing.dat")


@pytest.mark.skipif(
    importlib.util.find_spec("xfr_lib.models.sface") is None,
    reason="load_model imports every model module; xfr_lib/models/sface.py is not there yet",
)
def test_load_model_by_name():
    from xfr_lib.models import list_models, load_model

    assert "dlib_resnet29" in list_models()
    m = load_model("dlib_resnet29")
    assert isinstance(m, DlibResNet29) and not m.training
