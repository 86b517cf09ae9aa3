"""Deletion and Insertion: how fast the decisions fall or come back as a map's pixels go or return.

The CorrRISE papers' evaluation (after Petsiuk et al.'s RISE metrics): rank each chip's pixels
by the explanation map; for the fractions ``p = 0, 1/n, ..., 1`` *delete* the top ``p`` of the
pixels (replace them with a fill, :mod:`xfr_lib.evaluate._fills`) or *insert* them into a plain
image (every other pixel replaced); re-run the recognition with the threshold fixed from the
unmodified data, and take the area under the rate of correct decisions against ``p``
(:func:`curve_area`, x 100). A faithful map makes the decisions fail fast when its pixels are
deleted (low Deletion) and come back fast when they are inserted (high Insertion).

What xfr fixes where the papers leave it open (each is a parameter):

- **The quantity.** The papers evaluate similarity maps on genuine pairs: the rate is the
  acceptance rate. xfr also evaluates dissimilarity maps on impostor pairs, where the rate is
  the *correct-rejection rate*: deleting what makes two people different should make the
  model accept them, and inserting it into a plain pair (which the model accepts: two
  identical plain images) should make it reject them. Both are "the rate of correct
  decisions", so lower Deletion and higher Insertion are better for both.
- **The x range.** ``n + 1`` points from ``p = 0`` to ``p = 1`` (the paper's Algorithm 2
  starts at ``p = 1/n``; a public re-implementation uses 0, 10, ..., 100 %), trapezoid rule,
  divided by the range, so a constant curve at rate ``c`` has area ``100 c`` exactly.
- **Which images** (``images``): ``"both"`` modifies each image by its own map (the papers
  modify "the dataset"); ``"one"`` modifies only image B (the probe) and keeps A clean, as a
  public re-implementation does.
- **Ties** (``ties``): a sparse map (the positive part of a signed map is 0 on about half
  the chip) ranks many pixels equally, and the order among them decides which are deleted
  first. ``"random"`` breaks ties in a seeded random order (the neutral choice); ``"signed"``
  breaks them by the signed map (similarity minus dissimilarity for a similarity map), so the
  pixels that argue least against the map's kind come first, and only then at random.
- **Seeds.** The random tie order and the ROAD fill's noise come from a seed derived from
  the run's seed and the pair's label (:func:`pair_seed`), so a pair gets the same curve in
  any order, in a resumed run and on another worker.

Identification (:func:`identification_curve`): the probe alone is modified, by its similarity
map against its true mate, and the rate is rank-1 identification over a fixed gallery.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xfr_lib.errors import XfrError
from xfr_lib.evaluate._fills import check_evaluation_fill, fill_removed
from xfr_lib.models import embed

#: What is done to the top pixels of the map.
MODES = ("deletion", "insertion")
#: How equal map values are ordered (see the module docstring).
TIE_RULES = ("random", "signed")
#: Which images of a pair are modified.
MODIFIED_IMAGES = ("both", "one")


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices``; else a one-line :class:`XfrError`."""
    if value not in choices:
        raise XfrError(f"{what} {value!r} is unknown; use one of {', '.join(choices)}")
    return value


def pair_seed(seed: int, label: str) -> int:
    """A seed for one pair from the run's seed and the pair's label (order-independent)."""
    return (int(seed) * 1_000_003 + zlib.crc32(str(label).encode())) % 2**32


def step_fractions(steps: int) -> np.ndarray:
    """The ``steps + 1`` fractions ``0, 1/steps, ..., 1`` of pixels modified."""
    if int(steps) < 1:
        raise XfrError(f"steps={steps}: use at least 1 step (the papers' public version: 10)")
    return np.linspace(0.0, 1.0, int(steps) + 1)


def pixel_order(saliency: np.ndarray, *, ties: str = "random", signed: np.ndarray | None = None,
                seed: int = 0) -> np.ndarray:
    """Flat pixel indices of a map, most important first, with the stated tie rule.

    Args:
        saliency: ``[H, W]`` map (higher = more important).
        ties: ``"random"`` (seeded random order among equal values) or ``"signed"`` (equal
            values ordered by ``signed``, higher first, then at random).
        signed: ``[H, W]`` map that breaks ties for ``ties="signed"``.
        seed: seed of the random order.
    """
    check_choice(ties, TIE_RULES, "tie rule")
    s = np.asarray(saliency, dtype=np.float64)
    if s.ndim != 2 or not np.isfinite(s).all():
        raise XfrError(f"a saliency map must be a finite [H, W] array, got shape {s.shape}")
    shuffle = np.random.default_rng(seed).permutation(s.size)
    keys = [shuffle, -s.ravel()]  # np.lexsort sorts by the last key first
    if ties == "signed":
        if signed is None or np.shape(signed) != s.shape:
            raise XfrError("ties='signed' needs the signed map of the same shape as the map")
        keys.insert(1, -np.asarray(signed, dtype=np.float64).ravel())
    return np.lexsort(keys)


def removal_masks(order: np.ndarray, shape: tuple[int, int], fractions: np.ndarray,
                  mode: str) -> np.ndarray:
    """``[S, H, W]`` bool, True where a pixel is replaced at each fraction.

    Deletion replaces the top ``round(p * H * W)`` pixels of ``order``; insertion keeps them
    and replaces all the others.
    """
    check_choice(mode, MODES, "mode")
    n = int(np.prod(shape))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    counts = np.rint(np.asarray(fractions) * n).astype(np.int64)
    top = rank[None, :] < counts[:, None]
    removed = top if mode == "deletion" else ~top
    return removed.reshape(len(counts), *shape)


