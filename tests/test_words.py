"""From maps to words: the calibrated confidence, the region table, the paragraph written from
it and the questions answered (or declined) from it, through the library and ``xfr``."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest

import xfr_lib
from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import embed_dataset
from xfr_lib.explainers import VerificationExplanation
from xfr_lib.faces import OUTSIDE, face_regions
from xfr_lib.words import (
    EVALUATION_QUESTIONS,
    INTENTS,
    OUT_OF_SCOPE,
    TABLE_REGIONS,
    ask,
    calibrate,
    describe,
    evaluate_questions,
    find_image,
    find_number,
    find_region,
    fit_calibration,
    load_matcher,
    pair_table,
    pct,
    table_for_pair,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return xfr_lib.load_model("dlib_resnet29")


@pytest.fixture(scope="module")
def calibration_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("calibration")


@pytest.fixture(scope="module")
def calibration(model, calibration_folder):
    return calibrate(model, cache=calibration_folder, progress=False)


@pytest.fixture(scope="module")
def wild(model):
    return embed_dataset(model, load_dataset("wild"), progress=False)


@pytest.fixture(scope="module")
def matcher():
    return load_matcher()


def _explanation(wild, i, j, maps, score=0.95) -> VerificationExplanation:
    return VerificationExplanation(**maps, score=score, threshold=0.91, decision=score >= 0.91,
                                   method="test maps", params={}, model="dlib_resnet29",
                                   chip_a=wild.chips[i], chip_b=wild.chips[j])


def _region_maps(wild, i, j, similarity: str, dissimilarity: str | None, rng) -> dict:
    """Maps whose similarity lies on one region of each chip (plus 1 % noise elsewhere)."""
    out = {}
    for image, k in (("a", i), ("b", j)):
        regions = face_regions(wild.landmarks[k], wild.chips[k].shape[:2])
        for kind, name in (("similarity", similarity), ("dissimilarity", dissimilarity)):
            if name is None:
                out[f"{kind}_{image}"] = np.zeros(regions.shape, np.float32)
                continue
            m = regions.mask(name).astype(np.float32) + 0.01 * rng.random(regions.shape)
            out[f"{kind}_{image}"] = m.astype(np.float32)
    return out


@pytest.fixture(scope="module")
def nose_table(wild, calibration):
    i, j = wild.index("obama_1"), wild.index("obama_2")
    maps = _region_maps(wild, i, j, "nose", "mouth", np.random.default_rng(0))
    return pair_table(_explanation(wild, i, j, maps), calibration,
                      landmarks_a=wild.landmarks[i], landmarks_b=wild.landmarks[j])


@pytest.fixture(scope="module")
def real_tables(model, calibration):
    """CorrRISE tables of a genuine and an impostor wild pair (small N: the words, not the maps,
    are under test)."""
    photos = {im.path.stem: im.path for im in load_dataset("wild")}
    return [pair_table(xfr_lib.explain("corrrise", model, photos[a], photos[b], n=60, seed=0),
                       calibration)
            for a, b in (("macron_1", "macron_2"), ("obama_1", "biden_1"))]


# --- calibration -------------------------------------------------------------------------------


def test_confidence_is_a_half_at_the_threshold_and_grows_with_the_distance():
    rng = np.random.default_rng(0)
    cal = fit_calibration(rng.normal(0.8, 0.05, 4000), rng.normal(0.2, 0.05, 4000), 0.5)
    assert cal.slope == pytest.approx(0.6 / 0.05 ** 2, rel=0.05)
    assert cal.confidence(0.5) == pytest.approx(0.5)
    assert cal.evidence(0.51) > 0 > cal.evidence(0.49)
    assert cal.confidence(0.49) == pytest.approx(cal.confidence(0.51))
    c = [cal.confidence(s) for s in (0.5, 0.505, 0.51, 0.52, 0.6)]
    assert all(x < y for x, y in itertools.pairwise(c))
    wider = fit_calibration(rng.normal(0.8, 0.2, 4000), rng.normal(0.2, 0.2, 4000), 0.5)
    assert wider.confidence(0.52) < cal.confidence(0.52)  # overlapping scores: less sure


def test_a_calibration_that_would_invert_decisions_is_refused():
    with pytest.raises(XfrError, match="not above impostor"):
        fit_calibration(np.full(10, 0.2) + np.arange(10) * 1e-3, np.full(10, 0.8), 0.5)
    with pytest.raises(XfrError, match="at least 5"):
        fit_calibration([0.9, 0.8], [0.1, 0.2, 0.3, 0.2, 0.1], 0.5)


def test_orl_calibration_uses_every_pair_and_is_stored(model, calibration, calibration_folder,
                                                       monkeypatch):
    assert calibration.n_genuine + calibration.n_impostor == 400 * 399 // 2
    assert calibration.n_genuine == 40 * 45 and calibration.separation > 2
    assert len(list(calibration_folder.glob("dlib_resnet29-*.json"))) == 1

    def no_embedding(*a, **k):
        raise AssertionError("calibrated again")

    monkeypatch.setattr("xfr_lib.evaluate.embed_dataset", no_embedding)
    assert calibrate(model, cache=calibration_folder, progress=False) == calibration


# --- region table and paragraph ----------------------------------------------------------------


def test_shares_sum_to_one_per_map_and_name_the_painted_region(nose_table):
    t = nose_table.regions
    assert list(t["region"]) == list(TABLE_REGIONS)
    for col in ("similarity_a", "similarity_b", "dissimilarity_a", "dissimilarity_b"):
        assert t[col].sum() == pytest.approx(1.0)
    assert nose_table.ranked("similarity")["region"].iloc[0] == "nose"
    assert nose_table.ranked("dissimilarity")["region"].iloc[0] == "mouth"
    assert nose_table.row("nose")["similarity"] > 0.8


def test_the_paragraph_names_the_nose_first(nose_table):
    text = describe(nose_table)
    similarity = re.search(r"Most of the similarity lay (.*?)\.", text).group(1)
    assert similarity.startswith("on the nose (")
    assert "Most of the dissimilarity lay on the mouth (" in text


def _check_paragraph(table) -> None:
    """Every region the paragraph names is in the table with the shares written beside it, and
    its other numbers are the table's score, threshold, confidence and evidence."""
    text = describe(table)
    rows = table.regions.set_index("region")

    def region(words: str) -> str:
        words = words.lower()
        return OUTSIDE if words == OUTSIDE else re.sub(r"^(on )?the ", "", words)

    sentences = re.split(r"(?<=\.) (?=[A-Z])", text)
    first = sentences[0]
    assert f"{table.score:.3f}" in first and f"{table.threshold:.3f}" in first
    assert f"{abs(table.evidence):.1f} nats" in first
    assert ("the same person" if table.decision else "different people") in first
    c = table.confidence
    assert ("over 99.9 %" if c >= 0.999 else f"({100 * c:.1f} %") in first
    checked = 0
    for sentence in sentences[1:]:
        kind = re.match(r"Most of the (similarity|dissimilarity) lay", sentence)
        if kind:
            for place, share in re.findall(r"(on the [a-z]+|outside the face) \((\d+) %\)",
                                           sentence):
                assert pct(rows.loc[region(place), kind.group(1)]) == f"{share} %", sentence
                checked += 1
        focus = re.match(r"For its size, (the [a-z]+) mattered most: it holds (\d+ %) of the "
                         r"explanation on (\d+ %) of the chip", sentence)
        if focus:
            row = rows.loc[region(focus.group(1))]
            assert (pct(row["importance"]), pct(row["area"])) == focus.group(2, 3)
            checked += 2
        least = re.match(r"(The [a-z]+|Outside the face) mattered least \((\d+ %)\)", sentence)
        if least:
            assert pct(rows.loc[region(least.group(1)), "importance"]) == least.group(2)
            checked += 1
    assert checked >= 3
    # every percentage of the paragraph was checked above (the confidence's is in the first)
    assert len(re.findall(r"\d+ %", " ".join(sentences[1:]))) == checked


