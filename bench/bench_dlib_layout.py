"""Throughput of implementation variants of the dlib ResNet-29 (images/s, CPU).

Variants: affine layers separate or folded into the convolutions, NCHW or channels-last.
Prints images/s for batch 1 and 32 without gradients, and for a forward+backward to the
input (what gradient explainers do; the weights are frozen, as in the library, and once with
weight gradients for comparison), plus the largest output difference to the plain variant.
The machine may be shared: every figure is the best of ``--rounds`` round-robin runs.

Run: ``python bench/bench_dlib_layout.py [--threads 2] [--seconds 2] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import time

import torch

from xfr_lib.models import DlibResNet29

VARIANTS = {
    "affine separate, NCHW": {"fuse_affine": False, "channels_last": False},
    "affine folded, NCHW": {"fuse_affine": True, "channels_last": False},
    "affine separate, channels_last": {"fuse_affine": False, "channels_last": True},
    "affine folded, channels_last": {"fuse_affine": True, "channels_last": True},
}


def images_per_second(
    model: DlibResNet29, x: torch.Tensor, seconds: float, grad: bool
) -> tuple[float, float]:
    """Images per wall-clock second and per CPU-second of this process."""

    def step() -> None:
        if grad:
            xi = x.clone().requires_grad_(True)
            model.features(xi).sum().backward()
        else:
            with torch.inference_mode():
                model.features(x)

    for _ in range(2):  # warm-up (allocator, oneDNN primitive caches)
        step()
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n * x.shape[0] / wall, n * x.shape[0] / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    xs = {b: torch.rand(b, 3, 150, 150, generator=gen) for b in (1, 32)}

    models = {name: DlibResNet29.pretrained(**opts) for name, opts in VARIANTS.items()}
    trainable = DlibResNet29.pretrained(**VARIANTS["affine folded, channels_last"])
    trainable.requires_grad_(True)
    base = models["affine separate, NCHW"]
    with torch.inference_mode():
        ref = base.features(xs[32])
    print(
        f"torch {torch.__version__}, {args.threads} threads, best of {args.rounds} x "
        f"{args.seconds:.0f} s per figure"
    )
    # figures: (b=1, b=32, b=32 grad) x (per wall second, per CPU-second)
    best: dict[str, list[float]] = {name: [0.0] * 6 for name in models}
    best_trainable = [0.0, 0.0]
    for _ in range(args.rounds):
        for name, model in models.items():
            r = (
                *images_per_second(model, xs[1], args.seconds, grad=False),
                *images_per_second(model, xs[32], args.seconds, grad=False),
                *images_per_second(model, xs[32], args.seconds, grad=True),
            )
            best[name] = [max(a, b) for a, b in zip(best[name], r, strict=True)]
        r = images_per_second(trainable, xs[32], args.seconds, grad=True)
        best_trainable = [max(a, b) for a, b in zip(best_trainable, r, strict=True)]
    print(
        "images/s (wall clock) | images per CPU-second of this process (robust to a busy machine)"
    )
    print(
        f"{'variant':32s} {'b=1':>7s} {'b=32':>7s} {'b=32 grad':>9s} | {'b=1':>7s} {'b=32':>7s} "
        f"{'b=32 grad':>9s} {'max|diff|':>10s}"
    )
    for name, model in models.items():
        with torch.inference_mode():
            diff = (model.features(xs[32]) - ref).abs().max().item()
        r = best[name]
        print(
            f"{name:32s} {r[0]:7.1f} {r[2]:7.1f} {r[4]:9.1f} | {r[1]:7.1f} {r[3]:7.1f} "
            f"{r[5]:9.1f} {diff:10.1e}"
        )
    print(
        f"{'folded, channels_last, trainable':32s} {'':7s} {'':7s} {best_trainable[0]:9.1f} | "
        f"{'':7s} {'':7s} {best_trainable[1]:9.1f}   (weight gradients too)"
    )
    plain = best["affine separate, NCHW"]
    print("speed-up over 'affine separate, NCHW', wall clock (b=1, b=32, b=32 grad):")
    for name, r in best.items():
        print(f"  {name:32s} " + "  ".join(f"{r[i] / plain[i]:5.2f}x" for i in (0, 2, 4)))
    fastest = max(best, key=lambda name: best[name][3])
    print(f"most images per CPU-second at b=32: {fastest}")


if __name__ == "__main__":
    main()
