"""One look for every figure of the book: a seaborn theme and a colour-blind-safe palette."""

from __future__ import annotations

import seaborn as sns

#: seaborn palette used for models, classes and methods in all plots.
PALETTE = "colorblind"


def set_theme(context: str = "notebook", font_scale: float = 1.0) -> None:
    """Apply xfr's plotting theme to matplotlib globally (call once, e.g. at notebook top).

    Args:
        context: seaborn context ("paper", "notebook", "talk", "poster").
        font_scale: multiplier for font sizes.
    """
    sns.set_theme(context=context, style="whitegrid", palette=PALETTE, font_scale=font_scale)


def palette(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct RGB colours of the shared palette (cycles beyond its 10 colours)."""
    base = sns.color_palette(PALETTE)
    return [base[i % len(base)] for i in range(n)]
