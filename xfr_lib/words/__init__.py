"""Words: from an explanation's maps to a region table, a paragraph and answers to questions.

    from xfr_lib.words import ask, calibrate, describe, pair_table

    cal = calibrate(model)                      # the model's genuine/impostor score model
    table = pair_table(expl, cal)               # decision, confidence, region shares
    print(describe(table))                      # a paragraph written from the table
    print(ask(table, "why did it reject?").text)

Private modules: ``_calibration`` (confidence from the distance of the score to the
threshold on a calibrated scale), ``_table`` (the region table of a pair), ``_text`` (the
paragraph), ``_qa`` (intents matched with a sentence-embedding model, answers, refusals, an
optional extractive QA model), ``_questions`` (the evaluation question set).
"""

from xfr_lib.words._calibration import (
    CONFIDENCE_LEVELS,
    PairScores,
    ScoreCalibration,
    calibrate,
    confidence_level,
    fit_calibration,
    labelled_pair_scores,
)
from xfr_lib.words._qa import (
    INTENTS,
    MIN_SIMILARITY,
    OUT_OF_SCOPE,
    REGION_WORDS,
    Answer,
    IntentMatcher,
    ask,
    extract_answer,
    find_image,
    find_number,
    find_region,
    load_matcher,
    table_context,
)
from xfr_lib.words._questions import EVALUATION_QUESTIONS, evaluate_questions
from xfr_lib.words._table import (
    COLUMNS,
    TABLE_REGIONS,
    PairTable,
    pair_table,
    region_columns,
    table_for_pair,
)
from xfr_lib.words._text import describe, num, pct

__all__ = [
    "COLUMNS", "CONFIDENCE_LEVELS", "EVALUATION_QUESTIONS", "INTENTS", "MIN_SIMILARITY",
    "OUT_OF_SCOPE", "REGION_WORDS", "TABLE_REGIONS", "Answer", "IntentMatcher", "PairScores",
    "PairTable", "ScoreCalibration", "ask", "calibrate", "confidence_level", "describe",
    "evaluate_questions", "extract_answer", "find_image", "find_number", "find_region",
    "fit_calibration", "labelled_pair_scores", "load_matcher", "num", "pair_table", "pct",
    "region_columns", "table_context", "table_for_pair",
]
