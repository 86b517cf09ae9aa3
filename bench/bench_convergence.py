"""Forward passes a CorrRISE map needs to reach a fidelity: plain fixed N vs the stopping rule.

    python bench/bench_convergence.py [--model dlib_resnet29] [--pairs 12] [--sides a]
        [--target 0.95] [--n-ref 4000] [--precision fp32,bf16] [--time-pairs 1]

Fidelity of a map: its Spearman correlation over pixels (of the signed map) with a reference
map of the same image and pair from ``n_ref`` = 4000 masks (same method, fill and
parameters; CorrRISE defaults: zero fill, Pearson, no regularisation), with other masks;
Pearson is reported too.

Per ORL pair (alternately genuine and impostor, drawn with a fixed seed) and image side, two
independent runs of ``n_ref`` nested masks (seeds 0 and 1) are scored once and cached under
build/bench/cache/convergence/ (the masked scores only, keyed by model, images, side, seed and
parameters; the maps are rebuilt from them in seconds). Each run's full map is the other run's
reference, so a side gives two curves: fidelity of the map from the first N masks of one run,
at N = 64, 128, ... . Nested masks make the first N masks of a run exactly a run of N masks
(a stopped run only truncates), so the plain fixed-N map and the stopping rule's map are read
off the same curve (the bench checks this against a real ``converge`` run):

- plain N90: the smallest N on the grid at which 90 % of the curves reach the target
  (the fixed N a user would have to choose); plain median: the median over curves of the
  first N reaching it (an oracle that knows each map's N, so a lower bound for plain).
- stopping rule (``converge=c``): N_stop = the first check (every 64 masks from min_n = 256)
  at which the split-half estimate >= c, at most n_ref; its fidelity is measured there. The
  rule is calibrated per target: c is the lowest of a grid at which >= 90 % of the stopped
  maps reach the target, the same criterion as plain N90, so the two are at equal fidelity.
- passes saved = plain N90 / mean N_stop at that c (goal: 3x). The oracle median bounds what
  any stopping rule on these masks can save: pairs differ in how many masks they need, but
  only so much.

Spearman (the issue's measure) and Pearson get their own figures: the estimate is of a
Pearson correlation (the classical model behind Spearman-Brown), and Spearman over pixels is
lower at every N (the many near-zero pixels' ranks stay noisy), so it needs a higher c.

Estimator check: at every check, the estimate of a run's map times that of its reference
predicts their Pearson correlation (both are correlations with the same infinite-N map); the
mean of predicted - measured is its bias (> 0: optimistic).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _record import BENCH_DIR, Figures, out_argument, write_record
from scipy.stats import spearmanr

from xfr_lib.errors import XfrError

CACHE = BENCH_DIR / "cache" / "convergence"
STEP = 64
MIN_N = 256
#: CorrRISE parameters of every run (its defaults); part of the cache key.
PARAMS = {"n_patches": 10, "low": 0.0, "high": 1.0, "placement": "clipped", "fill": "zero"}


def load(name: str, precision: str):
    from xfr_lib.models import load_model

    try:
        return load_model(name) if precision == "fp32" else load_model(name, precision=precision)
    except TypeError:
        sys.exit(f"bench_convergence: load_model does not take precision={precision!r} yet")
    except (XfrError, ImportError, FileNotFoundError) as exc:
        sys.exit(f"bench_convergence: model {name!r} is not available ({exc})")


def orl_pairs(n_pairs: int, ids: np.ndarray) -> list[tuple[int, int, bool]]:
    """Alternately genuine and impostor pairs of ORL images, drawn with a fixed seed."""
    rng = np.random.default_rng(0)
    pairs = []
    for q in range(n_pairs):
        i = int(rng.integers(len(ids)))
        genuine = q % 2 == 0
        same = ids == ids[i]
        same[i] = False
        pairs.append((i, int(rng.choice(np.flatnonzero(same if genuine else ids != ids[i]))),
                      genuine))
    return pairs


def masks_for(model, seed: int, n: int):
    from xfr_lib.explainers import PatchMasks

    h, w = model.input_size
    return PatchMasks(n=n, height=h, width=w, n_patches=PARAMS["n_patches"], low=PARAMS["low"],
                      high=PARAMS["high"], seed=seed, placement=PARAMS["placement"], nested=True)


def cached_scores(model, name: str, chip, ref, key: dict, seed: int, n: int) -> np.ndarray:
    """The ``n`` masked scores of one run (nested masks of ``seed``), from the cache or run."""
    from xfr_lib.explainers import fill_image, masked_scores

    key = {**key, "model": name, "seed": seed, "n": n, **PARAMS}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = CACHE / f"{name}_{digest}.npz"
    if path.exists():
        return np.load(path)["scores"]
    t = time.perf_counter()
    masks = masks_for(model, seed, n)
    fill = fill_image(chip, PARAMS["fill"], seed=seed)
    scores = torch.cat([s for _, s in masked_scores(model, chip, ref[None], masks, batch_size=32,
                                                    fill=fill)], dim=1)[0].numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, scores=scores, key=json.dumps(key))
    print(f"  scored {n} masks in {time.perf_counter() - t:.0f} s ({key['side']}, seed {seed})",
          flush=True)
    return scores


def checkpoint_maps(model, scores: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps at N = 64, 128, ... of one run and their split-half estimates."""
    from xfr_lib.explainers import PearsonAccumulator
    from xfr_lib.explainers._convergence import split_half_estimate

    h, w = model.input_size
    masks = masks_for(model, seed, len(scores))
    accs = [PearsonAccumulator(1, h, w) for _ in range(3)]
    maps, est = [], []
    for start in range(0, len(scores), STEP):
        m = masks.batch(start, min(start + STEP, len(scores)))
        s = torch.from_numpy(scores[None, start:start + len(m)])
        accs[0].update(s, m)
        accs[1].update(s[:, 0::2], m[0::2])
        accs[2].update(s[:, 1::2], m[1::2])
        maps.append(accs[0].result()[0].astype(np.float32))
        est.append(split_half_estimate(accs[1].result(), accs[2].result())[0])
    return np.stack(maps), np.array(est)


