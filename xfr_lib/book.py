"""What a chapter notebook needs besides the library: its outputs, quotable values, checked claims.

A chapter is rerun with other parameters, models and data, so a sentence that reports a result
must follow the numbers of the run it sits in. There are three ways to write one:

* a number in a fixed sentence: ``ch.note("eer", eer, ".2f")`` in code, ``{glue:md}`eer``` in
  the text. A NaN or infinite value fails the chapter instead of printing "nan";
* a sentence whose wording depends on the numbers: build it in code and show it with
  :meth:`Chapter.say` (it renders as part of the text);
* a fixed sentence that states a comparison: guard it with :meth:`Chapter.claim`, which fails
  the chapter (so nbval, CI and the book build) with a message naming the sentence when the
  run's numbers contradict it.

Example:
    >>> ch = Chapter(out_dir=None, setup=False)
    >>> ch.claim(2 > 1, "two is more than one")
    >>> ch.claim(1 > 2, "one is more than two")
    Traceback (most recent call last):
    ...
    xfr_lib.book.ClaimError: the chapter says "one is more than two", but this run's numbers contradict it
    >>> words(["eyes", "nose", "mouth"])
    'eyes, nose and mouth'
    >>> pct(0.1234)
    '12.3'
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from xfr_lib.errors import XfrError

_NOT_A_NUMBER = re.compile(r"\b(nan|inf|-inf)\b", re.IGNORECASE)

#: How the book names each model in its text, with the citation of its paper.
MODEL_TITLES = {
    "dlib_resnet29": "dlib's ResNet-29 face descriptor {cite}`king2009dlib,king2017dlibface`",
    "sface": "SFace {cite}`zhong2021sface`",
}


class ClaimError(XfrError):
    """A sentence of a chapter that this run's numbers contradict, or a value it cannot quote."""


def words(items: Iterable[str], conjunction: str = "and") -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``; ``[]`` -> ``""``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def regions_in_words(shares, k: int = 3, min_ratio: float | None = None) -> str:
    """Where a map's mass concentrates, as text: ``"the eyes (38 % of the mass on 9 % of the
    area) and the nose (21 % on 6 %)"``, from rows with ``region``, ``area``, ``mass`` and
    ``ratio`` (region shares, or their means). Only regions holding at least ``min_ratio``
    times their share of the area are named (default :data:`xfr_lib.evaluate.CONCENTRATED`),
    the largest mass first; when none does, the text says that no region stands out.

    Raises:
        ClaimError: the masses are NaN (the maps were empty).
    """
    from xfr_lib.evaluate import CONCENTRATED, top_regions

    if shares["mass"].isna().all():
        raise ClaimError("a sentence would name the regions of empty maps")
    top = top_regions(shares, k=k, min_ratio=CONCENTRATED if min_ratio is None else min_ratio)
    if not top:
        return "no region of the face in particular (none holds much more than its share)"
    rows = shares.set_index("region")
    parts = [f"the {name} ({pct(rows.loc[name, 'mass'], 0)} % of the mass on "
             f"{pct(rows.loc[name, 'area'], 0)} % of the area)" if n == 0 else
             f"the {name} ({pct(rows.loc[name, 'mass'], 0)} % on {pct(rows.loc[name, 'area'], 0)} %)"
             for n, name in enumerate(top)]
    return words(parts)


def model_title(name: str) -> str:
    """The book's name for a model, with its citation (a model the book does not know: its
    registry name in code style)."""
    return MODEL_TITLES.get(name, f"`{name}`")


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage number: ``0.1234`` -> ``"12.3"``; refuses NaN."""
    return number(100 * float(value), f".{digits}f")


def number(value: Any, fmt: str = "") -> str:
    """``value`` formatted with ``fmt``; refuses NaN and infinity (:class:`ClaimError`)."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        raise ClaimError(f"a sentence would quote {value}; the run could not compute that number")
    text = format(value, fmt) if fmt else str(value)
    if _NOT_A_NUMBER.search(text):
        raise ClaimError(f"a sentence would quote {text!r}; the run could not compute a number "
                         f"in it")
    return text


class Chapter:
    """The helpers of one chapter run: where it saves, what it quotes, what it checks.

    Args:
        out_dir: folder for figures and tables (the chapter's ``out_dir`` parameter); None
            saves nothing.
        threads: torch threads (the book is built on two cores).
        setup: set torch's threads, the plot theme and quiet the notebook's warnings.
    """

    def __init__(self, out_dir: str | Path | None = ".", threads: int = 2,
                 setup: bool = True) -> None:
        self.out = None if out_dir is None else Path(out_dir)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.claims: list[str] = []
        if setup:
            import torch

            from xfr_lib.plot import set_theme

            torch.set_num_threads(threads)
            set_theme()
            # tqdm warns once on import when ipywidgets is missing; progress bars are off.
            warnings.filterwarnings("ignore", message="IProgress not found")

    def elapsed(self) -> float:
        """Seconds since the chapter started."""
        return time.perf_counter() - self.started

    def save(self, fig, name: str) -> None:
        """Write a figure to ``<out>/<name>.png`` (the book shows the cell's own output)."""
        if self.out is not None:
            fig.savefig(self.out / f"{name}.png", dpi=150, bbox_inches="tight")

    def table(self, frame, name: str, caption: str, floatfmt: str = ".2f") -> None:
        """Show a numbered, referable MyST table and save it as ``<out>/<name>.csv``."""
        from IPython.display import Markdown, display

        if self.out is not None:
            frame.to_csv(self.out / f"{name}.csv", index=False)
        body = frame.to_markdown(index=False, floatfmt=floatfmt)
        display(Markdown(f"```{{table}} {caption}\n:name: {name}\n\n{body}\n```"))

    def note(self, key: str, value: Any, fmt: str = "") -> str:
        """Make ``value`` quotable in the text as ``{glue:md}`key```; return its text.

        Raises:
            ClaimError: the value is NaN or infinite (the message names ``key``).
        """
        from IPython.display import Markdown
        from myst_nb import glue

        try:
            text = number(value, fmt)
        except ClaimError as exc:
            raise ClaimError(f"{{glue:md}}`{key}`: {exc}") from None
        glue(key, Markdown(text), display=False)
        return text

    def say(self, text: str) -> None:
        """Show ``text`` (MyST markdown built from the run's numbers) as part of the chapter.

        Raises:
            ClaimError: the text quotes "nan" or "inf".
        """
        from IPython.display import Markdown, display

        if _NOT_A_NUMBER.search(text):
            raise ClaimError(f"a generated sentence quotes a number the run could not compute: "
                             f"{_shorten(text)!r}")
        display(Markdown(text))

    def claim(self, condition: Any, sentence: str, detail: str = "") -> None:
        """Check that ``condition`` holds for the sentence the text states; fail if not.

        Args:
            condition: the comparison the sentence rests on (NaN comparisons are False).
            sentence: the sentence of the text (or enough of it to find it).
            detail: the numbers behind the condition, added to the message.

        Raises:
            ClaimError: ``condition`` is false; the message quotes the sentence.
        """
        self.claims.append(sentence)
        if not bool(condition):
            extra = f" ({detail})" if detail else ""
            raise ClaimError(f'the chapter says "{sentence}", but this run\'s numbers '
                             f"contradict it{extra}")


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