def test_every_number_and_region_of_the_paragraph_is_the_tables(nose_table, real_tables):
    for table in (nose_table, *real_tables):
        _check_paragraph(table)
        _check_paragraph(table.at_threshold(table.score + 0.01))  # the other decision


def test_a_new_threshold_changes_decision_and_words(nose_table):
    strict = nose_table.at_threshold(nose_table.score + 0.02)
    assert not strict.decision and "different people" in describe(strict)
    assert strict.confidence == pytest.approx(nose_table.calibration.confidence(
        nose_table.score, nose_table.score + 0.02))


def test_a_method_without_dissimilarity_says_so(wild, calibration):
    i, j = wild.index("obama_1"), wild.index("obama_2")
    maps = _region_maps(wild, i, j, "eyes", None, np.random.default_rng(1))
    table = pair_table(_explanation(wild, i, j, maps), calibration,
                       landmarks_a=wild.landmarks[i], landmarks_b=wild.landmarks[j])
    assert table.regions["dissimilarity"].isna().all()
    assert "found no dissimilarity" in describe(table)
    assert table.ranked("importance")["region"].iloc[0] == "eyes"


def test_table_round_trips_through_json(real_tables):
    from xfr_lib.words import PairTable

    table = real_tables[0]
    back = PairTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert describe(back) == describe(table)


