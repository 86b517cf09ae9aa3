"""Seconds per pair of every explanation method at its defaults, on each model, against CorrRISE.

    python bench/bench_methods.py [--models dlib_resnet29 sface] [--methods ...] [--threads 2]
                                  [--rounds 2] [--out build/bench/methods.json]

One real genuine pair (wild obama_1 / obama_2), aligned once. Every method explains it at its
default parameters through :func:`xfr_lib.compare_methods`, which also counts the images sent
through the model's forward pass and the backward passes the method reports. Each method runs
``--rounds`` times (CorrRISE included, interleaved with the others so that load from other
processes hits all alike); the minimum wall-clock time is kept, and the ratio to CorrRISE's
minimum in the same run is printed. Figures (``make bench`` report): every method's seconds
per pair with its ratio to CorrRISE's; goal: FGGB at most 1.5 s per pair on dlib_resnet29.
"""

from __future__ import annotations

import argparse
import platform

import torch
from _record import Figures, out_argument, write_record

import xfr_lib
from xfr_lib.data import asset_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=xfr_lib.list_models())
    ap.add_argument("--methods", nargs="+", default=None, help="default: every method")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    out_argument(ap, "methods")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.methods or xfr_lib.list_methods()
    wild = asset_dir("wild")
    record = {"threads": args.threads, "rounds": args.rounds, "machine": platform.processor()
              or platform.machine(), "pair": "wild obama_1 / obama_2", "models": {}}
    figures = Figures()
    for model_name in args.models:
        model = xfr_lib.load_model(model_name)
        a = model.align(wild / "obama" / "obama_1.jpg")
        b = model.align(wild / "obama" / "obama_2.jpg")
        rows: dict[str, dict] = {}
        for _ in range(args.rounds):
            for method in methods:
                comp = xfr_lib.compare_methods(model, a, b, methods=[method])
                cost = comp.costs[0]
                best = rows.get(method)
                if best is None or cost["seconds"] < best["seconds"]:
                    rows[method] = cost
        reference = rows.get("corrrise", {}).get("seconds")
        print(f"\n{model_name} ({args.threads} threads, best of {args.rounds}; "
              f"pair {record['pair']})")
        print(f"{'method':20s} {'s/pair':>8s} {'x corrrise':>10s} {'forward imgs':>12s} "
              f"{'backward':>9s}")
        for method in sorted(rows, key=lambda m: rows[m]["seconds"]):
            r = rows[method]
            ratio = f"{r['seconds'] / reference:10.2f}" if reference else f"{'-':>10s}"
            print(f"{method:20s} {r['seconds']:8.2f} {ratio} {r['forward_images']:12d} "
                  f"{r['backward_passes']:9d}")
        record["models"][model_name] = {
            m: {**r, "ratio_to_corrrise": r["seconds"] / reference if reference else None}
            for m, r in rows.items()}
        for method in sorted(rows):
            ref = {"reference": f"{model_name} corrrise", "reference_value": reference} \
                if reference and method != "corrrise" else {}
            goal = {"goal": ("<=", 1.5), "goal_on": "value"} \
                if (model_name, method) == ("dlib_resnet29", "fggb") else {}
            figures.add(f"{model_name} {method} s/pair", rows[method]["seconds"], "s/pair",
                        **ref, **goal)
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
