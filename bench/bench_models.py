"""Benchmark of the face-recognition models' recognition on ORL, in every precision.

    python bench/bench_models.py [--models dlib_resnet29 sface] [--threads 2]

Prints, per model and precision (fp32, bf16): ORL verification accuracy (10 folds, mean +-
std), accuracy at the model's threshold, EER, FNMR at FMR 1e-2, and rank-1 identification
(1 gallery image per person); records the fp32 accuracy and bf16's change from it, judged
against the fold std. Alignment is cached, so this measures the models; the first run also
detects and aligns the 400 ORL images. Speed (images/s, GFLOP/s, against OpenCV and dlib's
C++) and bf16's agreement with fp32 are measured by bench/bench_precision.py.
"""

from __future__ import annotations

import argparse

import torch
from _record import Figures, out_argument, write_record

import xfr_lib
from xfr_lib import evaluate as metrics
from xfr_lib.data import make_identification_protocol, make_verification_protocol
from xfr_lib.evaluate import embed_dataset


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
    out_argument(parser, "models")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models or xfr_lib.list_models()
    print(f"torch {torch.__version__}, {args.threads} threads")
    header = (f"{'model':14s} {'precision':9s} {'ORL acc':>15s} {'acc@thr':>8s} "
              f"{'EER':>7s} {'FNMR@1%':>8s} {'rank-1':>7s} {'faces':>8s}")
    print(header)
    figures, record = Figures(), {"threads": args.threads, "results": {}}
    for name in names:
        model = xfr_lib.load_model(name)
        results = {}
        for precision in xfr_lib.models.PRECISIONS:
            model.precision = precision
            r = results[precision] = recognition(model)
            print(f"{name:14s} {precision:9s} {r['acc']:7.4f}+-{r['acc_std']:.4f} "
                  f"{r['acc_at_model_threshold']:8.4f} {r['eer']:7.4f} {r['fnmr@1e-2']:8.4f} "
                  f"{r['rank1']:7.4f} {r['faces']:>8s}")
        record["results"][name] = results
        fp32 = results["fp32"]
        figures.add(f"{name} ORL verification accuracy", 100 * fp32["acc"], "%",
                    note=f"10 folds, std {100 * fp32['acc_std']:.2f} %")
        for precision, r in results.items():
            if precision != "fp32":
                figures.add(f"{name} {precision} ORL accuracy change",
                            100 * abs(r["acc"] - fp32["acc"]), "%",
                            goal=("<=", 100 * fp32["acc_std"]),
                            note=f"|{precision} - fp32|, goal: within the fp32 fold std")
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
