"""SFace rebuilt in PyTorch from the zoo's int8 ONNX file, checked against OpenCV itself.

OpenCV's own pipeline is the reference: YuNet (``cv2.FaceDetectorYN``) finds the face,
``cv2.FaceRecognizerSF.alignCrop`` cuts the chip from the BGR image, ``recognizer.feature``
computes the features. The torch module gets the same chip as RGB in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from xfr_lib.data import asset_dir, asset_file
from xfr_lib.errors import AssetError
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import MODELS
from xfr_lib.models.sface import MODEL_FILE, SFace

WILD = [
    "ardern/ardern_1.jpg", "ardern/ardern_2.jpg", "biden/biden_1.jpg", "macron/macron_1.jpg",
    "macron/macron_2.jpg", "obama/obama_1.jpg", "obama/obama_2.jpg", "obama/obama_3.jpg",
    "obama/obama_4.jpg", "sunak/sunak_1.jpg",
]
# Greyscale ORL photos, replicated to three channels: low resolution, another camera.
ORL = ["s1/1.pgm", "s7/4.pgm", "s13/2.pgm", "s19/9.pgm", "s25/5.pgm", "s31/3.pgm",
       "s37/7.pgm", "s40/10.pgm"]


@pytest.fixture(scope="module")
def model() -> SFace:
    return SFace.pretrained()


@pytest.fixture(scope="module")
def opencv() -> dict:
    """Chips (BGR uint8) and OpenCV's SFace features for every test photo."""
    detector = cv2.FaceDetectorYN.create(
        str(asset_file("yunet", "face_detection_yunet_2023mar_int8bq.onnx")), "", (320, 320),
        0.8, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(asset_file("sface", MODEL_FILE)), "")
    names, chips, feats = [], [], []
    for source, rel in [("wild", r) for r in WILD] + [("orl", r) for r in ORL]:
        path = asset_dir(source) / rel
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        detector.setInputSize((img.shape[1], img.shape[0]))
        _, faces = detector.detect(img)
        assert faces is not None, f"YuNet found no face in {path}"
        face = faces[np.argmax(faces[:, 2] * faces[:, 3])]  # the largest
        chip = recognizer.alignCrop(img, face)
        names.append(f"{source}/{rel}")
        chips.append(chip)
        feats.append(recognizer.feature(chip).reshape(-1).copy())
    return {"names": names, "chips": chips, "features": np.stack(feats)}


def _rgb_batch(chips: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([chip_to_tensor(c[:, :, ::-1]) for c in chips])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_features_match_opencv(model, opencv):
    with torch.no_grad():
        ours = model.features(_rgb_batch(opencv["chips"])).numpy()
    ref = opencv["features"]
    cos = _cosine(ours, ref)
    diff = np.abs(ours - ref).max()
    print(f"\nSFace vs cv2.FaceRecognizerSF on {len(cos)} chips: min cosine {cos.min():.8f}, "
          f"max abs diff {diff:.3g} (features up to {np.abs(ref).max():.2f})")
    worst = opencv["names"][int(cos.argmin())]
    assert cos.min() >= 0.9999, f"cosine {cos.min()} on {worst}"
    assert diff < 1e-3


def test_bgr_input_does_not_match(model, opencv):
    # The net must see RGB: OpenCV swaps the BGR chip. Feeding BGR must be visibly wrong,
    # otherwise the parity test above could not tell the two orders apart.
    bgr = torch.stack([chip_to_tensor(c) for c in opencv["chips"]])
    with torch.no_grad():
        ours = model.features(bgr).numpy()
    assert _cosine(ours, opencv["features"]).min() < 0.99


def test_embed_is_unit_length(model, opencv):
    x = _rgb_batch(opencv["chips"][:3])
    with torch.no_grad():
        e = model.embed(x)
    assert e.shape == (3, 128) and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)


