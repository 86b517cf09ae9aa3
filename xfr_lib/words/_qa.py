"""Questions about a pair answered from its :class:`PairTable`, or declined.

No extractive question-answering model can be had offline, so a question is matched to one of
the **intents** this module can answer (:data:`INTENTS`: the decision, why, the score, the
threshold, how sure, one region, the most or least important region, what matched, what
differed, the method, a what-if threshold, help) by a sentence-embedding model
(all-MiniLM-L6-v2, asset ``minilm``): the question's cosine similarity to each intent's example
questions, nearest example wins. Every answer is built from the table, and the data it used
is returned with it.

A question is **declined**, not answered, when its nearest example is one of the
out-of-scope examples (who the person is, age, sex, emotion, anything the explanation does not
measure), when no example is closer than :data:`MIN_SIMILARITY`, or when it asks about a part
of the face the table has no region for. Region and image words ("nose", "lips", "jaw",
"hair"; "first image", "B") are read from the question by keywords (:data:`REGION_WORDS`).

A user with a local extractive QA model (a ``transformers`` question-answering folder, e.g. a
SQuAD-tuned BERT) can pass it as ``qa_model``: in-scope questions are then answered by that
model from a context written from the table (:func:`table_context`), out-of-scope ones are
still declined.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xfr_lib.errors import XfrError
from xfr_lib.faces import OUTSIDE
from xfr_lib.words._table import TABLE_REGIONS, PairTable
from xfr_lib.words._text import (
    confidence_words,
    decision_words,
    describe,
    join,
    kind_sentence,
    num,
    on_region,
    pct,
    region_words,
)

OUT_OF_SCOPE = "out_of_scope"
#: A question closer than this (cosine) to no example is declined as out of scope.
MIN_SIMILARITY = 0.45
#: An extractive QA model's answer below this score is declined.
MIN_QA_SCORE = 0.1

#: Example questions of every intent (the matcher's references; the chapter's evaluation
#: questions are different sentences, :data:`xfr_lib.words.EVALUATION_QUESTIONS`).
INTENTS: dict[str, tuple[str, ...]] = {
    "decision": (
        "Are these two photos of the same person?", "Did the system say it is a match?",
        "What was the decision?", "Do the faces match?", "Is it a match or not?",
        "Did the model accept the pair?", "Same person or not?",
        "What did the face recognition system conclude?"),
    "why": (
        "Why did it reject the pair?", "Why did the model accept?", "Why do they match?",
        "Why is this not a match?", "Explain the decision", "What made the system decide this?",
        "Why did it say they are different people?", "What is the reason for the result?",
        "Summarise the explanation", "Why did the system accept these faces?", "Why?",
        "How come?"),
    "score": (
        "What is the similarity score?", "What was the score?",
        "How similar are the faces numerically?", "What cosine similarity did the model compute?",
        "Give me the score", "What is the cosine score of this pair?",
        "How high was the score?"),
    "threshold": (
        "What is the threshold?", "What is the decision threshold?",
        "Which cut-off does the model use?", "Above which score does it accept?",
        "What value must the score reach to match?", "Where is the decision boundary?",
        "What score counts as a match?"),
    "confidence": (
        "How confident is the model?", "How sure is the system?",
        "How certain is the decision?", "Could the decision be wrong?",
        "How reliable is this result?", "Is it a close call?",
        "Was it close to the threshold?", "Is this a borderline case?"),
    "region": (
        "How important was the nose?", "Did the eyes matter?", "What role did the mouth play?",
        "How much did the forehead contribute?", "Was the chin relevant?",
        "What about the cheeks?", "How much weight did the eyebrows get?"),
    "most": (
        "Which region mattered most?", "What was the most important part of the face?",
        "Which facial feature did the model rely on most?", "Where did the model look the most?",
        "What region had the biggest influence?"),
    "least": (
        "Which region mattered least?", "What was the least important region?",
        "Which part of the face did the model ignore?",
        "Which feature had the smallest influence?", "Where did the model look the least?"),
    "similar": (
        "Which regions looked alike?", "What was similar between the faces?",
        "Where do the two faces agree?", "Which parts matched?",
        "What made the faces look similar?"),
    "different": (
        "Which regions were different?", "What was different between the faces?",
        "Where do the two faces disagree?", "Which parts did not match?",
        "What made the faces look dissimilar?",
        "What are the differences between the two faces?"),
    "method": (
        "Which explanation method was used?", "How was the heat map computed?",
        "What technique produced the explanation?", "How were the maps made?",
        "What parameters did the explanation use?", "How did you compute the explanation?"),
    "what_if": (
        "Would it be a match with a threshold of 0.5?", "What if the threshold were 0.3?",
        "Does the decision change at a threshold of 0.6?",
        "With a stricter threshold would it still accept?",
        "At what threshold would the decision flip?"),
    "help": (
        "What can I ask?", "What questions can you answer?", "Help",
        "What do you know about this pair?"),
    OUT_OF_SCOPE: (
        "How old is this person?", "What is his name?", "Who is in the picture?",
        "Is she a man or a woman?", "What is their ethnicity?", "Are they happy?",
        "Where was the photo taken?", "When was this picture taken?", "Is this person famous?",
        "What's the weather like today?", "Tell me a joke", "Is this person trustworthy?",
        "Does he wear glasses?", "What colour is her hair?", "Are they related?",
        "Is this person a criminal?", "What camera took these photos?"),
}

#: Words of a question that name a region of the table (whole words, case-insensitive).
REGION_WORDS: dict[str, tuple[str, ...]] = {
    "brows": ("brow", "brows", "eyebrow", "eyebrows"),
    "eyes": ("eye", "eyes", "eyelid", "eyelids", "iris", "pupils"),
    "nose": ("nose", "nostril", "nostrils", "nasal"),
    "mouth": ("mouth", "lip", "lips", "teeth", "smile"),
    "cheeks": ("cheek", "cheeks", "cheekbone", "cheekbones", "temple", "temples"),
    "forehead": ("forehead",),
    "chin": ("chin", "jaw", "jawline"),
    OUTSIDE: ("hair", "ear", "ears", "background", "neck", "outside"),
}
#: Face parts a user may name that the table has no region for.
UNKNOWN_PARTS = ("beard", "moustache", "mustache", "glasses", "freckles", "scar", "tattoo",
                 "earring", "makeup", "wrinkles", "skin")
_IMAGE_WORDS = {"A": r"\b(first|image a|photo a|picture a|left)\b",
                "B": r"\b(second|image b|photo b|picture b|right)\b"}
# Opposites that sentence embeddings place close together ("most" / "least important"),
# settled by words: (intents, pattern of the second, pattern of the first), second tried first.
_POLARITY = (
    (("most", "least"), r"\b(least|smallest|lowest|ignor\w*|barely|minimal|weakest)\b",
     r"\b(most|biggest|largest|main|strongest|highest)\b"),
    (("similar", "different"),
     (r"\b(differ\w*|dissimilar\w*|distinguish\w*|mismatch\w*|unlike|not match\w*|"
     r"don't match|didn't match)\b"),
     r"\b(alike|similar\w*|same|common|agree\w*|match\w*|resembl\w*)\b"),
)
_THRESHOLD_WORDS = r"\b(threshold|cut-?off|boundary)\b"
_WHAT_IF_WORDS = r"\b(if|would|lower|higher|stricter|looser|raise[ds]?|change[ds]?)\b"
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d*\.\d+|(?<![\w.])[-+]?\d+(?![\w.])")


def settle(intent: str, question: str) -> str:
    """The intent after the keyword rules: opposites (most / least, similar / different) by
    their words, and a question about the threshold with a number or a condition ("if",
    "would", "lower") is a what-if."""
    q = question.lower()
    for pair, second, first in _POLARITY:
        if intent in pair:
            if re.search(second, q):
                return pair[1]
            if re.search(first, q):
                return pair[0]
    if (intent in ("threshold", "decision", "confidence") and re.search(_THRESHOLD_WORDS, q)
            and (find_number(q) is not None or re.search(_WHAT_IF_WORDS, q))):
        return "what_if"
    return intent


def find_region(question: str) -> str | None:
    """The table region a question names (:data:`REGION_WORDS`), or None."""
    words = set(re.findall(r"[a-z]+", question.lower()))
    for region, keys in REGION_WORDS.items():
        if words & set(keys):
            return region
    return None


def find_image(question: str) -> str | None:
    """"A" or "B" when the question is about one image ("in the first photo"), else None."""
    q = question.lower()
    hits = [image for image, pattern in _IMAGE_WORDS.items() if re.search(pattern, q)]
    return hits[0] if len(hits) == 1 else None


def find_number(question: str) -> float | None:
    """The first number in a question ("a threshold of 0.5" -> 0.5), or None."""
    m = _NUMBER.search(question)
    return float(m.group()) if m else None


@dataclass
class Answer:
    """An answer, or a refusal, and what it rests on.

    Attributes:
        question: the question as asked.
        intent: the matched intent (a key of :data:`INTENTS`), ``"extractive"`` when a QA model
            answered.
        similarity: cosine of the question to the nearest example of its intent.
        example: that nearest example.
        text: the answer.
        declined: True when the question was not answered (out of scope).
        grounding: the values of the table the answer used.
    """

    question: str
    intent: str
    similarity: float
    example: str
    text: str
    declined: bool = False
    grounding: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "intent": self.intent,
                "similarity": self.similarity, "example": self.example, "answer": self.text,
                "declined": self.declined, "grounding": self.grounding}


class IntentMatcher:
    """Nearest-example intent matching with a sentence-embedding model.

    Args:
        encoder: an object with ``encode(list[str]) -> [N, D]`` (a ``SentenceTransformer``).
        intents: intent -> example questions (default :data:`INTENTS`).
        min_similarity: below this cosine every question is out of scope.
    """

    def __init__(self, encoder: Any, intents: dict[str, tuple[str, ...]] | None = None,
                 min_similarity: float = MIN_SIMILARITY):
        self.encoder = encoder
        self.intents = dict(intents or INTENTS)
        self.min_similarity = float(min_similarity)
        self.examples = [q for qs in self.intents.values() for q in qs]
        self.labels = [name for name, qs in self.intents.items() for _ in qs]
        self._vectors = self._encode(self.examples)

    def _encode(self, texts: list[str]) -> np.ndarray:
        v = np.asarray(self.encoder.encode(list(texts)), dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def match(self, questions: str | list[str]) -> list[tuple[str, float, str]]:
        """``(intent, cosine, nearest example)`` of each question; the intent is
        :data:`OUT_OF_SCOPE` below ``min_similarity``, and in scope it goes through
        :func:`settle`."""
        many = [questions] if isinstance(questions, str) else list(questions)
        sims = self._encode(many) @ self._vectors.T
        out = []
        for row in sims:
            k = int(np.argmax(row))
            intent = self.labels[k] if row[k] >= self.min_similarity else OUT_OF_SCOPE
            if intent != OUT_OF_SCOPE:
                intent = settle(intent, many[len(out)])
            out.append((intent, float(row[k]), self.examples[k]))
        return out


@functools.cache
def load_matcher(device: str = "cpu") -> IntentMatcher:
    """The default matcher: all-MiniLM-L6-v2 from the manifest (asset ``minilm``), offline;
    loaded once per process."""
    from xfr_lib.data import asset_dir

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder: never ask the hub
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - a dependency of xfr
        raise XfrError("sentence-transformers is not installed; run 'make setup'") from exc
    hf_logging.disable_progress_bar()  # a bar per load of a 90 MB model is noise
    encoder = SentenceTransformer(str(asset_dir("minilm")), device=device)
    return IntentMatcher(encoder)


def table_context(table: PairTable) -> str:
    """The text an extractive QA model reads: the paragraph and one sentence per region."""
    lines = [describe(table), f"The threshold is {num(table.threshold)}.",
             f"The score is {num(table.score)}."]
    for r in table.regions.itertuples():
        parts = [f"{pct(getattr(r, k))} of the {k}" for k in ("similarity", "dissimilarity")
                 if np.isfinite(getattr(r, k))]
        if parts:
            lines.append(f"{region_words(r.region).capitalize()} held {join(parts)}.")
    return " ".join(lines)


@functools.cache
def _qa_model(path: str):
    """(tokenizer, model) of a local extractive QA folder, loaded once."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    if not os.path.isdir(path):
        raise XfrError(f"QA model folder {path!r} not found; pass a local transformers "
                       f"question-answering model folder (e.g. a SQuAD-tuned BERT)")
    try:
        return (AutoTokenizer.from_pretrained(path),
                AutoModelForQuestionAnswering.from_pretrained(path).eval())
    except (OSError, ValueError, KeyError) as exc:
        raise XfrError(f"{path} is not a question-answering model transformers can load: "
                       f"{str(exc).splitlines()[0]}") from None


