"""Where DlibResNet29's cosine threshold comes from, measured on real dlib chips.

dlib decides "same person" when the Euclidean distance of two raw descriptors is below 0.6.
xfr compares unit-length embeddings by cosine similarity instead. For two descriptors of norm
``r``, ``|a - b|^2 = 2 r^2 (1 - cos)``, so dlib's rule becomes ``cos > 1 - 0.6^2 / (2 r^2)``;
raw descriptors are not unit length, but their norms vary little, and ``r`` is taken as their
median. This benchmark measures, on the data the threshold was chosen from:

* the chips: every ORL photo (40 people x 10) in which dlib's own HOG detector finds a face
  (upsampled once: ORL photos are 92x112) and every in-the-wild photo of the ``wild`` asset
  (shrunk to 1000 px at most, not upsampled), aligned by dlib's 5-point shape predictor and
  ``dlib.get_face_chip(size=150, padding=0.25)``, as in tests/test_model_dlib.py;
* the raw descriptors from ``DlibResNet29.features`` (which reproduces dlib's
  ``compute_face_descriptor``; the largest difference to dlib on a few of the chips is printed,
  and ``--dlib`` computes every descriptor with dlib itself, about a minute and a half);
* the median norm ``r`` with its 5 and 95 % percentiles, minimum and maximum; the cosine
  threshold ``1 - 0.6^2 / (2 r^2)`` derived from dlib's rule; over all pairs of chips, the
  agreement of the cosine rule at the model's ``threshold`` with the L2 rule, and the single
  cosine threshold that agrees best; and the pair accuracy of both rules against the people's
  identities (40 ORL subjects and the people of the wild photos).

Each figure is printed with the reference value it was first measured as and their ratio, and
everything is written to ``build/bench/dlib_threshold.json``.

Run: ``python bench/bench_dlib_threshold.py [--dlib] [--out build/bench/dlib_threshold.json]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _record import out_argument, write_record
from PIL import Image
from scipy.spatial.distance import pdist

from xfr_lib.data import asset_dir, asset_file
from xfr_lib.evaluate import roc
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models.dlib_resnet import ASSET, DAT_FILE, DlibResNet29

#: dlib's rule: same person if the Euclidean distance of raw descriptors is below this.
DLIB_L2_THRESHOLD = 0.6
ORL_PEOPLE, ORL_PHOTOS = 40, 10
WILD_MAX_SIDE = 1000  # wild photos are shrunk to this for dlib's (slow) HOG detector
CHIP_SIZE, CHIP_PADDING = 150, 0.25
PARITY_CHIPS = 8  # chips also run through dlib itself, to check the stand-in
PARITY_TOLERANCE = 1e-4  # largest accepted difference of a descriptor value to dlib's
BATCH = 32

#: The figures as first measured (DlibResNet29's docstring used to quote them). Counts are
#: exact; rates and norms were quoted to three decimals.
REFERENCE = {
    "orl_chips": 390,
    "wild_chips": 10,
    "pairs": 79_800,
    "norm_median": 1.414,
    "norm_p5": 1.327,
    "norm_p95": 1.496,
    "norm_min": 1.235,
    "norm_max": 1.565,
    "derived_threshold": 0.910,
    "agreement_at_model_threshold": 0.992,
    "best_threshold": 0.911,
    "agreement_at_best_threshold": 0.993,
    "accuracy_l2": 0.980,
    "accuracy_cosine": 0.978,
}

#: Printed names of the figures, in printing order (figures without a reference print "-").
LABELS = {
    "orl_chips": "ORL photos with a dlib HOG face (of 400)",
    "wild_chips": "wild photos with a dlib HOG face",
    "pairs": "pairs of chips",
    "norm_median": "median descriptor norm r",
    "norm_p5": "descriptor norm, 5 % percentile",
    "norm_p95": "descriptor norm, 95 % percentile",
    "norm_min": "descriptor norm, minimum",
    "norm_max": "descriptor norm, maximum",
    "derived_threshold": "cosine threshold 1 - 0.6^2 / (2 r^2)",
    "model_threshold": "DlibResNet29.threshold",
    "agreement_at_model_threshold": "agreement with L2 < 0.6, cos >= model threshold",
    "agreement_at_derived_threshold": "agreement with L2 < 0.6, cos >= derived threshold",
    "best_threshold": "best single cosine threshold (agreement)",
    "agreement_at_best_threshold": "agreement with L2 < 0.6, cos >= best threshold",
    "accuracy_l2": "pair accuracy, dlib's L2 < 0.6",
    "accuracy_cosine": "pair accuracy, cos >= model threshold",
    "accuracy_l2_orl_only": "pair accuracy, L2 rule, ORL pairs only",
    "accuracy_cosine_orl_only": "pair accuracy, cosine rule, ORL pairs only",
}


def dlib_chips() -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """dlib's own chips: ``(chips [N,150,150,3] uint8, identities, sources, photos without a
    face)``; ORL first (``s<k>/<n>.pgm``, identity ``orl_s<k>``), then the wild photos."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(asset_file("dlib_landmarks", "shape_predictor_5_face_landmarks.dat"))
    )

    def chip(rgb: np.ndarray, upsample: int) -> np.ndarray | None:
        faces = detector(rgb, upsample)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.area())
        return dlib.get_face_chip(rgb, predictor(rgb, face), size=CHIP_SIZE,
                                  padding=CHIP_PADDING)

    chips, identities, sources, missed = [], [], [], []
    orl = asset_dir("orl")
    for person in range(1, ORL_PEOPLE + 1):
        for photo in range(1, ORL_PHOTOS + 1):
            name = f"s{person}/{photo}.pgm"
            c = chip(np.asarray(Image.open(orl / name).convert("RGB")), upsample=1)
            if c is None:
                missed.append(f"orl/{name}")
                continue
            chips.append(c)
            identities.append(f"orl_s{person}")
            sources.append(f"orl/{name}")
    wild = asset_dir("wild")
    for path in sorted(wild.rglob("*.jpg")):
        img = Image.open(path).convert("RGB")
        img.thumbnail((WILD_MAX_SIDE, WILD_MAX_SIDE))
        c = chip(np.asarray(img), upsample=0)
        name = f"wild/{path.relative_to(wild).as_posix()}"
        if c is None:
            missed.append(name)
            continue
        chips.append(c)
        identities.append(f"wild_{path.stem.rsplit('_', 1)[0]}")  # obama_2 -> obama
        sources.append(name)
    return np.stack(chips), identities, sources, missed


