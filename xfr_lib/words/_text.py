"""A paragraph about one pair, written from its :class:`PairTable` and nothing else.

Every number in the paragraph is a value of the table, rounded as :func:`pct` and
:func:`num` round it, and every region it names is a row of the table, so the paragraph stays
right when the pair, the method or the threshold changes (the tests check both).
"""

from __future__ import annotations

import math

from xfr_lib.evaluate import CONCENTRATED
from xfr_lib.faces import OUTSIDE
from xfr_lib.words._table import PairTable

#: How many regions a sentence names at most.
TOP = 2


def pct(share: float) -> str:
    """A share as the paragraph writes it: ``0.314 -> "31 %"``."""
    return f"{round(100 * share)} %"


def num(x: float, digits: int = 3) -> str:
    """A score or threshold as the paragraph writes it (``digits`` decimals)."""
    return f"{x:.{digits}f}"


def confidence_words(confidence: float) -> str:
    """A confidence as the paragraph writes it: one decimal, and "over 99.9 %" rather than a
    rounded "100 %" that would claim certainty."""
    return "over 99.9 %" if confidence >= 0.999 else f"{100 * confidence:.1f} %"


def on_region(region: str) -> str:
    """``"nose" -> "on the nose"``; ``"outside the face"`` stays as it is."""
    return region if region == OUTSIDE else f"on the {region}"


def region_words(region: str) -> str:
    """``"nose" -> "the nose"``; ``"outside the face"`` stays as it is."""
    return region if region == OUTSIDE else f"the {region}"


def join(items: list[str]) -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def decision_words(decision: bool) -> str:
    return "the same person" if decision else "different people"


def decision_sentence(table: PairTable) -> str:
    """Score, threshold, decision and confidence in one sentence."""
    side = "above" if table.decision else "below"
    return (f"{table.model or 'The model'} scored the pair {num(table.score)}, {side} its "
            f"threshold of {num(table.threshold)}, and decided that the two faces show "
            f"{decision_words(table.decision)}, with {table.level} confidence "
            f"({confidence_words(table.confidence)}; {abs(table.evidence):.1f} nats of evidence from the "
            f"threshold on the calibrated scale).")


def kind_sentence(table: PairTable, kind: str) -> str:
    """Where the similarity (or dissimilarity) lay: the top regions and their shares."""
    if not table.has(kind):
        return f"The {table.method} explanation found no {kind} between the faces."
    top = table.ranked(kind).head(TOP)
    parts = [f"{on_region(r.region)} ({pct(getattr(r, kind))})" for r in top.itertuples()]
    return f"Most of the {kind} lay {join(parts)}."


def focus_sentence(table: PairTable) -> str | None:
    """The region that held the most for its size, when it is not already named first."""
    face = table.regions[(table.regions["region"] != OUTSIDE) & table.regions["ratio"].notna()]
    if face.empty:
        return None
    best = face.sort_values("ratio", ascending=False, kind="stable").iloc[0]
    if best["ratio"] < CONCENTRATED:
        return None
    return (f"For its size, {region_words(best['region'])} mattered most: it holds "
            f"{pct(best['importance'])} of the explanation on {pct(best['area'])} of the chip.")


def least_sentence(table: PairTable) -> str | None:
    """The face region that mattered least."""
    face = table.ranked("importance")
    face = face[face["region"] != OUTSIDE]
    if face.empty or not math.isfinite(face["importance"].iloc[-1]):
        return None
    last = face.iloc[-1]
    return (f"{region_words(last['region']).capitalize()} mattered least "
            f"({pct(last['importance'])}).")


def describe(table: PairTable) -> str:
    """The paragraph: decision and confidence, where the similarity and the dissimilarity lay,
    the region that stood out for its size and the one that mattered least."""
    sentences = [decision_sentence(table), kind_sentence(table, "similarity"),
                 kind_sentence(table, "dissimilarity"), focus_sentence(table),
                 least_sentence(table)]
    return " ".join(s for s in sentences if s)
