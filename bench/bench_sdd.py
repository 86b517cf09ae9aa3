"""SDD-CAM's costs on both models: training the classifier, one class explanation, and the
deletion/retention evaluation, with ratios to the model's plain cost.

    python bench/bench_sdd.py [--models dlib_resnet29 sface] [--images 20] [--epochs 30]
                              [--finetune-epochs 3] [--threads 2] [--out build/bench/sdd.json]

On ORL (40 people, 280 training and 120 held-out images with the default split):

* training the cosine head (embeddings computed once) and, per epoch, fine-tuning the last
  block (a forward and backward pass of every training image), uncached;
* ``explain_class`` per image (one forward and backward pass of 1 + 5 copies of the probe),
  against one class Grad-CAM of the same layer for one class (the ratio is what the five
  competitors cost);
* ``deletion_retention`` per image (4 maps x 2 modes, zero fill), against classifying the
  same number of chips (the ratio is the cost of ranking and filling).

Figures (``make bench`` report): the explanation per image against one CAM, the evaluation
per image against classifying its chips, the fine-tuning epoch.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from _record import Figures, out_argument, write_record

import xfr_lib
from xfr_lib.classify import labelled_chips, train_classifier
from xfr_lib.evaluate import deletion_retention, random_class_maps
from xfr_lib.explainers import GradCAM, explain_class
from xfr_lib.faces import chip_to_tensor


def best_of(fn, *args, rounds: int = 2):
    """(best seconds of ``rounds`` calls, the last result)."""
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def measure(name: str, args: argparse.Namespace) -> dict:
    model = xfr_lib.load_model(name)
    data = labelled_chips(model, "orl", progress=False)
    t0 = time.perf_counter()
    clf = train_classifier(model, data, cache=False, progress=False, epochs=args.epochs)
    head = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_classifier(model, data, cache=False, progress=False, epochs=args.finetune_epochs,
                     finetune="last")
    finetune = (time.perf_counter() - t0) / args.finetune_epochs
    idx = clf.report["test"][:args.images]
    chips = [chip_to_tensor(data.chips[i]) for i in idx]
    explain_class(clf, chips[0])  # warm-up: the layer's size, Captum's import
    t_explain, expls = best_of(lambda: [explain_class(clf, c) for c in chips])
    layer = expls[0].params["layer"]
    cam = GradCAM(clf.backbone, layer=layer)
    refs = [clf.weights[clf.class_index(e.target)][None] for e in expls]
    t_cam, _ = best_of(lambda: [cam.signed_maps(c, r) for c, r in zip(chips, refs, strict=True)])
    maps = {k: np.stack([e.ranking_map(k) for e in expls])
            for k in ("sdd", "gradcam", "hirescam")}
    maps["random"] = random_class_maps(len(expls), expls[0].layer_cells, model.input_size, 0)
    targets = [clf.class_index(e.target) for e in expls]
    t_dr, _ = best_of(deletion_retention, clf, data.chips[idx], maps, targets)
    t_cls, _ = best_of(clf.probabilities, np.repeat(data.chips[idx], 2 * len(maps), axis=0))
    n = len(idx)
    return {"head_seconds": head, "finetune_seconds_per_epoch": finetune,
            "explain_seconds_per_image": t_explain / n, "one_cam_seconds": t_cam / n,
            "explain_over_one_cam": t_explain / t_cam,
            "deletion_retention_seconds_per_image": t_dr / n,
            "classify_seconds_per_image": t_cls / n,
            "deletion_retention_over_classify": t_dr / t_cls,
            "test_accuracy": clf.report["test accuracy"], "layer": layer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=xfr_lib.list_models())
    ap.add_argument("--images", type=int, default=20, help="held-out images timed")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    out_argument(ap, "sdd")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    record = {"threads": args.threads, "images": args.images, "epochs": args.epochs,
              "machine": platform.processor() or platform.machine(), "models": {}}
    print(f"{'model':14s} {'head s':>7s} {'ft s/ep':>8s} {'explain s':>10s} {'1 CAM s':>8s} "
          f"{'ratio':>6s} {'del/ret s':>10s} {'classify s':>11s} {'ratio':>6s} {'test acc':>9s}")
    for name in args.models:
        r = record["models"][name] = measure(name, args)
        print(f"{name:14s} {r['head_seconds']:7.1f} {r['finetune_seconds_per_epoch']:8.1f} "
              f"{r['explain_seconds_per_image']:10.3f} {r['one_cam_seconds']:8.3f} "
              f"{r['explain_over_one_cam']:6.1f} "
              f"{r['deletion_retention_seconds_per_image']:10.3f} "
              f"{r['classify_seconds_per_image']:11.3f} "
              f"{r['deletion_retention_over_classify']:6.1f} "
              f"{100 * r['test_accuracy']:8.1f}%")
    figures = Figures()
    for name, r in record["models"].items():
        figures.add(f"{name} sdd explain_class s/img", r["explain_seconds_per_image"], "s/img",
                    reference="one class Grad-CAM", reference_value=r["one_cam_seconds"])
        figures.add(f"{name} sdd deletion/retention s/img",
                    r["deletion_retention_seconds_per_image"], "s/img",
                    reference="classifying its chips",
                    reference_value=r["classify_seconds_per_image"])
        figures.add(f"{name} sdd fine-tune s/epoch", r["finetune_seconds_per_epoch"], "s")
    print()
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
