"""Benchmark of the models' precisions: speed (fp32 vs bf16 vs the reference runtimes) and
what bf16 costs in agreement with fp32.

    python bench/bench_precision.py [--threads 2] [--rounds 5] [--n 500]

This is the one place for the models' speed: per model, images/s of ``embed`` at batch 32
in fp32 and bf16 (``load_model(name, precision=...)``), sface against OpenCV's
``cv2.FaceRecognizerSF`` on the same int8 weights, dlib_resnet29 against dlib's own C++
(``compute_face_descriptor``); the fp32 and bf16 matmul rate of the machine (2048^3) and each
model's fp32 GFLOP/s as a fraction of the fp32 one (FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode``: convolutions and matmuls, what dominates).
The machine may be shared: timings are interleaved round by round (every variant once per
round) and each figure is the best of ``--rounds``, so ratios compare the same moments.

Agreement: 1 - cosine of bf16 to fp32 embeddings on the 400 ORL chips (max, mean); CorrRISE
(``n`` masks, seed 0, on Obama's two in-the-wild photos) in both precisions: the Spearman
rank correlation of the signed correlation maps (same seed = same masks, so precision is the
only difference) and seconds per pair. Recognition accuracy on ORL, fp32 against bf16, is
measured by bench/bench_models.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
from _record import Figures, out_argument, write_record
from scipy.stats import spearmanr
from torch.utils.flop_counter import FlopCounterMode

import xfr_lib
from xfr_lib.data import asset_dir, asset_file
from xfr_lib.evaluate import embed_dataset

MODELS = ("dlib_resnet29", "sface")
BATCH = 32
MATMUL_SIDE = 2048
DLIB_CPP_CHIPS = 8  # dlib's C++ runs ~10 images/s: a few chips are enough for its rate


def best_seconds(fn: Callable[[], object], reps: int) -> float:
    """The shortest of ``reps`` timed calls of ``fn`` (after one untimed call)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def model_flops(model) -> float:
    """FLOPs of one image's forward pass (fp32, batch 1)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.embed(torch.rand(1, 3, *model.input_size))
    return float(counter.get_total_flops())


def speed(models: dict, rounds: int) -> dict[str, float]:
    """Best rate of every variant over interleaved rounds: GFLOP/s for the matmuls, images/s
    for the rest."""
    gen = torch.Generator().manual_seed(0)
    mats = {dt: torch.rand(MATMUL_SIDE, MATMUL_SIDE, generator=gen).to(dt)
            for dt in (torch.float32, torch.bfloat16)}
    chips = {name: torch.rand(BATCH, 3, *m.input_size, generator=gen) for name, m in models.items()}

    rng = np.random.default_rng(0)
    recognizer = cv2.FaceRecognizerSF.create(str(asset_file("sface", "face_recognition_sface_"
                                                            "2021dec_int8bq.onnx")), "")
    bgr = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(BATCH)]
    import dlib

    dlib_net = dlib.face_recognition_model_v1(
        str(asset_file("dlib_resnet29", "dlib_face_recognition_resnet_model_v1.dat")))
    rgb = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(DLIB_CPP_CHIPS)]

    def embed(name: str, precision: str) -> Callable[[], object]:
        def run():
            models[name].precision = precision
            with torch.inference_mode():
                return models[name].embed(chips[name])
        return run

    tasks: dict[str, tuple[Callable[[], object], float]] = {  # name -> (call, work per call)
        f"matmul {dt}": (lambda a=a: a @ a, 2 * MATMUL_SIDE**3 / 1e9)
        for dt, a in (("fp32", mats[torch.float32]), ("bf16", mats[torch.bfloat16]))
    }
    for name in models:
        for precision in xfr_lib.models.PRECISIONS:
            tasks[f"{name} {precision}"] = (embed(name, precision), BATCH)
    tasks["opencv FaceRecognizerSF"] = (lambda: [recognizer.feature(c) for c in bgr], BATCH)
    tasks["dlib C++"] = (lambda: dlib_net.compute_face_descriptor(rgb), DLIB_CPP_CHIPS)
    best = dict.fromkeys(tasks, 0.0)
    for _ in range(rounds):
        for key, (call, work) in tasks.items():
            best[key] = max(best[key], work / best_seconds(call, 3))
    for m in models.values():
        m.precision = "fp32"
    return best


def orl_cosines(model) -> np.ndarray:
    """Cosine of bf16 to fp32 embeddings on every ORL chip with a face."""
    orl = xfr_lib.load_dataset("orl")
    emb = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        emb[precision] = embed_dataset(model, orl, progress=False)
    model.precision = "fp32"
    ok = emb["fp32"].ok & emb["bf16"].ok
    return (emb["fp32"].embeddings[ok] * emb["bf16"].embeddings[ok]).sum(1)


def corrrise_agreement(model, n: int, rounds: int) -> dict[str, float]:
    """CorrRISE on Obama's pair in both precisions: map Spearman and best seconds per pair."""
    wild = asset_dir("wild") / "obama"
    a, b = (model.align(wild / f"obama_{i}.jpg") for i in (1, 2))
    maps, seconds = {}, {"fp32": float("inf"), "bf16": float("inf")}
    for _ in range(rounds):
        for precision in ("fp32", "bf16"):
            model.precision = precision
            t = time.perf_counter()
            result = xfr_lib.explain("corrrise", model, a, b, n=n, seed=0)
            seconds[precision] = min(seconds[precision], time.perf_counter() - t)
            maps[precision] = result.extras
    model.precision = "fp32"
    rho = min(spearmanr(maps["fp32"][k].ravel(), maps["bf16"][k].ravel()).statistic
              for k in ("correlation_a", "correlation_b"))
    return {"spearman": float(rho), **{f"s {p}": s for p, s in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--n", type=int, default=500, help="CorrRISE masks per image")
    out_argument(parser, "precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    models = {name: xfr_lib.load_model(name) for name in MODELS}
    flops = {name: model_flops(m) for name, m in models.items()}
    print(f"torch {torch.__version__}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, best of {args.rounds} interleaved rounds")
    rate = speed(models, args.rounds)
    figures = Figures()
    peak = rate["matmul fp32"]
    figures.add("matmul fp32", peak, "GFLOP/s", note=f"{MATMUL_SIDE}^3, the fp32 peak")
    figures.add("matmul bf16", rate["matmul bf16"], "GFLOP/s", reference="matmul fp32",
                reference_value=peak)
    record: dict = {"threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
                    "gflop_per_image": {k: v / 1e9 for k, v in flops.items()}, "rates": rate}
    for name in MODELS:
        fp32 = rate[f"{name} fp32"]
        figures.add(f"{name} fp32 GFLOP/s", fp32 * flops[name] / 1e9, "GFLOP/s",
                    reference="matmul fp32", reference_value=peak,
                    note=f"{flops[name] / 1e9:.3f} GFLOP/image")
        figures.add(f"{name} fp32 forward", fp32, "img/s", note=f"batch {BATCH}")
        figures.add(f"{name} bf16 forward", rate[f"{name} bf16"], "img/s",
                    reference=f"{name} fp32 forward", reference_value=fp32,
                    goal=(">=", 1.8) if name == "dlib_resnet29" else None)
    figures.add("sface bf16 vs OpenCV FaceRecognizerSF", rate["sface bf16"], "img/s",
                reference="opencv FaceRecognizerSF", reference_value=rate["opencv FaceRecognizerSF"],
                goal=(">=", 2.0))
    figures.add("sface fp32 vs OpenCV FaceRecognizerSF", rate["sface fp32"], "img/s",
                reference="opencv FaceRecognizerSF", reference_value=rate["opencv FaceRecognizerSF"])
    figures.add("dlib_resnet29 fp32 vs dlib C++", rate["dlib_resnet29 fp32"], "img/s",
                reference="dlib C++ compute_face_descriptor", reference_value=rate["dlib C++"])

    for name, model in models.items():
        cos = orl_cosines(model)
        # 1 - cosine: the table prints three significant digits, and every cosine is 0.9999x
        figures.add(f"{name} bf16 1-cosine to fp32 (max)", float(1 - cos.min()), "1-cos",
                    goal=("<=", 1e-3), note=f"{len(cos)} ORL chips, mean {1 - cos.mean():.2g}")
        c = corrrise_agreement(model, args.n, rounds=2)
        record[f"{name} corrrise"] = c
        figures.add(f"{name} bf16 CorrRISE map Spearman", c["spearman"], "rho", goal=(">=", 0.95),
                    note=f"n={args.n}, seed 0, obama_1 vs obama_2, min of A and B")
        figures.add(f"{name} bf16 CorrRISE time", c["s bf16"], "s/pair",
                    reference=f"{name} fp32 CorrRISE time", reference_value=c["s fp32"],
                    note=f"n={args.n}")
    figures.print()
    record["figures"] = figures.rows
    write_record(record, args.out)


if __name__ == "__main__":
    main()
