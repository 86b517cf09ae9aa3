"""Milliseconds per mask of every Deletion/Insertion fill, at both chip sizes, against the zero fill.

    python bench/bench_fills.py [--fills zero grey mean blur road] [--ps 0.1 0.5 0.9]
                                [--masks 5] [--rounds 3] [--threads 2] [--no-direct]
                                [--out build/bench/fills.json]

One real face (wild obama_1) aligned as a 150x150 dlib chip and a 112x112 ArcFace chip. The
masks remove the top p of ``--masks`` saliency-like maps per kind: ``smooth`` (a blurred random
map: blobby holes, like CorrRISE's maps; the hard case for ROAD, whose holes are then large)
and ``speckle`` (independent random pixels, like a raw gradient map). Each mask is filled one
call at a time; the best of ``--rounds`` is kept per mask and the mean over the masks printed
with the ratio to the zero fill of the same case. ``road (spsolve)`` times the same ROAD system
solved by :func:`scipy.sparse.linalg.spsolve` (SuperLU, one factorisation for the 3
channels), the solver the module does not use. Figures (``make bench`` report): every fill's
worst milliseconds per mask per chip size, with the ratio to the zero fill; goal: ROAD under
30 ms per mask at 150x150.
"""

from __future__ import annotations

import argparse
import platform
import time
from functools import partial

import cv2
import numpy as np
from _record import Figures, out_argument, write_record
from scipy.sparse.linalg import spsolve

from xfr_lib.data import asset_dir
from xfr_lib.evaluate._fills import (
    EVALUATION_FILLS,
    _neighbours,
    _stencil_matrix,
    fill_removed,
)
from xfr_lib.faces import aligned_chip

CHIPS = {"150x150 dlib": ("dlib_chip", (150, 150)), "112x112 sface": ("arcface_5pt", (112, 112))}
DIRECT = "road (spsolve)"


def maps(kind: str, h: int, w: int, n: int) -> list[np.ndarray]:
    out = []
    for seed in range(n):
        noise = np.random.default_rng(seed).random((h, w))
        out.append(cv2.GaussianBlur(noise, (0, 0), h / 15) if kind == "smooth" else noise)
    return out


def top(saliency: np.ndarray, p: float) -> np.ndarray:
    order = np.argsort(-saliency.ravel(), kind="stable")
    mask = np.zeros(saliency.size, bool)
    mask[order[:round(p * saliency.size)]] = True
    return mask.reshape(saliency.shape)


def direct_road(chip: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The noiseless ROAD fill by one sparse direct solve (for comparison only)."""
    c = chip.astype(np.float32)
    kept = c * (~removed)[..., None]
    out = c.copy()
    out[removed] = spsolve(_stencil_matrix(removed), _neighbours(kept)[removed].astype(float))
    return out


def ms_per_mask(fn, masks: list[np.ndarray], rounds: int) -> float:
    per_mask = []
    for mask in masks:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn(mask)
            best = min(best, time.perf_counter() - t0)
        per_mask.append(best)
    return 1000 * float(np.mean(per_mask))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fills", nargs="+", default=list(EVALUATION_FILLS))
    ap.add_argument("--ps", nargs="+", type=float, default=[0.1, 0.5, 0.9])
    ap.add_argument("--masks", type=int, default=5, help="maps per kind and case")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-direct", action="store_true", help="skip the spsolve comparison")
    out_argument(ap, "fills")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    fills = list(args.fills) + ([] if args.no_direct else [DIRECT])
    photo = asset_dir("wild") / "obama" / "obama_1.jpg"
    record = {"threads": args.threads, "rounds": args.rounds, "masks": args.masks,
              "machine": platform.processor() or platform.machine(),
              "face": "wild obama_1", "chips": {}}
    figures = Figures()
    for chip_name, (alignment, size) in CHIPS.items():
        chip = aligned_chip(photo, alignment, size)["chip"]
        rows = []
        for kind in ("smooth", "speckle"):
            saliency = maps(kind, *size, args.masks)
            for p in args.ps:
                masks = [top(s, p) for s in saliency]
                times = {}
                for fill in fills:
                    if fill == DIRECT:
                        fn = partial(direct_road, chip)
                    else:
                        fn = partial(fill_removed, chip, fill=fill)
                    times[fill] = ms_per_mask(fn, masks, args.rounds)
                rows.append({"maps": kind, "p": p, "ms_per_mask": times})
        print(f"\n{chip_name} (ms per mask, mean over {args.masks} masks, best of "
              f"{args.rounds}; {args.threads} threads)")
        print(f"{'maps':8s} {'p':>4s} " + " ".join(f"{f:>14s}" for f in fills)
              + f" {'road / zero':>11s}")
        for row in rows:
            t = row["ms_per_mask"]
            ratio = t["road"] / t["zero"] if "road" in t and "zero" in t else float("nan")
            row["road_over_zero"] = ratio
            print(f"{row['maps']:8s} {row['p']:4.1f} "
                  + " ".join(f"{t[f]:14.2f}" for f in fills) + f" {ratio:11.0f}")
        record["chips"][chip_name] = rows
        zero = max(r["ms_per_mask"]["zero"] for r in rows) if "zero" in fills else None
        for fill in fills:
            worst = max(r["ms_per_mask"][fill] for r in rows)
            ref = {"reference": "zero fill", "reference_value": zero} \
                if zero is not None and fill != "zero" else {}
            goal = {"goal": ("<", 30), "goal_on": "value"} \
                if fill == "road" and chip_name.startswith("150") else {}
            figures.add(f"fill {fill} {chip_name.split()[0]} worst ms/mask", worst, "ms",
                        **ref, **goal)
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
