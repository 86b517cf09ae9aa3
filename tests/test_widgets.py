"""The workshop controls: the threshold slider changes decision and words, the pickers change
the shown explanation, the question box answers from the shown table."""

from __future__ import annotations

import pytest

import xfr_lib
from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.widgets import PairExplorer
from xfr_lib.words import describe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explorer():
    model = xfr_lib.load_model("dlib_resnet29")
    photos = {im.path.stem: im.path for im in load_dataset("wild")}
    pairs = {"macron": (photos["macron_1"], photos["macron_2"]),
             "obama / biden": (photos["obama_1"], photos["biden_1"])}
    return PairExplorer.build(model, pairs, ["gradcam", "corrrise"],
                              {"corrrise": {"n": 40, "seed": 0}}, question="Why?")


def test_the_slider_moves_the_decision_and_the_paragraph(explorer):
    explorer.pair.value, explorer.method.value = "macron", "gradcam"
    table = explorer.current_table(model_threshold=True)
    assert table.decision and "the same person" in explorer.text.value
    explorer.threshold.value = round(table.score + 0.01, 3)
    assert not explorer.current_table().decision
    assert "different people" in explorer.text.value
    assert explorer.text.value.count(describe(explorer.current_table())[:60]) == 1
    explorer.reset.click()
    assert explorer.threshold.value == pytest.approx(table.threshold)


def test_the_pickers_show_the_chosen_explanation(explorer):
    explorer.threshold.value = explorer.current_table(model_threshold=True).threshold
    explorer.pair.value, explorer.method.value = "obama / biden", "corrrise"
    shown = explorer.image.value
    assert shown == explorer.figures[("obama / biden", "corrrise")]
    assert "different people" in explorer.text.value
    explorer.method.value = "gradcam"
    assert explorer.image.value != shown


def test_the_question_box_answers_from_the_shown_table(explorer):
    explorer.pair.value, explorer.method.value = "obama / biden", "corrrise"
    answer = explorer.ask("What is the threshold?")
    assert answer.intent == "threshold"
    assert f"{explorer.current_table().threshold:.3f}" in explorer.answer.value
    assert explorer.ask("How old is he?").declined
    assert "declined" in explorer.answer.value


def test_nothing_to_explore_is_refused():
    with pytest.raises(XfrError, match="at least one"):
        PairExplorer({}, {})