def torch_descriptors(chips: np.ndarray) -> np.ndarray:
    """Raw 128-D descriptors from ``DlibResNet29.features``, float64."""
    model = DlibResNet29.pretrained()
    out = []
    with torch.inference_mode():
        for i in range(0, len(chips), BATCH):
            out.append(model.features(chip_to_tensor(chips[i:i + BATCH])).double().numpy())
    return np.concatenate(out)


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    """Raw descriptors from dlib's own ``compute_face_descriptor``, float64."""
    import dlib

    recognizer = dlib.face_recognition_model_v1(str(asset_file(ASSET, DAT_FILE)))
    return np.array([np.array(recognizer.compute_face_descriptor(c)) for c in chips])


def best_agreement(cos: np.ndarray, same_l2: np.ndarray) -> tuple[float, float, float, float]:
    """The cosine threshold whose decisions (accept ``cos >= t``) agree most with ``same_l2``.

    Every ``t`` in ``(low, high]`` of two consecutive distinct cosines decides alike; on ties
    the lowest such interval is taken. Returns ``(midpoint, low, high, agreement)``.
    """
    curve = roc(cos, same_l2)  # "genuine" = the pairs dlib's L2 rule accepts
    n_same, n_other = curve.attrs["n_genuine"], curve.attrs["n_impostor"]
    agree = (n_same * curve["tmr"] + n_other * (1 - curve["fmr"])).to_numpy() / len(cos)
    i = len(agree) - 1 - int(np.argmax(agree[::-1]))  # rows by decreasing threshold
    high = float(curve["threshold"].iloc[i])
    low = float(curve["threshold"].iloc[i + 1]) if i + 1 < len(curve) else float(cos.min()) - 1
    return (low + high) / 2, low, high, float(agree[i])