def extract_answer(path: str, question: str, context: str,
                   max_tokens: int = 30) -> tuple[str, float]:
    """The best span of ``context`` for ``question`` by an extractive QA model, and its score.

    Transformers 5 has no question-answering pipeline, so this is the standard decoding: the
    span (within the context, at most ``max_tokens`` tokens, start <= end) that maximises
    p(start) * p(end) under the model's start and end logits.
    """
    import torch

    tokenizer, model = _qa_model(str(path))
    enc = tokenizer(question, context, return_tensors="pt", truncation="only_second",
                    max_length=512, return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0]
    in_context = torch.tensor([s == 1 for s in enc.sequence_ids(0)])
    with torch.no_grad():
        out = model(**enc)
    p_start = out.start_logits[0].masked_fill(~in_context, -1e9).softmax(-1)
    p_end = out.end_logits[0].masked_fill(~in_context, -1e9).softmax(-1)
    scores = torch.triu(p_start[:, None] * p_end[None, :]).tril(max_tokens - 1)
    k = int(scores.argmax())
    start, end = divmod(k, scores.shape[1])
    return context[int(offsets[start][0]):int(offsets[end][1])], float(scores.flatten()[k])


def _region_answer(table: PairTable, region: str, image: str | None) -> tuple[str, dict]:
    row = table.row(region)
    rank = table.ranked("importance")["region"].tolist()
    place = rank.index(region) + 1 if region in rank else None
    name = region_words(region)
    parts = []
    for kind in ("similarity", "dissimilarity"):
        col = kind if image is None else f"{kind}_{image.lower()}"
        if np.isfinite(row[col]):
            parts.append(f"{pct(row[col])} of the {kind}")
    where = "" if image is None else f" in image {image}"
    if not parts:
        return f"The explanation put no mass on {name}{where}.", {"region": region}
    text = (f"{name.capitalize()} held {join(parts)}{where}, on {pct(row['area'])} of the chip"
            + (f"; it ranks {place} of {len(rank)} regions by importance." if place else "."))
    grounding = {"region": region, "image": image, "area": row["area"], "rank": place,
                 **{c: row[c] for c in ("similarity", "dissimilarity", "importance",
                                        "similarity_a", "similarity_b", "dissimilarity_a",
                                        "dissimilarity_b")}}
    return text, grounding


