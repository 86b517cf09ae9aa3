"""A question set for evaluating the intent matcher: sentences that are not among the
matcher's examples (:data:`INTENTS`), each with the intent a person would mean by it,
paraphrases of one another grouped by intent, and out-of-scope questions that must be
declined. :func:`evaluate_questions` scores a matcher on it.
"""

from __future__ import annotations

import pandas as pd

from xfr_lib.words._qa import OUT_OF_SCOPE, IntentMatcher

#: (question, expected intent). Written apart from the examples of :data:`INTENTS`.
EVALUATION_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("Is it the same guy in both pictures?", "decision"),
    ("Did the algorithm think these images show one person?", "decision"),
    ("Match or no match?", "decision"),
    ("So, are they identical according to the system?", "decision"),
    ("Why was the pair rejected?", "why"),
    ("What led the system to its verdict?", "why"),
    ("Can you explain why it decided that?", "why"),
    ("Why does the model think they are not the same person?", "why"),
    ("Why were the faces accepted as a match?", "why"),
    ("What similarity value did the comparison give?", "score"),
    ("Tell me the matching score", "score"),
    ("What number did the model output for this pair?", "score"),
    ("What is the acceptance threshold?", "threshold"),
    ("Where is the cut-off for a match?", "threshold"),
    ("Which score is needed for the system to say yes?", "threshold"),
    ("How sure are you about this result?", "confidence"),
    ("Is the decision trustworthy or borderline?", "confidence"),
    ("How much confidence does the model have?", "confidence"),
    ("Was it a narrow decision?", "confidence"),
    ("How much did the lips count?", "region"),
    ("Was the nose important for the decision?", "region"),
    ("Did the jaw play any part?", "region"),
    ("What was the contribution of the eyebrows?", "region"),
    ("Tell me about the eyes", "region"),
    ("Which area of the face was most decisive?", "most"),
    ("What did the system focus on most?", "most"),
    ("Which feature was the most influential?", "most"),
    ("Which area contributed the least?", "least"),
    ("What part of the face was the least relevant?", "least"),
    ("Which region did the system barely use?", "least"),
    ("In which regions were the two faces alike?", "similar"),
    ("What do the two faces have in common?", "similar"),
    ("Which features look the same in both photos?", "similar"),
    ("Where do the faces differ?", "different"),
    ("Which features look different?", "different"),
    ("What distinguishes the two faces?", "different"),
    ("What XAI method produced these heatmaps?", "method"),
    ("How was this explanation generated?", "method"),
    ("Which algorithm made the saliency maps?", "method"),
    ("Would a threshold of 0.4 change the outcome?", "what_if"),
    ("If the cut-off were 0.7, would they still match?", "what_if"),
    ("What happens with a lower threshold?", "what_if"),
    ("What kinds of questions do you understand?", "help"),
    ("What can you tell me?", "help"),
    ("What age is the woman?", OUT_OF_SCOPE),
    ("What is the name of this man?", OUT_OF_SCOPE),
    ("Which country is this person from?", OUT_OF_SCOPE),
    ("Is the person smiling because she is happy?", OUT_OF_SCOPE),
    ("Is this a male or a female?", OUT_OF_SCOPE),
    ("What is the capital of France?", OUT_OF_SCOPE),
    ("Who took these photographs?", OUT_OF_SCOPE),
    ("Does this person have a criminal record?", OUT_OF_SCOPE),
    ("What will the weather be tomorrow?", OUT_OF_SCOPE),
    ("Is he wearing a hat?", OUT_OF_SCOPE),
    ("What is this person's job?", OUT_OF_SCOPE),
    ("Can you write me a poem?", OUT_OF_SCOPE),
)


def evaluate_questions(matcher: IntentMatcher,
                       questions: tuple[tuple[str, str], ...] = EVALUATION_QUESTIONS
                       ) -> pd.DataFrame:
    """Match every question and compare with its expected intent.

    Returns:
        One row per question: ``question``, ``expected``, ``matched``, ``similarity``,
        ``example`` (the nearest example) and ``correct``.
    """
    matched = matcher.match([q for q, _ in questions])
    rows = [{"question": q, "expected": e, "matched": m, "similarity": s, "example": x,
             "correct": m == e} for (q, e), (m, s, x) in zip(questions, matched, strict=True)]
    return pd.DataFrame(rows)