def measure(desc: np.ndarray, identities: list[str], threshold: float) -> dict[str, float]:
    """Every figure of the module doc from raw descriptors and identities."""
    norms = np.linalg.norm(desc, axis=1)
    r = float(np.median(norms))
    derived = 1 - DLIB_L2_THRESHOLD**2 / (2 * r**2)
    # pdist's condensed order is that of the upper triangle (i < j), row by row.
    l2 = pdist(desc)
    cos = 1 - pdist(desc, "cosine")
    upper = np.triu_indices(len(desc), 1)
    ids = np.array(identities)
    same_person = (ids[:, None] == ids[None, :])[upper]
    orl = np.char.startswith(ids, "orl_")
    orl_pair = (orl[:, None] & orl[None, :])[upper]
    same_l2 = l2 < DLIB_L2_THRESHOLD
    same_cos = cos >= threshold
    best, low, high, best_agree = best_agreement(cos, same_l2)
    return {
        "orl_chips": int(orl.sum()),
        "wild_chips": int(len(ids) - orl.sum()),
        "pairs": len(l2),
        "norm_median": r,
        "norm_p5": float(np.percentile(norms, 5)),
        "norm_p95": float(np.percentile(norms, 95)),
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "derived_threshold": derived,
        "model_threshold": threshold,
        "agreement_at_model_threshold": float(np.mean(same_cos == same_l2)),
        "agreement_at_derived_threshold": float(np.mean((cos >= derived) == same_l2)),
        "best_threshold": best,
        "best_threshold_interval": [low, high],
        "agreement_at_best_threshold": best_agree,
        "accuracy_l2": float(np.mean(same_l2 == same_person)),
        "accuracy_cosine": float(np.mean(same_cos == same_person)),
        "accuracy_l2_orl_only": float(np.mean(same_l2[orl_pair] == same_person[orl_pair])),
        "accuracy_cosine_orl_only": float(np.mean(same_cos[orl_pair] == same_person[orl_pair])),
        "genuine_pairs": int(same_person.sum()),
    }


def table(figures: dict) -> list[str]:
    lines = [f"{'figure':<52} {'measured':>10} {'reference':>10} {'ratio':>8}"]
    for key, label in LABELS.items():
        value, ref = figures[key], REFERENCE.get(key)
        shown = f"{value:>10d}" if isinstance(value, int) else f"{value:>10.4f}"
        if ref is None:
            lines.append(f"{label:<52} {shown} {'-':>10} {'-':>8}")
        else:
            ref_shown = f"{ref:>10d}" if isinstance(ref, int) else f"{ref:>10.3f}"
            lines.append(f"{label:<52} {shown} {ref_shown} {value / ref:>8.4f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dlib", action="store_true",
                        help="compute every descriptor with dlib itself (slow) instead of "
                             "DlibResNet29.features")
    out_argument(parser, "dlib_threshold")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import dlib

    start = time.perf_counter()
    chips, identities, sources, missed = dlib_chips()
    if args.dlib:
        desc = dlib_descriptors(chips)
        source, parity = "dlib compute_face_descriptor", None
    else:
        desc = torch_descriptors(chips)
        pick = np.linspace(0, len(chips) - 1, PARITY_CHIPS).round().astype(int)
        parity = float(np.abs(desc[pick] - dlib_descriptors(chips[pick])).max())
        source = "DlibResNet29.features"
    figures = measure(desc, identities, DlibResNet29.threshold)
    seconds = time.perf_counter() - start

    print(f"dlib {dlib.__version__}, torch {torch.__version__}: {len(chips)} dlib chips "
          f"({figures['orl_chips']} ORL + {figures['wild_chips']} wild), {figures['pairs']} "
          f"pairs, {figures['genuine_pairs']} of them of one person")
    print(f"descriptors: {source}")
    if parity is not None:
        print(f"largest difference to dlib's compute_face_descriptor on {PARITY_CHIPS} chips: "
              f"{parity:.1e} (tolerance {PARITY_TOLERANCE:.0e})")
    print(f"no dlib HOG face in: {', '.join(missed) or 'none'}")
    print(f"best threshold interval: cos in ({figures['best_threshold_interval'][0]:.5f}, "
          f"{figures['best_threshold_interval'][1]:.5f}]")
    for line in table(figures):
        print(line)

    record = {
        "measured": figures,
        "reference": REFERENCE,
        "ratio": {k: figures[k] / v for k, v in REFERENCE.items()},
        "descriptors": source,
        "parity_max_abs_difference": parity,
        "parity_chips": PARITY_CHIPS if parity is not None else 0,
        "chips": sources,
        "no_face": missed,
        "versions": {"dlib": dlib.__version__, "torch": torch.__version__},
        "seconds": round(seconds, 1),
    }
    write_record(record, args.out, sys.stderr)
    if parity is not None and parity > PARITY_TOLERANCE:
        sys.exit(f"DlibResNet29.features differs from dlib by {parity:.1e} > "
                 f"{PARITY_TOLERANCE:.0e}: these figures are not dlib's; run with --dlib")


if __name__ == "__main__":
    main()