def _no_region(what: str) -> tuple[str, dict, bool]:
    return ((f"The explanation has no region for {what}; ask about "
            f"{join([region_words(r) for r in TABLE_REGIONS])}."),
            {"regions": list(TABLE_REGIONS)}, True)


def _answer(table: PairTable, intent: str, question: str) -> tuple[str, dict, bool]:
    """(text, grounding, declined) of an in-scope intent."""
    unknown = [w for w in UNKNOWN_PARTS if re.search(rf"\b{w}\b", question.lower())]
    if unknown and find_region(question) is None:
        return _no_region(f"the {unknown[0]}")
    base = {"score": table.score, "threshold": table.threshold, "decision": table.decision}
    same = decision_words(table.decision)
    side = "above" if table.decision else "below"
    if intent == "decision":
        return ((f"The model decided {same}: the score {num(table.score)} is {side} the "
                f"threshold {num(table.threshold)}."), base, False)
    if intent == "why":
        kinds = ("similarity", "dissimilarity") if table.decision else ("dissimilarity",
                                                                       "similarity")
        text = (f"The score {num(table.score)} is {side} the threshold "
                f"{num(table.threshold)}, so the model decided {same}. "
                + " ".join(kind_sentence(table, k) for k in kinds))
        top = {k: table.ranked(k).head(2)[["region", k]].to_dict(orient="records")
               for k in kinds if table.has(k)}
        return text, {**base, "top": top}, False
    if intent == "score":
        return (f"The score (cosine similarity of the two embeddings) is {num(table.score)}.",
                base, False)
    if intent == "threshold":
        return ((f"The threshold is {num(table.threshold)}: the model decides 'same person' "
                f"when the score is at least that."), base, False)
    if intent == "confidence":
        cal = table.calibration
        return ((f"{table.level.capitalize()} confidence ({confidence_words(table.confidence)}): the score "
                f"lies {abs(table.evidence):.1f} nats of evidence {side} the threshold on a "
                f"scale calibrated on {cal.source} ({cal.n_genuine} genuine and "
                f"{cal.n_impostor} impostor pairs)."),
                {**base, "confidence": table.confidence, "evidence": table.evidence,
                 "level": table.level, "calibration": cal.to_dict()}, False)
    if intent in ("region", "most", "least", "similar", "different"):
        region, image = find_region(question), find_image(question)
        if intent == "region" or (region is not None and intent in ("similar", "different")):
            if region is None:
                return _no_region("that part of the face")
            text, grounding = _region_answer(table, region, image)
            return text, {**base, **grounding}, False
        if intent in ("most", "least"):
            ranked = table.ranked("importance")
            ranked = ranked[ranked["region"] != OUTSIDE]
            if ranked.empty:
                return "The explanation has no mass on any region.", base, False
            r = ranked.iloc[0 if intent == "most" else -1]
            text = (f"{region_words(r['region']).capitalize()} mattered "
                    f"{'most' if intent == 'most' else 'least'}: {pct(r['importance'])} of the "
                    f"explanation on {pct(r['area'])} of the chip.")
            return text, {"region": r["region"], "importance": r["importance"],
                          "area": r["area"]}, False
        kind = "similarity" if intent == "similar" else "dissimilarity"
        rows = table.ranked(kind, image).head(3)
        col = kind if image is None else f"{kind}_{image.lower()}"
        return (kind_sentence(table, kind) if image is None else
                f"In image {image}, most of the {kind} lay "
                + join([f"{on_region(r)} ({pct(v)})" for r, v in zip(rows['region'],
                                                                        rows[col])]) + ".",
                {kind: rows[["region", col]].to_dict(orient="records")}, False)
    if intent == "method":
        params = ", ".join(f"{k}={v}" for k, v in table.params.items()
                           if k not in ("progress", "batch_size"))
        return (f"The maps were made by {table.method} ({params}) on {table.model}.",
                {"method": table.method, "params": table.params, "model": table.model}, False)
    if intent == "what_if":
        t = find_number(question)
        if t is None:
            return ((f"The decision flips at the score itself: at any threshold up to "
                    f"{num(table.score)} the model decides 'same person', above it "
                    f"'different people'."), base, False)
        other = table.at_threshold(t)
        return ((f"At a threshold of {num(t)} the model would decide "
                f"{decision_words(other.decision)} (score {num(table.score)}), with "
                f"{other.level} confidence ({confidence_words(other.confidence)})."),
                {**base, "what_if_threshold": t, "what_if_decision": other.decision,
                 "what_if_confidence": other.confidence}, False)
    if intent == "help":
        return (("Ask about the decision and why, the score, the threshold, how sure the model "
                "is, a region (e.g. 'how important was the nose?'), the regions that mattered "
                "most or least, what matched or differed, the method, or another threshold "
                "('would it match at 0.5?')."), {"intents": sorted(INTENTS)}, False)
    raise XfrError(f"unknown intent {intent!r}")  # pragma: no cover - INTENTS is closed