def curves(model, name, chips, embs, paths, pairs, sides, n_ref):
    """Per side and run: (N grid, fidelity Spearman, Pearson, estimate, reference's estimate)."""
    out = []
    for i, j, genuine in pairs:
        for side in sides:
            x, other = (i, j) if side == "a" else (j, i)
            key = {"image": paths[x], "reference": paths[other], "side": side}
            runs = [checkpoint_maps(model, cached_scores(model, name, chips[x], embs[other], key,
                                                         seed, n_ref), seed) for seed in (0, 1)]
            for r in (0, 1):
                maps, est = runs[r]
                ref_map, ref_est = runs[1 - r][0][-1], runs[1 - r][1][-1]
                rho = np.array([spearmanr(m.ravel(), ref_map.ravel())[0] for m in maps])
                pear = np.array([np.corrcoef(m.ravel(), ref_map.ravel())[0, 1] for m in maps])
                out.append({"pair": (i, j), "genuine": genuine, "side": side, "run": r,
                            "rho": rho, "pearson": pear, "est": est, "ref_est": ref_est})
            print(f"pair {i}-{j} {'genuine' if genuine else 'impostor'} side {side}: N=500 "
                  f"rho {out[-2]['rho'][500 // STEP - 1]:.3f}/{out[-1]['rho'][500 // STEP - 1]:.3f}"
                  f" est {out[-2]['est'][500 // STEP - 1]:.3f}", flush=True)
    return out


def first_reaching(values: np.ndarray, target: float, grid: np.ndarray) -> float:
    hit = np.flatnonzero(values >= target)
    return float(grid[hit[0]]) if len(hit) else np.inf


def summarise(cs, grid, target, converge, fidelity="rho"):
    fid = np.stack([c[fidelity] for c in cs])
    frac = (fid >= target).mean(0)
    reach90 = np.flatnonzero(frac >= 0.9)
    n90 = float(grid[reach90[0]]) if len(reach90) else np.inf
    plain_first = np.array([first_reaching(f, target, grid) for f in fid])
    ok = grid >= MIN_N
    stops, stop_fid = [], []
    for c, f in zip(cs, fid, strict=True):
        k = np.flatnonzero(ok & (c["est"] >= converge))
        k = k[0] if len(k) else len(grid) - 1
        stops.append(grid[k])
        stop_fid.append(f[k])
    stops, stop_fid = np.array(stops, float), np.array(stop_fid)
    return {"plain_n90": n90, "plain_median": float(np.median(plain_first)),
            "plain_fraction_at": {int(n): float(frac[k]) for k, n in enumerate(grid)
                                  if n in (512, 1024, 2048, grid[-1])},
            "stop_mean": float(stops.mean()), "stop_median": float(np.median(stops)),
            "stop_reached": float((stop_fid >= target).mean()),
            "stop_fidelity_median": float(np.median(stop_fid)),
            "stop_fidelity_min": float(stop_fid.min()), "stops": stops.tolist()}


