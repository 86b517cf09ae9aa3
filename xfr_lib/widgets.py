"""Interactive controls for workshops: pick a pair and a method, move the threshold, ask.

:class:`PairExplorer` shows explanations computed beforehand (so every control answers at
once, even on a 2-core laptop): a pair picker, a method picker, a threshold slider that
changes the decision, the confidence and the paragraph (:func:`xfr_lib.words.describe`), and
a question box answered by :func:`xfr_lib.words.ask`. It works live in Jupyter; in the built
book the controls show the state the chapter left them in (the widget state is stored when the
chapter is executed), since a static page has no kernel to run the callbacks.

    explorer = PairExplorer.build(model, {"macron_1 / macron_2": (a, b)}, ["corrrise"])
    explorer.widget          # display it (the last expression of a cell)
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from xfr_lib.errors import XfrError


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class PairExplorer:
    """Controls over precomputed explanations (see the module doc).

    Args:
        tables: ``(pair label, method) -> PairTable``.
        figures: ``(pair label, method) -> PNG bytes`` of the explanation's maps.
        matcher: the question matcher (default :func:`xfr_lib.words.load_matcher`).
        question: the question box's first question.
    """

    def __init__(self, tables: Mapping[tuple[str, str], Any],
                 figures: Mapping[tuple[str, str], bytes], matcher: Any = None,
                 question: str = "Why?"):
        import ipywidgets as w

        from xfr_lib.words import load_matcher

        if not tables:
            raise XfrError("PairExplorer needs at least one explained pair")
        self.tables, self.figures = dict(tables), dict(figures)
        self.matcher = matcher or load_matcher()
        pairs = list(dict.fromkeys(p for p, _ in self.tables))
        methods = list(dict.fromkeys(m for _, m in self.tables))
        scores = [t.score for t in self.tables.values()]
        first = self.tables[(pairs[0], methods[0])]
        lo = min([*scores, first.model_threshold]) - 0.05
        hi = max([*scores, first.model_threshold]) + 0.05
        self.pair = w.Dropdown(options=pairs, description="pair")
        self.method = w.Dropdown(options=methods, description="method")
        self.threshold = w.FloatSlider(value=first.model_threshold, min=round(lo, 3),
                                       max=round(hi, 3), step=0.001, readout_format=".3f",
                                       description="threshold",
                                       layout=w.Layout(width="420px", max_width="100%"))
        self.reset = w.Button(description="model's threshold")
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.text = w.HTML()
        self.question = w.Text(value=question, description="ask", continuous_update=False,
                               layout=w.Layout(width="420px", max_width="100%"))
        self.ask_button = w.Button(description="Ask", button_style="primary")
        self.answer = w.HTML()
        self.last_answer = None
        for control in (self.pair, self.method):
            control.observe(lambda _: self._show_pair(), names="value")
        self.threshold.observe(lambda _: self._show_words(), names="value")
        self.reset.on_click(lambda _: setattr(self.threshold, "value",
                                              self.current_table(model_threshold=True).threshold))
        self.question.observe(lambda _: self.ask(), names="value")  # on Enter
        self.ask_button.on_click(lambda _: self.ask())
        wrap = w.Layout(flex_flow="row wrap")  # rows fold in a narrow column
        self.widget = w.VBox([w.HBox([self.pair, self.method], layout=wrap),
                              w.HBox([self.threshold, self.reset], layout=wrap), self.image,
                              self.text, w.HBox([self.question, self.ask_button], layout=wrap),
                              self.answer])
        self._show_pair()

    @classmethod
    def build(cls, model: Any, pairs: Mapping[str, tuple[Any, Any]], methods: Sequence[str],
              method_params: Mapping[str, Mapping[str, Any]] | None = None,
              calibration: Any = None, **kwargs: Any) -> PairExplorer:
        """Explain every pair with every method, then build the controls.

        Args:
            model: the face model.
            pairs: label -> (image A, image B).
            methods: explanation methods.
            method_params: per method, its parameters.
            calibration: the model's calibration (default :func:`xfr_lib.words.calibrate`).
            **kwargs: passed to the constructor (``matcher``, ``question``).
        """
        import xfr_lib
        from xfr_lib.plot import plot_verification
        from xfr_lib.words import calibrate, pair_table

        cal = calibration or calibrate(model, progress=False)
        tables, figures = {}, {}
        for label, (a, b) in pairs.items():
            for method in methods:
                params = (method_params or {}).get(method, {})
                expl = xfr_lib.explain(method, model, a, b, **params)
                tables[(label, method)] = pair_table(expl, cal)
                figures[(label, method)] = _png(plot_verification(expl))
        return cls(tables, figures, **kwargs)

    def current_table(self, model_threshold: bool = False):
        """The selected pair's table at the slider's threshold (or the model's)."""
        table = self.tables[(self.pair.value, self.method.value)]
        return table if model_threshold else table.at_threshold(self.threshold.value)

    def _show_pair(self) -> None:
        key = (self.pair.value, self.method.value)
        if key not in self.tables:
            self.text.value = "<p>This pair was not explained with this method.</p>"
            return
        self.image.value = self.figures[key]
        self._show_words()

    def _show_words(self) -> None:
        from xfr_lib.words import describe

        table = self.current_table()
        rows = table.regions[["region", "similarity", "dissimilarity", "area"]]
        cells = "".join(
            f"<tr><td>{html.escape(r.region)}</td>"
            + "".join(f"<td style='text-align:right'>{f'{100 * v:.0f} %' if math.isfinite(v) else ''}</td>"
                      for v in (r.similarity, r.dissimilarity, r.area)) + "</tr>"
            for r in rows.itertuples())
        self.text.value = (f"<p>{html.escape(describe(table))}</p><table><tr><th>region</th>"
                           f"<th>similarity</th><th>dissimilarity</th><th>area</th></tr>"
                           f"{cells}</table>")
        self.ask()

    def ask(self, question: str | None = None):
        """Answer ``question`` (put into the box) or the box's question; returns the
        :class:`~xfr_lib.words.Answer` (None for an empty box)."""
        from xfr_lib.words import ask

        if question is not None:
            self.question.value = question
        if not self.question.value.strip():
            self.answer.value = ""
            return None
        a = ask(self.current_table(), self.question.value, matcher=self.matcher)
        self.answer.value = (f"<p><b>{html.escape(a.text)}</b><br><small>intent: {a.intent}"
                             f"{' (declined)' if a.declined else ''}, similarity "
                             f"{a.similarity:.2f} to “{html.escape(a.example)}”</small></p>")
        self.last_answer = a
        return a
