"""CorrRISE and RISE on the real models and real photos (slow: hundreds of forward passes)."""

import numpy as np
import pytest

from xfr_lib.data import asset_dir
from xfr_lib.explainers import explain, explain_identification

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["dlib_resnet29", "sface"])
def model(request):
    from xfr_lib.models import load_model

    return load_model(request.param)


def centre_share(m):
    h, w = m.shape
    return float(m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].sum() / m.sum())


def test_corrrise_on_two_photos_of_one_person(model):
    wild = asset_dir("wild")
    expl = explain("corrrise", model, wild / "obama" / "obama_1.jpg",
                   wild / "obama" / "obama_2.jpg", n=96, batch_size=16)
    assert expl.model == model.name
    for m in expl.maps.values():
        assert m.shape == tuple(model.input_size) and np.isfinite(m).all() and (m >= 0).all()
    assert expl.decision == (expl.score >= model.threshold)
    assert expl.decision, f"{model.name} should match two photos of Obama (score {expl.score})"
    # The face fills the centre of an aligned chip; the centre box is 25 % of the pixels.
    assert centre_share(expl.similarity_a) > 0.35
    assert expl.chip_a.shape == (*model.input_size, 3)


def test_identification_among_wild_photos(model):
    wild = asset_dir("wild")
    gallery = {p.parent.name: p for p in sorted(wild.glob("*/*_1.jpg"))}
    expl = explain_identification("rise", model, wild / "macron" / "macron_2.jpg", gallery,
                                  k=2, n=48, batch_size=16)
    assert expl.matches[0].identity == "macron"
    assert expl.matches[0].score > expl.matches[1].score