#: converge values tried when calibrating the rule to a fidelity target.
CONVERGE_GRID = (0.93, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99, 0.995)


def calibrate(cs, grid, target, fidelity):
    """The rule at the lowest converge whose stopped maps reach the target as often as plain
    maps at N90 (>= 90 %), with that converge; None if no converge of the grid does."""
    for c in CONVERGE_GRID:
        row = summarise(cs, grid, target, c, fidelity)
        if row["stop_reached"] >= 0.9:
            return {**row, "converge": c}
    return None


def estimator_check(cs, grid):
    """Bias of est * ref_est as a prediction of the measured Pearson correlation, by N."""
    rows = {}
    for n in (256, 512, 1024, 2048):
        k = int(np.flatnonzero(grid == n)[0])
        pred = np.array([c["est"][k] * c["ref_est"] for c in cs])
        meas = np.array([c["pearson"][k] for c in cs])
        rows[n] = {"predicted": float(pred.mean()), "measured_pearson": float(meas.mean()),
                   "measured_spearman": float(np.mean([c["rho"][k] for c in cs])),
                   "estimate": float(np.mean([c["est"][k] for c in cs])),
                   "bias": float((pred - meas).mean()), "bias_sd": float((pred - meas).std())}
    return rows


def time_pairs(model, chips, pairs, k, converge, n_ref, grid_stops):
    """Seconds per pair of a real CorrRISE explanation with the stopping rule; its masks used
    per side must equal what the curves predict (seed 0 runs)."""
    from xfr_lib.explainers import explain

    secs, checked = [], []
    for (i, j, _), stops in zip(pairs[:k], grid_stops, strict=False):
        t = time.perf_counter()
        e = explain("corrrise", model, chips[i], chips[j], n=n_ref, converge=converge, seed=0)
        secs.append(time.perf_counter() - t)
        checked.append((int(e.extras["n_used_a"]), stops))
    return secs, checked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dlib_resnet29")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--sides", default="a", choices=["a", "ab"],
                    help="image sides explained per pair (each side costs 2 x n_ref passes once)")
    ap.add_argument("--target", type=float, default=0.95, help="fidelity to reach")
    ap.add_argument("--converge", type=float, default=0.95, help="the stopping rule's target")
    ap.add_argument("--n-ref", type=int, default=4000)
    ap.add_argument("--precision", default="fp32,bf16",
                    help="model precisions of the timed explanations, comma-separated "
                         "(load_model(precision=...))")
    ap.add_argument("--time-pairs", type=int, default=1)
    out_argument(ap, "convergence")
    args = ap.parse_args()
    torch.set_num_threads(2)

    import xfr_lib
    from xfr_lib.evaluate import embed_dataset

    model = load(args.model, "fp32")
    emb_set = embed_dataset(model, xfr_lib.load_dataset("orl"), progress=False)
    chips = torch.from_numpy(emb_set.chips).permute(0, 3, 1, 2).float() / 255
    embs = torch.nn.functional.normalize(torch.as_tensor(emb_set.embeddings).float(), dim=1)
    paths = [str(Path(p).relative_to(Path(p).parents[1])) for p in emb_set.paths]
    pairs = orl_pairs(args.pairs, np.asarray(emb_set.identities))
    grid = np.array([min(k, args.n_ref) for k in range(STEP, args.n_ref + STEP, STEP)])

    cs = curves(model, args.model, chips, embs, paths, pairs, args.sides, args.n_ref)
    summary = {f: summarise(cs, grid, args.target, args.converge, f) for f in ("rho", "pearson")}
    calibrated = {f: calibrate(cs, grid, args.target, f) for f in ("rho", "pearson")}
    est = estimator_check(cs, grid)
    s = summary["rho"]
    # Timed at the converge that reaches the Spearman target (else the --converge given).
    timed_c = calibrated["rho"]["converge"] if calibrated["rho"] else args.converge
    stops = summarise(cs, grid, args.target, timed_c)["stops"]
    seed0_stops = [int(st) for c, st in zip(cs, stops, strict=True)
                   if c["run"] == 0 and c["side"] == "a"]

    secs = {}
    for precision in args.precision.split(",") if args.time_pairs else []:
        secs[precision], checked = time_pairs(load(args.model, precision), chips, pairs,
                                              args.time_pairs, timed_c, args.n_ref, seed0_stops)
        # bf16 scores differ from the cached fp32 ones, so only fp32 must stop where they do.
        if precision == "fp32" and any(a != b for a, b in checked):
            sys.exit(f"bench_convergence: a real converge run used other mask counts than the "
                     f"curves predict: {checked}")

    t = args.target
    fig = Figures()
    for f, label in (("rho", "Spearman"), ("pearson", "Pearson")):
        plain, cal = summary[f], calibrated[f]
        tag = f"{t:g} {label}"
        fig.add(f"corrrise masks to {tag} (plain N90)", plain["plain_n90"], "masks",
                note=f"fixed N at which 90% of {len(cs)} maps ({len(pairs)} ORL pairs) reach it")
        if cal is None:
            continue
        fig.add(f"corrrise masks to {tag} (stopping rule)", cal["stop_mean"], "masks",
                reference=f"corrrise masks to {tag} (plain N90)",
                reference_value=plain["plain_n90"], goal=("<=", 1 / 3),
                note=f"mean N at converge={cal['converge']:g}, the lowest with >= 90% of maps "
                     f"reaching it ({100 * cal['stop_reached']:.0f}%)")
        fig.add(f"corrrise passes saved at {tag}", plain["plain_n90"] / cal["stop_mean"], "x",
                goal=(">=", 3), note="plain N90 / stopping-rule mean N, equal 90% criterion")
        fig.add(f"corrrise masks to {tag} (oracle median)", plain["plain_median"], "masks",
                note="median first N per map: no rule on these masks can beat it much")
    fig.add("split-half estimator bias at N=512", est[512]["bias"], "corr", goal=("<=", 0.01),
            note="predicted - measured Pearson with the reference (> 0: optimistic)")
    for precision, times in secs.items():
        fig.add(f"corrrise s/pair at {t:g} Spearman ({precision})", float(np.median(times)),
                "s/pair", goal=("<", 1.0) if precision != "fp32" else None,
                note=f"n={args.n_ref}, converge={timed_c:g}, both sides, median of {len(times)}")
    print()
    fig.print()
    print("\nestimator (means over maps):")
    for n, row in est.items():
        print(f"  N={n:5d} estimate {row['estimate']:.3f}  predicted corr with ref "
              f"{row['predicted']:.3f}  measured Pearson {row['measured_pearson']:.3f} "
              f"Spearman {row['measured_spearman']:.3f}  bias {row['bias']:+.3f} "
              f"(sd {row['bias_sd']:.3f})")
    print(f"plain: fraction of maps at >= {t:g} by N: {s['plain_fraction_at']}")
    print("stopping rule by converge (Spearman fidelity):")
    for c in CONVERGE_GRID:
        row = summarise(cs, grid, t, c)
        print(f"  converge={c:.3f}: mean N {row['stop_mean']:6.0f}, median {row['stop_median']:5.0f},"
              f" {100 * row['stop_reached']:3.0f}% reach {t:g}, median fidelity "
              f"{row['stop_fidelity_median']:.3f}, passes saved vs plain N90 "
              f"{s['plain_n90'] / row['stop_mean']:.2f}x")
    record = {"model": args.model, "pairs": [list(p) for p in pairs], "sides": args.sides,
              "target": t, "converge": args.converge, "n_ref": args.n_ref,
              "summary": summary, "calibrated": calibrated, "estimator": {str(k): v for k, v in est.items()},
              "seconds_per_pair": secs, "timed_converge": timed_c, "figures": fig.rows}
    write_record(record, args.out)


if __name__ == "__main__":
    main()
