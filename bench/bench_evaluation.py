"""Evaluation throughput: Deletion/Insertion pair-steps per second with precomputed maps.

    python bench/bench_evaluation.py [--models dlib_resnet29 sface] [--fills zero road]
                                     [--pairs 8] [--steps 10] [--threads 2]
                                     [--out build/bench/evaluation.json]

ORL pairs (genuine and impostor in turn) with fixed random maps, so only the evaluation is
timed: ranking the pixels, filling, and the forward passes of the modified chips. A pair-step
is one point of one curve (one or two modified chips). The reference measured in the same run
is the model's plain embedding throughput (images per second, the same batch size): the ratio
says how much of the evaluation's time is the model's and how much is filling and ranking.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from _record import Figures, out_argument, write_record

import xfr_lib
from xfr_lib import evaluate
from xfr_lib.data import load_dataset, make_verification_protocol
from xfr_lib.models import embed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=xfr_lib.list_models())
    ap.add_argument("--fills", nargs="+", default=["zero", "road"])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    out_argument(ap, "evaluation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    orl = load_dataset("orl")
    record = {"threads": args.threads, "pairs": args.pairs, "steps": args.steps,
              "machine": platform.processor() or platform.machine(), "models": {}}
    figures = Figures()
    for model_name in args.models:
        model = xfr_lib.load_model(model_name)
        emb = evaluate.embed_dataset(model, orl, progress=False)
        protocol = make_verification_protocol(orl, seed=0)
        valid = emb.ok[protocol.pairs].all(1)
        idx = protocol.draw(args.pairs, seed=0, valid=valid)
        drawn, labels = protocol.pairs[idx], [bool(v) for v in protocol.labels[idx]]
        rng = np.random.default_rng(0)
        h, w = model.input_size
        maps = [(rng.random((h, w)), rng.random((h, w))) for _ in drawn]
        # Reference: plain embedding throughput on the same chips, same batch size.
        chips = np.concatenate([emb.chips[list(p)] for p in drawn])
        reps = max(1, 256 // len(chips))
        t0 = time.perf_counter()
        for _ in range(reps):
            embed(model, chips, batch_size=32)
        images_per_s = reps * len(chips) / (time.perf_counter() - t0)
        print(f"\n{model_name}: plain embedding {images_per_s:.0f} images/s "
              f"({args.threads} threads)")
        print(f"{'fill':6s} {'mode':10s} {'pair-steps/s':>12s} {'images/s':>9s} "
              f"{'x plain':>8s}")
        rows = {}
        for fill in args.fills:
            for mode in ("deletion", "insertion"):
                n_images = 0
                t0 = time.perf_counter()
                for (i, j), same, (ma, mb) in zip(drawn, labels, maps, strict=True):
                    images = "one" if same else "both"
                    evaluate.verification_curve(
                        model, emb.chips[i], emb.chips[j], ma, mb, same, mode=mode,
                        threshold=model.threshold, steps=args.steps, fill=fill, images=images,
                        seed=0)
                    n_images += (args.steps + 1) * (1 if images == "one" else 2) + (
                        1 if images == "one" else 0)
                seconds = time.perf_counter() - t0
                pair_steps = len(drawn) * (args.steps + 1) / seconds
                ratio = n_images / seconds / images_per_s
                rows[f"{fill}/{mode}"] = {"pair_steps_per_s": pair_steps,
                                          "images_per_s": n_images / seconds,
                                          "ratio_to_plain_embedding": ratio}
                print(f"{fill:6s} {mode:10s} {pair_steps:12.1f} {n_images / seconds:9.0f} "
                      f"{ratio:8.2f}")
                figures.add(f"{model_name} {fill} {mode} curve images/s", n_images / seconds,
                            "img/s", reference="plain embedding", reference_value=images_per_s)
        record["models"][model_name] = {"plain_images_per_s": images_per_s, "curves": rows}
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
