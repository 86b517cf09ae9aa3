"""Cost of a CorrRISE explanation against the forward passes it cannot avoid.

    python bench/bench_explain.py [--model dlib_resnet29] [--n 500] [--batch-size 32]
                                  [--precisions fp32 bf16] [--out build/bench/explain.json]

One pair is explained with N masks (2N masked forward passes: A masked against B, B against
A). The same number of forward passes alone, at the same batch size, is the floor; the target
is explanation time <= 1.10 x that floor. Mask generation, masking and the Pearson correlation
are also timed on their own. A last run times the model's ``embed`` calls inside the
explanation itself, which gives the overhead ratio under the very same machine load
(explanation time / time spent in forward passes). Rounds alternate forward-only and explanation runs so that load
from other processes hits both alike; the minimum over rounds is reported, in wall-clock time
and in CPU time of this process (all threads; less sensitive to other processes on a shared
machine). All of it is measured at each precision of ``--precisions`` (``load_model(...,
precision=)``). Figures (``make bench`` report), per precision: seconds per pair (the papers'
N = 500; goal with bf16: under 1 s), and the overhead ratio against the forward passes with
its goal (<= 1.10); bf16's seconds per pair against fp32's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Self

import torch
from _record import Figures, out_argument, write_record

from xfr_lib.errors import XfrError


def _load(name: str, precision: str):
    from xfr_lib.models import load_model

    try:
        return load_model(name, precision=precision)
    except (XfrError, ImportError, FileNotFoundError) as exc:
        sys.exit(f"bench_explain: model {name!r} is not available yet ({exc}); "
                 "run 'xfr fetch' or pick another with --model")


def _pair(model):
    from xfr_lib.data import asset_dir

    wild = asset_dir("wild")
    return (model.align(wild / "obama" / "obama_1.jpg"),
            model.align(wild / "obama" / "obama_2.jpg"))


class Timer:
    """Wall-clock and process CPU seconds of a block."""

    def __enter__(self) -> Self:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


@torch.no_grad()
def forward_only(model, chip: torch.Tensor, n: int, batch_size: int) -> Timer:
    """Time of 2 * n forward passes in batches of batch_size (the explanation's floor)."""
    full = chip[None].expand(batch_size, -1, -1, -1).contiguous()
    sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
    with Timer() as t:
        for _side in range(2):
            for b in sizes:
                model.embed(full[:b])
    return t


def measure(model, a: torch.Tensor, b: torch.Tensor, n: int, bs: int, rounds: int) -> dict:
    """Every timing of this benchmark for one model object (one precision)."""
    from xfr_lib.explainers import PatchMasks, PearsonAccumulator, apply_masks, explain

    h, w = model.input_size
    forward_only(model, a, bs, bs)  # warm-up
    fwd, full = [], []
    for r in range(rounds):
        fwd.append(forward_only(model, a, n, bs))
        with Timer() as t:
            explain("corrrise", model, a, b, n=n, batch_size=bs, seed=r)
        full.append(t)
        print(f"  round {r + 1}: forward-only {fwd[-1].wall:.2f} s (cpu {fwd[-1].cpu:.2f}), "
              f"explanation {t.wall:.2f} s (cpu {t.cpu:.2f}), ratio {t.wall / fwd[-1].wall:.3f} "
              f"(cpu {t.cpu / fwd[-1].cpu:.3f})")

    # The same explanation with the model's forward passes timed from inside.
    inner = {"wall": 0.0, "calls": 0}
    plain_embed = model.embed

    def timed_embed(x):
        t0 = time.perf_counter()
        out = plain_embed(x)
        inner["wall"] += time.perf_counter() - t0
        inner["calls"] += len(x)
        return out

    model.embed = timed_embed  # instance attribute: shadows the method for this run only
    try:
        with Timer() as t_inner:
            explain("corrrise", model, a, b, n=n, batch_size=bs, seed=0)
    finally:
        del model.embed

    masks = PatchMasks(n=n, height=h, width=w, seed=0)
    batches = [m for _, m in masks.batches(bs)]
    scores = [torch.rand(1, len(m), dtype=torch.float64) for m in batches]

    def gen() -> None:
        for _side in range(2):
            for _ in masks.batches(bs):
                pass

    def apply() -> None:
        for _side in range(2):
            for m in batches:
                apply_masks(a, m)

    def corr() -> None:
        for _side in range(2):
            acc = PearsonAccumulator(1, h, w)
            for s, m in zip(scores, batches, strict=True):
                acc.update(s, m)
            acc.result()

    def best_of(fn, repeats: int = 5) -> float:
        times = []
        for _ in range(repeats):
            with Timer() as t:
                fn()
            times.append(t.wall)
        return min(times)

    t_masks, t_apply, t_corr = best_of(gen), best_of(apply), best_of(corr)
    best_fwd, best_full = min(t.wall for t in fwd), min(t.wall for t in full)
    cpu_fwd, cpu_full = min(t.cpu for t in fwd), min(t.cpu for t in full)
    n_fwd = 2 * n
    print(f"forward passes alone : {best_fwd:8.2f} s  (cpu {cpu_fwd:.2f} s; {n_fwd} passes, "
          f"{1000 * best_fwd / n_fwd:.1f} ms each, {math.ceil(n / bs)} batches per side)")
    print(f"CorrRISE explanation : {best_full:8.2f} s  (cpu {cpu_full:.2f} s)")
    print(f"ratio                : {best_full / best_fwd:8.3f}  (cpu {cpu_full / cpu_fwd:.3f}; "
          "target <= 1.10)")
    print(f"in-run ratio         : {t_inner.wall / inner['wall']:8.3f}  (explanation "
          f"{t_inner.wall:.2f} s / its own {inner['calls']} forward passes {inner['wall']:.2f} s)")
    print("parts, both sides, best of 5 (wall):")
    print(f"mask generation      : {t_masks:8.3f} s  ({100 * t_masks / best_fwd:.1f} % of forward)")
    print(f"masking (A * M)      : {t_apply:8.3f} s  ({100 * t_apply / best_fwd:.1f} % of forward)")
    print(f"Pearson correlation  : {t_corr:8.3f} s  ({100 * t_corr / best_fwd:.1f} % of forward)")
    return {"forward_seconds": best_fwd, "explanation_seconds": best_full,
            "cpu_forward_seconds": cpu_fwd, "cpu_explanation_seconds": cpu_full,
            "in_run_seconds": t_inner.wall, "in_run_forward_seconds": inner["wall"],
            "mask_seconds": t_masks, "masking_seconds": t_apply, "correlation_seconds": t_corr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dlib_resnet29")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    out_argument(ap, "explain")
    args = ap.parse_args()
    torch.set_num_threads(2)
    n, bs = args.n, args.batch_size
    record = {"model": args.model, "n": n, "batch_size": bs, "rounds": args.rounds,
              "threads": torch.get_num_threads(), "precisions": {}}
    figures = Figures()
    for precision in args.precisions:
        model = _load(args.model, precision)
        a, b = _pair(model)
        h, w = model.input_size
        print(f"\nmodel {args.model} ({h}x{w}, {precision}), N={n} masks, batch {bs}, "
              f"{torch.get_num_threads()} threads, {args.rounds} rounds")
        r = record["precisions"][precision] = measure(model, a, b, n, bs, args.rounds)
        tag = f"{args.model} {precision} corrrise N={n}"
        fp32 = record["precisions"].get("fp32")
        if precision != "fp32" and fp32:
            figures.add(f"{tag} s/pair", r["explanation_seconds"], "s/pair",
                        reference=f"{args.model} fp32 corrrise N={n}",
                        reference_value=fp32["explanation_seconds"], goal=("<", 1.0),
                        goal_on="value", note="best of rounds, wall")
        else:
            figures.add(f"{tag} s/pair", r["explanation_seconds"], "s/pair",
                        note="best of rounds, wall")
        figures.add(f"{tag} overhead", r["explanation_seconds"], "s",
                    reference="its 2N forward passes alone", reference_value=r["forward_seconds"],
                    goal=("<=", 1.10))
        figures.add(f"{tag} in-run overhead", r["in_run_seconds"], "s",
                    reference="its own embed calls", reference_value=r["in_run_forward_seconds"],
                    goal=("<=", 1.10))
        figures.add(f"{tag} masks+masking+corr",
                    r["mask_seconds"] + r["masking_seconds"] + r["correlation_seconds"], "s",
                    reference="forward passes alone", reference_value=r["forward_seconds"])
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
