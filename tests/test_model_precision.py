"""Model precisions: the fp32 fast paths equal their reference paths, bf16 agrees with fp32 on
real chips (embeddings and CorrRISE maps), and precision is part of a model's identity."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.stats import spearmanr

import xfr_lib
from xfr_lib.data import asset_dir
from xfr_lib.errors import UnknownNameError
from xfr_lib.faces import aligned_chip, chip_to_tensor
from xfr_lib.models import DlibResNet29, load_model, model_fingerprint

NAMES = ("dlib_resnet29", "sface")
# One photo of each of 20 ORL people, several poses (grey, replicated to RGB by alignment).
ORL = [f"s{person}/{1 + person % 10}.pgm" for person in range(1, 40, 2)]


@pytest.fixture(scope="module", params=NAMES)
def model(request):
    return load_model(request.param)


def _orl_chips(model) -> torch.Tensor:
    """Aligned real ORL chips for ``model``, ``[N, 3, H, W]`` (N = 20 when all align)."""
    recs = [aligned_chip(asset_dir("orl") / rel, model.alignment, model.input_size)
            for rel in ORL]
    return torch.stack([chip_to_tensor(r["chip"]) for r in recs if r["chip"] is not None])


@pytest.fixture(scope="module")
def chips(model) -> torch.Tensor:
    return _orl_chips(model)


def _embed(model, x: torch.Tensor, precision: str) -> torch.Tensor:
    model.precision = precision
    try:
        with torch.no_grad():
            return model.embed(x)
    finally:
        model.precision = "fp32"


def test_dlib_fused_channels_last_equals_reference_layout():
    fast = load_model("dlib_resnet29")
    plain = DlibResNet29.pretrained(fuse_affine=False, channels_last=False)
    x = _orl_chips(fast)
    assert len(x) >= 16
    diff = (_embed(fast, x, "fp32") - _embed(plain, x, "fp32")).abs().max()
    assert diff < 1e-4


def test_dlib_fast_and_reference_layouts_give_the_same_maps():
    # The parity oracle for maps: CorrRISE (black box) and Grad-CAM (gradients at a layer) on
    # a real pair, with the fused channels-last model and with dlib's layout as read.
    fast = load_model("dlib_resnet29")
    plain = DlibResNet29.pretrained(fuse_affine=False, channels_last=False)
    a, b = (fast.align(asset_dir("wild") / "obama" / f"obama_{i}.jpg") for i in (1, 2))
    for method, params in (("corrrise", {"n": 64, "seed": 0}), ("gradcam", {})):
        m_fast = xfr_lib.explain(method, fast, a, b, **params)
        m_plain = xfr_lib.explain(method, plain, a, b, **params)
        assert m_fast.score == pytest.approx(m_plain.score, abs=1e-5)
        for side in ("a", "b"):
            for kind in ("similarity", "dissimilarity"):
                x, y = getattr(m_fast, f"{kind}_{side}"), getattr(m_plain, f"{kind}_{side}")
                scale = max(float(abs(y).max()), 1e-12)
                assert abs(x - y).max() / scale < 1e-3, f"{method} {kind}_{side}"


def test_sface_chunked_equals_whole_batch():
    model = load_model("sface")
    chips = _orl_chips(model)
    x = torch.cat([chips, chips.flip(-1)])  # 40 chips: more than two chunks
    assert len(x) > 2 * model.chunk_size > 0
    chunked = _embed(model, x, "fp32")
    old, model.chunk_size = model.chunk_size, 0
    try:
        whole = _embed(model, x, "fp32")
    finally:
        model.chunk_size = old
    assert (chunked - whole).abs().max() < 1e-4


def test_bf16_embeddings_agree_with_fp32_on_real_chips(model, chips):
    assert len(chips) >= 16
    fp32, bf16 = _embed(model, chips, "fp32"), _embed(model, chips, "bf16")
    assert bf16.dtype == fp32.dtype == torch.float32
    torch.testing.assert_close(bf16.norm(dim=1), torch.ones(len(chips)), atol=1e-5, rtol=0)
    cos = (fp32 * bf16).sum(1)
    assert cos.min() >= 0.999, f"{model.name}: min cosine {cos.min():.6f}"
    # bf16 did run: its rounding shows (otherwise this test could not tell them apart)
    assert (fp32 - bf16).abs().max() > 1e-4
    # and the fp32 path is untouched by having run bf16
    assert torch.equal(_embed(model, chips, "fp32"), fp32)


def test_embed_helper_returns_float32_in_bf16(model, chips):
    model.precision = "bf16"
    try:
        out = xfr_lib.models.embed(model, chips[:5], batch_size=2)
    finally:
        model.precision = "fp32"
    assert out.dtype == torch.float32 and out.shape == (5, model.embedding_dim)


def test_bf16_input_gradients_are_the_fp32_ones(model, chips):
    # With autograd on, bf16 runs fp32: gradient explainers get the reference gradients.
    ref = _embed(model, chips[1:2], "fp32")
    grads = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        x = chips[:2].clone().requires_grad_(True)
        (model.embed(x) * ref).sum().backward()
        grads[precision] = x.grad
    model.precision = "fp32"
    assert grads["fp32"].abs().sum() > 0
    assert torch.equal(grads["fp32"], grads["bf16"])


def test_bf16_corrrise_maps_rank_like_fp32(model):
    # Same seed = same masks, so the only difference between the two runs is precision (no
    # sampling noise to average out): 128 masks per image suffice and keep the test short.
    a, b = (model.align(asset_dir("wild") / "obama" / f"obama_{i}.jpg") for i in (1, 2))
    maps = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        try:
            maps[precision] = xfr_lib.explain("corrrise", model, a, b, n=128, seed=0)
        finally:
            model.precision = "fp32"
    for key in ("correlation_a", "correlation_b"):
        fp32, bf16 = maps["fp32"].extras[key], maps["bf16"].extras[key]
        rho = spearmanr(fp32.ravel(), bf16.ravel()).statistic
        assert rho >= 0.95, f"{model.name} {key}: Spearman {rho:.4f}"
    assert maps["fp32"].score == pytest.approx(maps["bf16"].score, abs=2e-3)


def test_precision_is_part_of_the_fingerprint_and_repr(model):
    fp32 = model_fingerprint(model)
    model.precision = "bf16"
    try:
        bf16 = model_fingerprint(model)
        assert "precision='bf16'" in repr(model)
    finally:
        model.precision = "fp32"
    assert bf16 != fp32
    assert model_fingerprint(model) == fp32
    assert "precision='fp32'" in repr(model)


def test_load_model_sets_precision():
    m = load_model("dlib_resnet29", precision="bf16")
    assert m.precision == "bf16"
    assert load_model("dlib_resnet29").precision == "fp32"


@pytest.mark.parametrize("bad", ["fp16", "int8", "BF16"])
def test_unknown_precision_is_a_one_line_error(model, bad):
    with pytest.raises(UnknownNameError) as err:
        load_model("dlib_resnet29", precision=bad)
    message = str(err.value)
    assert "\n" not in message and repr(bad) in message and "fp32, bf16" in message
    with pytest.raises(UnknownNameError):
        model.precision = bad
    assert model.precision == "fp32"


def test_cli_explain_in_bf16_records_the_precision(run, tmp_path):
    from xfr_lib.cli import build_parser
    from xfr_lib.models import PRECISIONS

    wild = asset_dir("wild")
    proc = run("explain", str(wild / "obama/obama_1.jpg"), str(wild / "obama/obama_2.jpg"),
               "--method", "corrrise", "-p", "n=60", "--out", str(tmp_path), "--precision", "bf16")
    assert proc.returncode == 0, proc.stderr
    (report,) = tmp_path.glob("*.json")
    assert json.loads(report.read_text())["precision"] == "bf16"
    explain = build_parser()._subparsers._group_actions[0].choices["explain"]
    (flag,) = (a for a in explain._actions if a.dest == "precision")
    assert tuple(flag.choices) == PRECISIONS and flag.default == "fp32"