def test_batch_equals_single(model, opencv):
    x = _rgb_batch(opencv["chips"][:4])
    with torch.no_grad():
        batch = model.embed(x)
        single = torch.cat([model.embed(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(batch, single, atol=2e-5, rtol=0)


def test_chunked_batch_equals_whole_batch(model, opencv):
    x = _rgb_batch(opencv["chips"][:5]).repeat(4, 1, 1, 1)  # 20 chips > chunk_size
    assert len(x) > model.chunk_size > 0
    with torch.no_grad():
        chunked = model.embed(x)
        whole = _with_chunk_size(model, 0, lambda: model.embed(x))
    torch.testing.assert_close(chunked, whole, atol=2e-5, rtol=0)


def test_hooked_layer_runs_once_on_a_large_batch(model, opencv):
    # Hook-based explainers (Captum layer methods) must see each layer once per forward.
    x = _rgb_batch(opencv["chips"][:5]).repeat(4, 1, 1, 1)
    calls = []

    def record(module, inputs, output):
        calls.append(output.shape[0])

    handle = model.layer("conv_7x7").register_forward_hook(record)
    try:
        with torch.no_grad():
            model.embed(x)
    finally:
        handle.remove()
    assert calls == [len(x)]


def _with_chunk_size(model, size, fn):
    old, model.chunk_size = model.chunk_size, size
    try:
        return fn()
    finally:
        model.chunk_size = old


def test_gradient_reaches_input(model, opencv):
    probe, reference = _rgb_batch(opencv["chips"][:2])
    with torch.no_grad():
        ref = model.embed(reference[None])
    x = probe[None].clone().requires_grad_(True)
    (model.embed(x) * ref).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())  # weights are frozen


def test_same_person_above_threshold_others_below(model, opencv):
    wild = [i for i, n in enumerate(opencv["names"]) if n.startswith("wild/")]
    who = [opencv["names"][i].split("/")[1] for i in wild]
    with torch.no_grad():
        e = model.embed(_rgb_batch([opencv["chips"][i] for i in wild]))
    sim = (e @ e.T).numpy()
    pos = {n: k for k, n in enumerate(opencv["names"][i] for i in wild)}
    for a, b in [("macron/macron_1.jpg", "macron/macron_2.jpg"),
                 ("ardern/ardern_1.jpg", "ardern/ardern_2.jpg")]:
        assert model.decide(sim[pos[f"wild/{a}"], pos[f"wild/{b}"]]), (a, b)
    assert not model.decide(sim[pos["wild/obama/obama_1.jpg"], pos["wild/sunak/sunak_1.jpg"]])
    for i in range(len(who)):
        for j in range(i + 1, len(who)):
            assert model.decide(sim[i, j]) == (who[i] == who[j]), (who[i], who[j], sim[i, j])


def test_cam_layers_are_conv_blocks_at_their_resolution(model):
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(label):
        def record(module, inputs, output):
            shapes[label] = tuple(output.shape)  # returns None: the output is left as it is

        return record

    handles = []
    for label, path in model.cam_layers.items():
        layer = model.layer(label)
        assert layer is model.get_submodule(path)
        assert isinstance(layer.conv, nn.Conv2d)
        handles.append(layer.register_forward_hook(hook(label)))
    with torch.no_grad():
        model.embed(torch.rand(1, 3, 112, 112))
    for h in handles:
        h.remove()
    sides = [int(label.split("_")[1].split("x")[0]) for label in model.cam_layers]
    assert [shapes[label][2:] for label in model.cam_layers] == [(s, s) for s in sides]
    assert sides == sorted(sides, reverse=True) and sides[-1] == 7
    assert shapes["conv_7x7"] == (1, 1024, 7, 7)


def test_captum_layer_gradcam_runs_on_a_cam_layer(model, opencv):
    from captum.attr import LayerGradCam

    probe, reference = _rgb_batch(opencv["chips"][3:5])
    with torch.no_grad():
        ref = model.embed(reference[None])
    cam = LayerGradCam(lambda x: (model.embed(x) * ref).sum(1), model.layer("conv_7x7"))
    attr = cam.attribute(probe[None])
    assert attr.shape == (1, 1, 7, 7)
    assert torch.isfinite(attr).all() and attr.abs().sum() > 0


def test_registered():
    assert MODELS.get("sface") is SFace
    assert SFace.input_size == (112, 112) and SFace.embedding_dim == 128


@pytest.mark.parametrize("keep", [0.5, 0.002, 0.0])
def test_truncated_onnx_raises_asset_error(tmp_path, keep):
    src = asset_file("sface", MODEL_FILE)
    bad = tmp_path / MODEL_FILE
    data = src.read_bytes()
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AssetError) as err:
        SFace(bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message


def test_missing_onnx_raises_asset_error(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        SFace(tmp_path / "absent.onnx")


def test_unsupported_op_is_named(tmp_path):
    import onnx

    src = asset_file("sface", MODEL_FILE)
    proto = onnx.load(str(src))
    prelu = next(n for n in proto.graph.node if n.op_type == "PRelu")
    prelu.op_type = "Elu"  # a real ONNX op this converter does not know
    del prelu.input[1:]
    changed = tmp_path / "elu.onnx"
    onnx.save(proto, str(changed))
    with pytest.raises(AssetError, match=r"op Elu") as err:
        SFace(changed)
    assert "\n" not in str(err.value)


def test_another_onnx_model_is_refused():
    yunet = asset_file("yunet", "face_detection_yunet_2023mar_int8bq.onnx")
    with pytest.raises(AssetError, match="not the expected graph") as err:
        SFace(yunet)
    assert "\n" not in str(err.value)
