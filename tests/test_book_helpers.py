"""The helpers chapters write their sentences with: numbers that refuse NaN, claims that fail
naming their sentence, and region words built from measured shares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xfr_lib.book import Chapter, ClaimError, model_title, number, pct, regions_in_words, words
from xfr_lib.errors import XfrError


@pytest.fixture
def ch(tmp_path):
    return Chapter(tmp_path / "out", setup=False)


def test_claims_pass_or_fail_naming_the_sentence(ch):
    three, two, nan = 3, 2, math.nan
    ch.claim(three > two, "three is more than two")
    with pytest.raises(ClaimError) as info:
        ch.claim(two > three, "two is more than three", "2 vs 3")
    message = str(info.value)
    assert '"two is more than three"' in message and "(2 vs 3)" in message
    assert isinstance(info.value, XfrError) and "\n" not in message
    with pytest.raises(ClaimError, match="nan is fine"):
        ch.claim(nan > 0, "nan is fine")
    assert ch.claims == ["three is more than two", "two is more than three", "nan is fine"]


def test_notes_and_generated_text_refuse_what_the_run_could_not_compute(ch):
    assert ch.note("acc", 0.98765, ".3f") == "0.988"
    with pytest.raises(ClaimError, match="glue:md.*rho.*nan"):
        ch.note("rho", float("nan"), ".2f")
    with pytest.raises(ClaimError, match="inf"):
        ch.note("ratio", np.float64(np.inf))
    with pytest.raises(ClaimError, match="median nan"):
        ch.say("The Spearman correlation has median nan.")
    with pytest.raises(ClaimError):
        number("score nan")
    assert number(3) == "3" and pct(0.5) == "50.0"


def test_outputs_are_written_where_the_chapter_says(ch):
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    ch.save(fig, "figure")
    ch.table(pd.DataFrame({"a": [1.234]}), "tab-x", "A table.")
    assert (ch.out / "figure.png").is_file() and (ch.out / "tab-x.csv").is_file()
    plt.close(fig)


def test_words_and_titles():
    assert words([]) == "" and words(["a"]) == "a" and words(["a", "b"], "or") == "a or b"
    assert words(["a", "b", "c"]) == "a, b and c"
    assert "{cite}" in model_title("sface") and model_title("mine") == "`mine`"


def test_regions_in_words_names_only_concentrated_regions():
    shares = pd.DataFrame({"region": ["eyes", "nose", "cheeks", "outside the face"],
                           "area": [0.05, 0.05, 0.3, 0.6], "mass": [0.3, 0.06, 0.34, 0.3]})
    shares["ratio"] = shares["mass"] / shares["area"]
    text = regions_in_words(shares)
    assert text == "the eyes (30 % of the mass on 5 % of the area)"  # nose 1.2x, cheeks 1.1x
    assert "nose" in regions_in_words(shares, min_ratio=1.0)
    flat = shares.assign(mass=shares["area"], ratio=1.0)
    assert regions_in_words(flat).startswith("no region of the face in particular")
    with pytest.raises(ClaimError, match="empty maps"):
        regions_in_words(shares.assign(mass=np.nan))