def test_landmarks_found_in_the_chip_give_nearly_the_same_table(wild, calibration):
    i, j = wild.index("obama_1"), wild.index("obama_2")
    maps = _region_maps(wild, i, j, "nose", "mouth", np.random.default_rng(0))
    expl = _explanation(wild, i, j, maps)
    carried = pair_table(expl, calibration, landmarks_a=wild.landmarks[i],
                         landmarks_b=wild.landmarks[j])
    found = pair_table(expl, calibration)
    assert np.abs(found.regions["similarity"] - carried.regions["similarity"]).max() < 0.1


# --- questions ---------------------------------------------------------------------------------


def test_question_words():
    assert find_region("How much did the lips count?") == "mouth"
    assert find_region("Were the eyebrows used?") == "brows"
    assert find_region("what about her hair") == OUTSIDE
    assert find_region("why did it reject?") is None
    assert find_image("in the second photo") == "B" and find_image("both") is None
    assert find_number("would it match at a threshold of 0.45?") == 0.45


@pytest.mark.parametrize("intent, questions", [
    ("why", ["Why did it reject?", "Why was the pair rejected?",
             "What is the reason the system said no?"]),
    ("threshold", ["What is the threshold?", "What's the decision threshold?",
                   "What score does the model need to accept?"]),
    ("least", ["Which region mattered least?", "What was the least important region?",
               "Which part of the face counted the least?"]),
    ("region", ["How important was the nose?", "Did the nose matter?",
                "What was the nose's contribution?"]),
])
def test_paraphrases_reach_the_same_intent(matcher, intent, questions):
    assert [m[0] for m in matcher.match(questions)] == [intent] * len(questions)


@pytest.mark.parametrize("question", [
    "How old is he?", "What is her name?", "What is the capital of France?",
    "Is she happy?", "Which country is he from?"])
def test_out_of_scope_questions_are_declined(nose_table, matcher, question):
    answer = ask(nose_table, question, matcher=matcher)
    assert answer.declined and answer.intent == OUT_OF_SCOPE
    assert not answer.grounding


def test_answers_are_grounded_in_the_table(nose_table, matcher):
    nose = ask(nose_table, "How important was the nose?", matcher=matcher)
    assert nose.intent == "region" and not nose.declined
    assert nose.grounding["similarity"] == nose_table.row("nose")["similarity"]
    assert f"{pct(nose_table.row('nose')['similarity'])} of the similarity" in nose.text
    threshold = ask(nose_table, "what is the threshold?", matcher=matcher)
    assert f"{nose_table.threshold:.3f}" in threshold.text
    least = ask(nose_table, "Which region mattered least?", matcher=matcher)
    face = nose_table.ranked("importance")
    assert least.grounding["region"] == face[face["region"] != OUTSIDE]["region"].iloc[-1]
    flip = ask(nose_table, f"Would it match at a threshold of {nose_table.score + 0.05:.2f}?",
               matcher=matcher)
    assert flip.intent == "what_if" and flip.grounding["what_if_decision"] is False
    beard = ask(nose_table, "How important was the beard?", matcher=matcher)
    assert beard.declined and "beard" in beard.text


def test_the_evaluation_questions_are_not_the_examples_and_mostly_understood(matcher):
    examples = {q.lower() for qs in INTENTS.values() for q in qs}
    assert not examples & {q.lower() for q, _ in EVALUATION_QUESTIONS}
    assert {e for _, e in EVALUATION_QUESTIONS} == set(INTENTS)
    result = evaluate_questions(matcher)
    assert result["correct"].mean() >= 0.8
    declined = result[result["expected"] == OUT_OF_SCOPE]
    assert (declined["matched"] == OUT_OF_SCOPE).mean() >= 0.8