def ask(table: PairTable, question: str, *, matcher: IntentMatcher | None = None,
        qa_model: str | None = None) -> Answer:
    """Answer a question about a pair from its table, or decline (see the module doc).

    Args:
        table: the pair's :func:`pair_table`.
        question: free text.
        matcher: the intent matcher (default :func:`load_matcher`).
        qa_model: folder of a local transformers question-answering model: in-scope
            questions are answered by it from :func:`table_context`.
    """
    if not isinstance(question, str) or not question.strip():
        raise XfrError("ask a question in words, e.g. \"why did it reject?\"")
    matcher = matcher or load_matcher()
    intent, similarity, example = matcher.match(question.strip())[0]
    if intent == OUT_OF_SCOPE:
        return Answer(question, intent, similarity, example,
                      "I can't answer that from this explanation: it only measures how the "
                      "model compared the two faces (the score, the decision and the facial "
                      "regions behind it), not who the people are or anything else about "
                      "them.", declined=True)
    if qa_model is not None:
        context = table_context(table)
        span, score = extract_answer(str(qa_model), question, context)
        declined = score < MIN_QA_SCORE or not span.strip()
        text = "The QA model found no answer in the explanation." if declined else span
        return Answer(question, "extractive", similarity, example, text, declined,
                      {"context": context, "qa_score": score, "matched_intent": intent})
    text, grounding, declined = _answer(table, intent, question)
    return Answer(question, intent, similarity, example, text, declined, grounding)
