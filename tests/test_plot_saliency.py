"""Saliency figures and the report files written by ``xfr explain`` / ``xfr identify``."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from xfr_lib.explainers import explain, explain_identification, map_summary
from xfr_lib.plot import (
    overlay,
    plot_identification,
    plot_verification,
    save_identification_report,
    save_verification_report,
)


class CentreModel(torch.nn.Module):
    """Embedding from the chip's central 12x12 pixels (fixed random projection)."""

    name = "centre"
    threshold = 0.3
    input_size = (24, 24)

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 144, 32, generator=g), requires_grad=False)

    def embed(self, x):
        return torch.nn.functional.normalize(
            (x[:, :, 6:18, 6:18].reshape(len(x), -1) - 0.5) @ self.proj, dim=1)


@pytest.fixture(scope="module")
def chips():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 24, 24, generator=g) for _ in range(4)]


@pytest.fixture(scope="module")
def verification(chips):
    return explain("corrrise", CentreModel(), chips[0], chips[1], n=60, patch_size=6)


def test_map_summary_known_values():
    m = np.zeros((10, 10), np.float32)
    m[2, 7] = 3.0
    m[5, 5] = 1.0
    s = map_summary(m)
    assert s["max"] == 3.0 and s["mean"] == pytest.approx(0.04) and s["peak"] == [2, 7]
    assert s["top10_mass"] == 1.0
    flat = map_summary(np.ones((10, 10)))
    assert flat["top10_mass"] == pytest.approx(0.1)
    assert map_summary(np.zeros((4, 4)))["top10_mass"] == 0.0


def test_overlay_keeps_the_face_where_saliency_is_zero():
    chip = np.full((8, 8, 3), 100, np.uint8)
    m = np.zeros((8, 8))
    m[0, 0] = 1.0
    out = overlay(chip, m, alpha=0.5)
    assert out.shape == (8, 8, 3) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[4, 4], 100 / 255)
    assert not np.allclose(out[0, 0], 100 / 255)
    # A smaller map is resized to the chip.
    assert overlay(chip, np.ones((4, 4))).shape == (8, 8, 3)


def test_plot_verification_title_and_panels(verification):
    fig = plot_verification(verification)
    title = fig._suptitle.get_text()
    assert f"{verification.score:.3f}" in title and "0.300" in title
    assert ("non-match" in title) != verification.decision
    assert len(fig.axes) == 7  # 2 x 3 panels and a colour bar
    plt.close(fig)


def test_verification_report_files(verification, tmp_path):
    paths = save_verification_report(verification, tmp_path / "out", save_maps=True)
    assert set(paths) == {"figure", "json", "maps"}
    assert Image.open(paths["figure"]).format == "PNG"
    record = json.loads(paths["json"].read_text())
    for key in ("score", "threshold", "decision", "method", "params", "model", "maps"):
        assert key in record
    assert record["method"] == "corrrise" and record["model"] == "centre"
    assert record["params"]["n"] == 60 and record["params"]["seed"] == 0
    assert record["score"] == pytest.approx(verification.score)
    for name, summary in record["maps"].items():
        assert set(summary) == {"max", "mean", "top10_mass", "peak"}
        assert summary == map_summary(getattr(verification, name))  # JSON floats round-trip
    with np.load(paths["maps"]) as z:
        np.testing.assert_array_equal(z["similarity_a"], verification.similarity_a)
    # No temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "verification_corrrise.json", "verification_corrrise.npz", "verification_corrrise.png"]


def test_identification_report_and_figure(chips, tmp_path):
    expl = explain_identification("corrrise", CentreModel(), chips[2], chips, k=2, n=40,
                                  patch_size=6)
    fig = plot_identification(expl, dissimilarity=True)
    assert len(fig.axes) == 2 * 5 + 1
    plt.close(fig)
    paths = save_identification_report(expl, tmp_path, stem="id")
    record = json.loads(paths["json"].read_text())
    assert record["task"] == "identification" and record["k"] == 2
    assert [m["rank"] for m in record["matches"]] == [1, 2]
    assert record["matches"][0]["index"] == 2
    assert set(record["matches"][0]["maps"]) == {
        "similarity_probe", "dissimilarity_probe", "similarity_gallery", "dissimilarity_gallery"}
    assert paths["figure"].stat().st_size > 0
