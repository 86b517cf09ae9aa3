"""Benchmark of the face-recognition models: throughput and recognition on ORL.

    python bench/bench_models.py [--models dlib_resnet29 sface] [--threads 2] [--repeats 5]

Prints, per model: embedding throughput (images/s) at batch 1 and 32, and ORL verification
accuracy (10 folds, mean +- std), EER, FNMR at FMR 1e-2, and rank-1 identification
(1 gallery image per person). Alignment is cached, so the recognition part measures the
models; the first run also detects and aligns the 400 ORL images.
"""

from __future__ import annotations

import argparse
import time

import torch

import xfr_lib
from xfr_lib import evaluate as metrics
from xfr_lib.data import make_identification_protocol, make_verification_protocol
from xfr_lib.evaluate import embed_dataset


def throughput(model, batch: int, repeats: int) -> float:
    """Images per second of ``model.embed`` on random chips of the model's size (no grad)."""
    x = torch.rand(batch, 3, *model.input_size)
    with torch.no_grad():
        model.embed(x)  # warm-up: allocations, lazy init
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            model.embed(x)
            best = min(best, time.perf_counter() - t)
    return batch / best


def recognition(model, seed: int = 0) -> dict:
    orl = xfr_lib.load_dataset("orl")
    emb = embed_dataset(model, orl, progress=False)
    proto = make_verification_protocol(orl, n_folds=10, seed=seed)
    scores = emb.pair_scores(proto.pairs)
    acc = metrics.verification_accuracy(scores, proto.labels, proto.folds)
    e = metrics.eer(scores, proto.labels)
    fnmr = metrics.fnmr_at_fmr(scores, proto.labels, (1e-2,))
    ident = make_identification_protocol(orl, gallery_per_identity=1, seed=seed)
    sim = emb.similarity(ident.probes, ident.gallery)
    probe_ids = [orl.images[i].identity for i in ident.probes]
    gallery_ids = [orl.images[i].identity for i in ident.gallery]
    rank1 = metrics.rank_k_accuracy(sim, probe_ids, gallery_ids, ks=(1,))
    at_threshold = metrics.accuracy_at(scores, proto.labels, model.threshold)
    return {"faces": f"{int(emb.ok.sum())}/{len(emb)}", "acc": acc.mean, "acc_std": acc.std,
            "acc_at_model_threshold": at_threshold, "eer": e.eer, "fnmr@1e-2": float(fnmr["fnmr"].iloc[0]),
            "rank1": rank1[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models or xfr_lib.list_models()
    print(f"torch {torch.__version__}, {args.threads} threads")
    header = (f"{'model':14s} {'b=1 img/s':>10s} {'b=32 img/s':>11s} {'ORL acc':>15s} {'acc@thr':>8s} "
              f"{'EER':>7s} {'FNMR@1%':>8s} {'rank-1':>7s} {'faces':>8s}")
    print(header)
    for name in names:
        model = xfr_lib.load_model(name)
        t1, t32 = throughput(model, 1, args.repeats), throughput(model, 32, args.repeats)
        r = recognition(model)
        print(f"{name:14s} {t1:10.1f} {t32:11.1f} {r['acc']:7.4f}+-{r['acc_std']:.4f} "
              f"{r['acc_at_model_threshold']:8.4f} {r['eer']:7.4f} {r['fnmr@1e-2']:8.4f} {r['rank1']:7.4f} "
              f"{r['faces']:>8s}")


if __name__ == "__main__":
    main()