def modified_chips(chip: np.ndarray, order: np.ndarray, fractions: np.ndarray, mode: str,
                   fill: str, seed: int) -> np.ndarray:
    """``[S, H, W, 3]`` uint8: ``chip`` with its pixels deleted / inserted at each fraction."""
    masks = removal_masks(order, chip.shape[:2], fractions, mode)
    return fill_removed(chip, masks, fill, seed=seed)


def curve_area(fractions: Sequence[float], rates: Sequence[float]) -> float:
    """Area under ``rates`` against ``fractions`` x 100, divided by the x range (trapezoid).

    A constant rate ``c`` gives ``100 c`` whatever the fractions.
    """
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(rates, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or not x[-1] > x[0]:
        raise XfrError("a curve needs at least two increasing fractions and one rate per fraction")
    return float(100.0 * np.trapezoid(y, x) / (x[-1] - x[0]))


def _embed_chips(model, chips: np.ndarray, batch_size: int) -> np.ndarray:
    return embed(model, chips, batch_size=batch_size).numpy().astype(np.float64)


def verification_curve(model, chip_a: np.ndarray, chip_b: np.ndarray, map_a: np.ndarray,
                       map_b: np.ndarray, same: bool, *, mode: str, threshold: float,
                       steps: int = 10, fill: str = "zero", images: str = "both",
                       ties: str = "random", signed_a: np.ndarray | None = None,
                       signed_b: np.ndarray | None = None, seed: int = 0,
                       batch_size: int = 32) -> pd.DataFrame:
    """One pair's Deletion or Insertion curve.

    Args:
        model: the face model.
        chip_a, chip_b: the aligned ``HxWx3`` uint8 chips.
        map_a, map_b: the maps that rank their pixels (similarity maps for a genuine pair,
            dissimilarity maps for an impostor pair, in the papers' and xfr's setting).
        same: the pair is genuine.
        mode: ``"deletion"`` or ``"insertion"``.
        threshold: the decision threshold, fixed from the unmodified data.
        steps: number of steps ``n``; the curve has ``n + 1`` points from 0 to 1.
        fill: what replaces pixels (:data:`xfr_lib.evaluate._fills.EVALUATION_FILLS`).
        images: ``"both"`` or ``"one"`` (only B is modified).
        ties: tie rule (:func:`pixel_order`); ``signed_a``/``_b`` for ``"signed"``.
        seed: seed of this pair's random tie order and fill noise (see :func:`pair_seed`).
        batch_size: chips per forward pass.

    Returns:
        One row per fraction: ``step``, ``fraction``, ``score`` (cosine of the modified
        pair), ``accepted`` and ``correct`` (the decision is the pair's truth).
    """
    check_choice(mode, MODES, "mode")
    check_choice(images, MODIFIED_IMAGES, "images")
    fill = check_evaluation_fill(fill)
    fractions = step_fractions(steps)
    seeds = np.random.SeedSequence(seed).generate_state(4)
    b = modified_chips(chip_b, pixel_order(map_b, ties=ties, signed=signed_b, seed=int(seeds[0])),
                       fractions, mode, fill, int(seeds[1]))
    if images == "both":
        a = modified_chips(chip_a, pixel_order(map_a, ties=ties, signed=signed_a,
                                               seed=int(seeds[2])),
                           fractions, mode, fill, int(seeds[3]))
        emb = _embed_chips(model, np.concatenate([a, b]), batch_size)
        emb_a, emb_b = emb[: len(a)], emb[len(a):]
    else:
        emb = _embed_chips(model, np.concatenate([chip_a[None], b]), batch_size)
        emb_a, emb_b = emb[:1], emb[1:]
    score = np.einsum("sd,sd->s", np.broadcast_to(emb_a, emb_b.shape), emb_b)
    accepted = score >= threshold
    return pd.DataFrame({"step": np.arange(len(fractions)), "fraction": fractions,
                         "score": score, "accepted": accepted,
                         "correct": accepted == bool(same)})


def identification_curve(model, chip: np.ndarray, saliency: np.ndarray, identity: str,
                         gallery: np.ndarray, gallery_identities: Sequence[str], *, mode: str,
                         steps: int = 10, fill: str = "zero", ties: str = "random",
                         signed: np.ndarray | None = None, seed: int = 0,
                         batch_size: int = 32) -> pd.DataFrame:
    """One probe's identification Deletion or Insertion curve.

    The probe is modified by ``saliency`` (its similarity map against its true mate) and
    identified against the unmodified ``gallery`` (``[G, D]`` L2-normalised embeddings).

    Returns:
        One row per fraction: ``step``, ``fraction``, ``mate score`` (best score of a gallery
        image of the probe's identity), ``impostor score`` (best score of any other) and
        ``correct`` (rank-1 identification is right).
    """
    check_choice(mode, MODES, "mode")
    fill = check_evaluation_fill(fill)
    ids = np.asarray(gallery_identities)
    mate = ids == identity
    if not mate.any():
        raise XfrError(f"identity {identity!r} has no image in the gallery; a probe needs its mate")
    fractions = step_fractions(steps)
    seeds = np.random.SeedSequence(seed).generate_state(2)
    chips = modified_chips(chip, pixel_order(saliency, ties=ties, signed=signed,
                                             seed=int(seeds[0])),
                           fractions, mode, fill, int(seeds[1]))
    scores = _embed_chips(model, chips, batch_size) @ np.asarray(gallery, dtype=np.float64).T
    mate_score = scores[:, mate].max(1)
    impostor = scores[:, ~mate].max(1) if (~mate).any() else np.full(len(scores), -np.inf)
    return pd.DataFrame({"step": np.arange(len(fractions)), "fraction": fractions,
                         "mate score": mate_score, "impostor score": impostor,
                         "correct": mate_score > impostor})