def test_an_extractive_qa_model_answers_from_the_tables_text(nose_table, matcher, tmp_path):
    """The switch for a user's own QA model, with a small untrained BERT built here (no trained
    QA model can be had offline): whatever it answers is a span of the table's text."""
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from xfr_lib.data import asset_dir
    from xfr_lib.words import extract_answer, table_context

    tokenizer = AutoTokenizer.from_pretrained(str(asset_dir("minilm")))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)
    BertForQuestionAnswering(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    context = table_context(nose_table)
    span, score = extract_answer(str(tmp_path), "Which region mattered most?", context)
    assert span.strip() and span in context and 0 < score <= 1
    answer = ask(nose_table, "Which region mattered most?", matcher=matcher,
                 qa_model=str(tmp_path))
    assert answer.intent == "extractive"
    assert answer.grounding["matched_intent"] == "most"
    if not answer.declined:
        assert answer.text in table_context(nose_table)
    assert ask(nose_table, "How old is he?", matcher=matcher, qa_model=str(tmp_path)).declined
    with pytest.raises(XfrError, match="not found"):
        ask(nose_table, "Which region mattered most?", matcher=matcher,
            qa_model=str(tmp_path / "missing"))


# --- caching and the command line --------------------------------------------------------------


def test_a_stored_table_is_reused_without_explaining_again(model, calibration, tmp_path,
                                                           monkeypatch):
    photos = {im.path.stem: im.path for im in load_dataset("wild")}
    args = ("corrrise", model, photos["ardern_1"], photos["ardern_2"])
    first = table_for_pair(*args, calibration=calibration, cache=tmp_path, n=40, seed=0)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_explain(*a, **k):
        raise AssertionError("explained again")

    monkeypatch.setattr(xfr_lib, "explain", no_explain)
    again = table_for_pair(*args, calibration=calibration, cache=tmp_path, n=40, seed=0)
    assert describe(again) == describe(first)
    with pytest.raises(AssertionError, match="explained again"):  # another parameter
        table_for_pair(*args, calibration=calibration, cache=tmp_path, n=41, seed=0)
    stored = next(tmp_path.glob("*.json"))
    stored.write_text(stored.read_text()[:50])  # a torn entry is explained again, not read
    with pytest.raises(AssertionError, match="explained again"):
        table_for_pair(*args, calibration=calibration, cache=tmp_path, n=40, seed=0)


@pytest.fixture
def photos():
    return {im.path.stem: str(im.path) for im in load_dataset("wild")}


def test_xfr_explain_writes_the_table_and_prints_the_paragraph(run, photos, tmp_path):
    r = run("explain", photos["obama_1"], photos["biden_1"], "-p", "n=40", "--out",
            str(tmp_path), "--text")
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "verification_corrrise.json").read_text())
    assert [row["region"] for row in record["words"]["regions"]] == list(TABLE_REGIONS)
    assert record["text"] in r.stdout and "different people" in record["text"]
    assert math.isclose(record["words"]["score"], record["score"])


def test_xfr_ask_answers_with_its_grounding(run, photos):
    r = run("ask", photos["obama_1"], photos["biden_1"], "why did it reject?", "-p", "n=40",
            "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["intent"] == "why" and not out["declined"]
    assert out["table"]["decision"] is False and out["grounding"]["decision"] is False
    assert out["table"]["score"] == out["grounding"]["score"]
    r = run("ask", photos["obama_1"], photos["biden_1"], "how old is he?", "-p", "n=40")
    assert r.returncode == 0 and "can't answer" in r.stdout


def test_xfr_ask_refuses_bad_input_in_one_line(run, photos, tmp_path):
    r = run("ask", photos["obama_1"], photos["biden_1"], "  ")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "question" in r.stderr
    r = run("ask", photos["obama_1"], photos["biden_1"], "why?", "--qa-model",
            str(tmp_path / "nothing"))
    assert r.returncode == 2 and "--qa-model" in r.stderr
    r = run("ask", photos["obama_1"], photos["biden_1"], "why?", "--method", "nonsense")
    assert r.returncode == 2 and "nonsense" in r.stderr
