"""The evaluation runner: methods x models x one dataset x Deletion/Insertion, resumable.

    from xfr_lib.evaluate import evaluation_spec, run_evaluation
    spec = evaluation_spec({"methods": ["corrrise", "gradcam"], "models": ["dlib_resnet29"],
                            "dataset": "orl", "pairs": 20})
    result = run_evaluation(spec, "out/eval")
    result.summary          # one row per model x method x task x metric x fill x map kind

Command line: ``xfr evaluate -f params.yaml --out DIR`` or the same settings as flags
(``xfr evaluate --methods corrrise,rise --models dlib_resnet29 --dataset orl --pairs 20
--metrics deletion,insertion --out DIR``). The parameter file holds the fields of
:class:`EvaluationSpec`; anything wrong in it (an unknown method, model, dataset, metric or
field, a value of the wrong type, a method parameter its method refuses) is refused in one
line before any work starts.

What is evaluated. ``pairs`` verification pairs are drawn (seeded) from the dataset's
protocol among those whose faces were found, genuine and impostor in turn: similarity maps on
the genuine pairs, dissimilarity maps on the impostor pairs (:mod:`._deletion`). With the
identification metrics, ``probes`` probes are drawn from an identification protocol (one
gallery image per identity) and modified by their similarity map against their true mate.
Seeded methods are run once per seed of ``seeds``.

Resuming. Every map and every curve is written to ``OUT/cache/`` as soon as it is computed,
named by a hash of everything that made it (model weights, method and resolved parameters,
the chips' pixels, the curve settings, xfr's version), through an atomic rename: a killed run
leaves either a whole file or none. A second run with the same ``OUT`` reads what exists,
computes the rest and writes the same tables as an uninterrupted run. The tables are built
from the cache at the end:

- ``steps.csv`` (or ``.parquet``): one row per model x method x seed x task x metric x fill x
  pair x step, with the fraction, the score(s) and whether the decision was correct;
- ``summary.csv``: per model x method x seed x task x metric x fill x map kind, the number of
  pairs, the area (mean over pairs of the per-pair area = the area of the mean curve) and its
  bootstrap interval over pairs;
- ``run.yaml``: the parameters, versions, the thresholds used, the seconds each method's maps
  took (as computed, also when read back from the cache) and this invocation's timings (the
  tasks' own seconds summed, and the wall time of the task phase) and where it ran.

Where it runs. The work is split into tasks, one per model x method x method seed x pair (or
probe): its maps, then all its curves, each cached as above. By default they run one after the
other in this process. ``run_evaluation(..., cluster="local:N")`` (``xfr evaluate ...
--workers N``) runs them on N worker processes of a Dask ``LocalCluster`` started for the run;
``cluster="tcp://host:port"`` (``--scheduler ADDRESS``) on the workers of a running Dask
scheduler (``dask scheduler``, then ``dask worker --no-nanny ADDRESS`` on each machine: a
nanny's ``MALLOC_TRIM_THRESHOLD_`` slows tasks, see :func:`~xfr_lib.evaluate.local_cluster`),
which need the same xfr and model files and a cache folder they all share at the same path; a
``distributed.Client`` may be given too. Each worker process loads a model once. A worker that
dies loses only its unfinished tasks, which Dask runs again on another worker. Where it runs is
not a parameter of the evaluation (it is no field of :class:`EvaluationSpec` and no part of a
cache key): the tables are the same to the last bit, because every task computes with one
thread (torch's and BLAS's, ``_TASK_THREADS``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import platform
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from xfr_lib._io import atomic_write, atomic_write_text, load_yaml_mapping
from xfr_lib.errors import XfrError
from xfr_lib.evaluate._deletion import (
    MODIFIED_IMAGES,
    TIE_RULES,
    check_choice,
    curve_area,
    identification_curve,
    pair_seed,
    verification_curve,
)
from xfr_lib.evaluate._fills import EVALUATION_FILLS
from xfr_lib.evaluate._intervals import LEVEL, N_BOOTSTRAP, bootstrap_interval
from xfr_lib.models import PRECISIONS, model_fingerprint

#: Metrics the runner computes: the verification and identification Deletion / Insertion.
METRICS = ("deletion", "insertion", "identification-deletion", "identification-insertion")
#: Table formats.
FORMATS = ("csv", "parquet")
#: Benchmarks whose official pairs replace a drawn protocol (their images need ``dataset_root``).
BENCHMARKS = ("lfw", "cplfw", "calfw")
# Explainer parameters that change speed, not maps: left out of the cache key.
_SPEED_ONLY = ("progress", "batch_size", "chunk_size")


@dataclass(frozen=True)
class EvaluationSpec:
    """What to evaluate. Every field can be set in the parameter file.

    Attributes:
        methods: explanation methods (``list_methods()`` names).
        models: face models (``list_models()`` names).
        dataset: a ``list_datasets()`` name (``lfw``/``cplfw``/``calfw``: official pairs).
        dataset_root: the dataset's folder where it is not a bundled asset (e.g. LFW).
        pairs: verification pairs drawn, genuine and impostor in turn.
        probes: identification probes drawn (identification metrics only).
        distractors: a dataset of other people appended to the identification gallery
            (e.g. ``radar``, 609 politicians; the papers' galleries are large).
        n_distractors: use a seeded sample of this many distractors (default all).
        metrics: some of :data:`METRICS`.
        steps: fractions ``0, 1/steps, ..., 1`` (``steps + 1`` points).
        fills: fills evaluated (:data:`xfr_lib.evaluate._fills.EVALUATION_FILLS`).
        images: ``"auto"`` (the default: ``"one"`` for genuine pairs, ``"both"`` for impostor
            pairs), ``"both"`` or ``"one"`` (only B, the probe, is modified). Why "auto": the
            same fill in both images makes them alike, so with ``"both"`` a genuine pair whose
            pixels are all deleted is two identical plain images, accepted again (its Deletion
            curve comes back up to 1 at p = 1); with ``"one"`` an impostor pair stays rejected
            whatever is deleted from B alone (a plain image is like no one), so its curve
            cannot tell maps apart. Each kind gets the setting in which its map can be judged.
        ties: ``"random"`` or ``"signed"`` (:func:`xfr_lib.evaluate._deletion.pixel_order`).
        threshold: ``"model"`` (the model's calibrated threshold), ``"eer"`` (the EER threshold
            of the clean scores of every usable pair of the protocol) or a number.
        seed: seed of the pair and probe draws, of the tie order and of the fills' noise.
        seeds: seeds of the seeded methods (one evaluation each); default ``[seed]``. In the
            tables, ``method seed`` is -1 for methods that draw nothing at random.
        method_params: per method, parameters passed to it (e.g. ``{corrrise: {n: 500}}``).
        variants: named variants of a method, usable in ``methods`` like a method, e.g.
            ``{corrrise-gauss: {method: corrrise, regularize: gaussian}}`` (the tables name
            them by their label).
        bootstrap: bootstrap resamples of the intervals (0: no intervals).
        format: ``"csv"`` or ``"parquet"`` for the step table.
        batch_size: chips per forward pass of the curves.
        device: torch device of the models.
        precision: numeric precision of the models' forward passes, ``"fp32"`` or ``"bf16"``
            (``xfr_lib.load_model``); part of every cache key (through the model's fingerprint).
    """

    methods: tuple[str, ...]
    models: tuple[str, ...]
    dataset: str = "orl"
    dataset_root: str | None = None
    pairs: int = 20
    probes: int = 10
    distractors: str | None = None
    n_distractors: int | None = None
    metrics: tuple[str, ...] = ("deletion", "insertion")
    steps: int = 10
    fills: tuple[str, ...] = ("zero",)
    images: str = "auto"
    ties: str = "random"
    threshold: Any = "model"
    seed: int = 0
    seeds: tuple[int, ...] | None = None
    method_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bootstrap: int = N_BOOTSTRAP
    format: str = "csv"
    batch_size: int = 32
    device: str = "cpu"
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, dicts), as written to ``run.yaml``."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["method_params"] = {m: dict(p) for m, p in self.method_params.items()}
        out["variants"] = {m: dict(p) for m, p in self.variants.items()}
        return out

    def method_and_params(self, name: str) -> tuple[str, dict[str, Any]]:
        """The registry method of a name of ``methods`` and the parameters it is run with."""
        params = {}
        method = name
        if name in self.variants:
            params = {k: v for k, v in self.variants[name].items() if k != "method"}
            method = self.variants[name]["method"]
        params.update(self.method_params.get(name, {}))
        return method, params

    @property
    def method_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.seeds is not None else (self.seed,)


_FIELDS = {f.name: f for f in dataclasses.fields(EvaluationSpec)}
_LISTS = ("methods", "models", "metrics", "fills", "seeds")
_INTS = ("pairs", "probes", "steps", "seed", "bootstrap", "batch_size")


def load_evaluation_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML parameter file (one-line error if unreadable or not a mapping)."""
    return load_yaml_mapping(path, XfrError)


def evaluation_spec(data: Mapping[str, Any], source: str = "parameters") -> EvaluationSpec:
    """Check a mapping of :class:`EvaluationSpec` fields; every mistake is one line.

    ``methods: all`` means every method. Names, types and value ranges are checked here;
    the method parameters are checked against the models by :func:`check_evaluation`.
    """
    from xfr_lib.data import list_datasets
    from xfr_lib.explainers import list_methods
    from xfr_lib.models import list_models

    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise XfrError(f"{source}: unknown field {unknown[0]!r}; the fields are "
                       f"{', '.join(_FIELDS)}")
    values = dict(data)
    for key in ("methods", "models"):
        if key not in values:
            raise XfrError(f"{source}: give {key} (e.g. {key}: "
                           f"[{'corrrise' if key == 'methods' else 'dlib_resnet29'}])")
    if values["methods"] == "all":
        values["methods"] = list_methods()
    variants = values.get("variants") or {}
    if not isinstance(variants, dict) or not all(
            isinstance(v, dict) and v.get("method") in list_methods() for v in variants.values()):
        raise XfrError(f"{source}: variants must map a label to a method and its parameters, "
                       f"e.g. {{corrrise-gauss: {{method: corrrise, regularize: gaussian}}}}, "
                       f"with a method from {', '.join(list_methods())}")
    clash = sorted(set(variants) & set(list_methods()))
    if clash:
        raise XfrError(f"{source}: variant label {clash[0]!r} is a method's name; choose another")
    values["variants"] = {label: dict(v) for label, v in variants.items()}
    for key in _LISTS:
        if key in values and values[key] is not None:
            value = values[key]
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple) or not value:
                raise XfrError(f"{source}: {key} must be a non-empty list, got {value!r}")
            values[key] = tuple(value)
    for key in _INTS:
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], int)):
            raise XfrError(f"{source}: {key} must be an integer, got {values[key]!r}")
    if values.get("seeds") is not None and not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values["seeds"]):
        raise XfrError(f"{source}: seeds must be non-negative integers, got "
                           f"{list(values['seeds'])}")
    for key, choices in (("methods", [*list_methods(), *variants]), ("models", list_models()),
                         ("metrics", METRICS), ("fills", EVALUATION_FILLS)):
        for name in values.get(key, ()):
            if name not in choices:
                raise XfrError(f"{source}: {key[:-1]} {name!r} is unknown; choose from "
                               f"{', '.join(choices)}")
        if key in values and len(set(values[key])) != len(values[key]):
            raise XfrError(f"{source}: {key} lists a name twice")
    for key in ("distractors",):
        name = values.get(key)
        if name is not None and name not in list_datasets():
            raise XfrError(f"{source}: {key} {name!r} is unknown; choose from "
                           f"{', '.join(list_datasets())}")
    n_dis = values.get("n_distractors")
    if n_dis is not None and (isinstance(n_dis, bool) or not isinstance(n_dis, int) or n_dis < 0):
        raise XfrError(f"{source}: n_distractors must be a non-negative integer, got {n_dis!r}")
    dataset = values.get("dataset", "orl")
    if not isinstance(dataset, str) or dataset not in list_datasets():
        raise XfrError(f"{source}: dataset {dataset!r} is unknown; choose from "
                       f"{', '.join(list_datasets())}")
    if dataset in BENCHMARKS and not values.get("dataset_root"):
        raise XfrError(f"{source}: dataset {dataset!r} needs dataset_root, the folder you "
                       f"downloaded it into")
    for key, minimum in (("pairs", 2), ("probes", 1), ("steps", 1), ("seed", 0),
                         ("bootstrap", 0), ("batch_size", 1)):
        if key in values and values[key] < minimum:
            raise XfrError(f"{source}: {key}={values[key]}: use {minimum} or more")
    check_choice(values.get("images", "auto"), (*MODIFIED_IMAGES, "auto"), f"{source}: images")
    check_choice(values.get("ties", "random"), TIE_RULES, f"{source}: ties")
    check_choice(values.get("format", "csv"), FORMATS, f"{source}: format")
    check_choice(values.get("precision", "fp32"), PRECISIONS, f"{source}: precision")
    threshold = values.get("threshold", "model")
    if not (threshold in ("model", "eer") or (isinstance(threshold, int | float)
                                              and not isinstance(threshold, bool))):
        raise XfrError(f"{source}: threshold {threshold!r}: use model, eer or a number")
    params = values.get("method_params") or {}
    if not isinstance(params, dict) or not all(isinstance(p, dict) for p in params.values()):
        raise XfrError(f"{source}: method_params must map a method to its parameters, e.g. "
                       f"{{corrrise: {{n: 500}}}}")
    for method in params:
        if method not in values["methods"]:
            raise XfrError(f"{source}: method_params names {method!r}, which is not in methods")
    values["method_params"] = {m: dict(p) for m, p in params.items()}
    return EvaluationSpec(**values)


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` wrote.

    Attributes:
        steps: the step table (see the module docstring).
        summary: the summary table.
        run: the contents of ``run.yaml``.
        out: the output folder.
    """

    steps: pd.DataFrame
    summary: pd.DataFrame
    run: dict[str, Any]
    out: Path

    def curves(self) -> pd.DataFrame:
        """Mean rate of correct decisions per step (the curves the areas are taken under)."""
        keys = ["model", "method", "method seed", "task", "metric", "fill", "map", "step",
                "fraction"]
        return (self.steps.groupby(keys, dropna=False).correct.mean()
                .rename("rate").reset_index())


# --- pairs and probes ---------------------------------------------------------------------


@dataclass
class _Item:
    """One pair (verification) or one probe and its mate (identification)."""

    label: str
    kind: str  # "genuine", "impostor" or "probe"
    chip_a: np.ndarray
    chip_b: np.ndarray  # identification: the mate
    identity: str = ""


@dataclass(frozen=True)
class _ModelSetting:
    """What the maps and curves of one model need besides the model (sent with every task)."""

    name: str
    device: str
    precision: str
    fingerprint: str
    threshold: float
    gallery: np.ndarray | None
    gallery_ids: tuple[str, ...]


@dataclass
class _ModelData:
    model: Any
    setting: _ModelSetting
    pairs: list[_Item]
    probes: list[_Item]


def _image_label(emb, i: int) -> str:
    return f"{emb.identities[i]}/{Path(emb.paths[i]).name}"


def _dataset_and_protocol(spec: EvaluationSpec):
    from xfr_lib import data

    if spec.dataset in BENCHMARKS:
        bench = getattr(data, spec.dataset)(spec.dataset_root)
        return bench.dataset, bench.protocol
    ds = data.load_dataset(spec.dataset, root=spec.dataset_root)
    if len(ds.identities) >= data.DEFAULT_N_FOLDS:
        return ds, data.make_verification_protocol(ds, seed=spec.seed)
    # Too few people for the default folds (e.g. the 11 wild photos): one fold with every
    # possible pair (folds play no part here).
    counts = Counter(im.identity for im in ds.images)
    genuine = sum(k * (k - 1) // 2 for k in counts.values())
    impostor = len(ds.images) * (len(ds.images) - 1) // 2 - genuine
    return ds, data.make_verification_protocol(ds, n_folds=1, genuine_per_fold=genuine,
                                               impostor_per_fold=impostor, seed=spec.seed)


def _model_data(spec: EvaluationSpec, name: str, dataset, protocol, progress: bool) -> _ModelData:
    from xfr_lib.data import load_dataset, make_identification_protocol
    from xfr_lib.evaluate._embeddings import embed_dataset, embed_paths
    from xfr_lib.evaluate._metrics import eer
    from xfr_lib.models import load_model

    model = load_model(name, device=spec.device, precision=spec.precision)
    emb = embed_dataset(model, dataset, progress=progress)
    valid = emb.ok[protocol.pairs].all(1)
    if spec.threshold == "model":
        threshold = float(model.threshold)
    elif spec.threshold == "eer":
        threshold = float(eer(emb.pair_scores(protocol.pairs[valid]), protocol.labels[valid])
                          .threshold)
    else:
        threshold = float(spec.threshold)
    pairs = []
    if any(not m.startswith("identification") for m in spec.metrics):
        for p in protocol.draw(spec.pairs, seed=spec.seed, valid=valid):
            i, j = (int(v) for v in protocol.pairs[p])
            pairs.append(_Item(f"{_image_label(emb, i)}:{_image_label(emb, j)}",
                               "genuine" if protocol.labels[p] else "impostor",
                               emb.chips[i], emb.chips[j]))
    probes, gallery, gallery_ids = [], None, []
    if any(m.startswith("identification") for m in spec.metrics):
        extra = load_dataset(spec.distractors) if spec.distractors else None
        ident = make_identification_protocol(dataset, seed=spec.seed, distractors=extra,
                                             n_distractors=spec.n_distractors)
        g = [int(i) for i in ident.gallery if emb.ok[i]]
        gallery = emb.embeddings[g].astype(np.float64)
        gallery_ids = [emb.identities[i] for i in g]
        if ident.distractors:
            dis = embed_paths(model, [im.path for im in ident.distractors], progress=progress,
                              identities=[im.identity for im in ident.distractors],
                              desc="distractors: align")
            gallery = np.concatenate([gallery, dis.embeddings[dis.ok].astype(np.float64)])
            gallery_ids += [d for d, ok in zip(dis.identities, dis.ok, strict=True) if ok]
        mates = {}
        for i in g:
            mates.setdefault(emb.identities[i], i)
        usable = [int(i) for i in ident.probes if emb.ok[i] and emb.identities[i] in mates]
        if len(usable) < spec.probes:
            raise XfrError(f"{spec.probes} probes asked for, {spec.dataset} has {len(usable)} "
                           f"usable ones with {name}")
        rng = np.random.default_rng(spec.seed)
        for i in sorted(rng.choice(usable, size=spec.probes, replace=False).tolist()):
            mate = mates[emb.identities[i]]
            probes.append(_Item(f"{_image_label(emb, i)}:{_image_label(emb, mate)}", "probe",
                                emb.chips[i], emb.chips[mate], emb.identities[i]))
    setting = _ModelSetting(name, spec.device, spec.precision, model_fingerprint(model),
                            threshold, gallery, tuple(gallery_ids))
    return _ModelData(model, setting, pairs, probes)


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _chip_digest(chip: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(chip).tobytes()).hexdigest()[:16]


# --- the cache ------------------------------------------------------------------------------


def _save_npz(path: Path, arrays: dict[str, Any]) -> None:
    def write(f):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())

    atomic_write(path, write)


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a finished cache file, or None if it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - an unreadable file is recomputed, never trusted
        warnings.warn(f"unreadable cache file {path} is recomputed", stacklevel=2)
        return None


# --- the run --------------------------------------------------------------------------------


def check_evaluation(spec: EvaluationSpec) -> None:
    """Refuse, before any work, method parameters that a method refuses for a model."""
    from xfr_lib.explainers import get_explainer, method_info
    from xfr_lib.models import load_model

    for name in spec.models:
        model = load_model(name, device=spec.device, precision=spec.precision)
        for label in spec.methods:
            method, params = spec.method_and_params(label)
            if "seed" in params and "seed" in method_info(method)["defaults"]:
                raise XfrError(f"parameters of {label}: give its seeds in seeds, not seed")
            try:
                get_explainer(method, model, **params)
            except XfrError as exc:
                raise XfrError(f"parameters of {label} with {name}: {exc}") from None
            except TypeError as exc:
                raise XfrError(f"parameters of {label}: {exc}") from None


def run_evaluation(spec: EvaluationSpec, out: str | Path, progress: bool = True,
                   cache: str | Path | None = None, cluster: Any = None) -> EvaluationResult:
    """Run (or resume) the evaluation described by ``spec`` into the folder ``out``.

    ``cache`` (default ``out/cache``) may be shared by several evaluations: one that needs
    maps or curves another has made reads them instead of computing them again.

    ``cluster`` says where the tasks (one per model x method x method seed x pair or probe:
    its maps, then all its curves) run: ``None`` in this process, one after the other;
    ``"local:N"`` on N worker processes started on this machine for the run;
    ``"tcp://host:port"`` on the workers of a running Dask scheduler; or on a
    ``distributed.Client``. Workers write into the cache folder themselves, so it must be on a
    file system they all share (at the same absolute path). Where it runs changes nothing in
    the tables, only ``run.yaml``'s record of the run.
    """
    from xfr_lib import __version__
    from xfr_lib.evaluate._distributed import open_cluster, parse_cluster, run_on_cluster

    start = time.perf_counter()
    out = Path(out)
    cache = (Path(cache) if cache is not None else out / "cache").absolute()
    parse_cluster(cluster)  # a malformed cluster and refused parameters cost no work
    check_evaluation(spec)
    with open_cluster(cluster) as (client, how):
        dataset, protocol = _dataset_and_protocol(spec)
        thresholds, outcomes, remote, tasks_wall = {}, [], [], 0.0
        bar = tqdm(total=0, disable=not progress, desc="maps and curves", leave=False)
        for model_name in spec.models:
            md = _model_data(spec, model_name, dataset, protocol, progress)
            thresholds[model_name] = md.setting.threshold
            jobs = _jobs(spec, md)
            bar.total += len(jobs)
            bar.refresh()
            if client is None:
                t0 = time.perf_counter()
                for job in jobs:
                    outcomes.append(_run_job(cache, spec, md.setting, md.model, job,
                                             __version__))
                    bar.update()
                tasks_wall += time.perf_counter() - t0
            else:
                remote += [(cache, spec, md.setting, job, __version__) for job in jobs]
        if client is not None:
            t0 = time.perf_counter()
            outcomes = run_on_cluster(client, _remote_job, remote, on_done=bar.update)
            tasks_wall = time.perf_counter() - t0
        bar.close()
    map_seconds, computed, reused = {}, Counter(maps=0, curves=0), Counter(maps=0, curves=0)
    for outcome in outcomes:
        map_seconds[outcome.key] = map_seconds.get(outcome.key, 0.0) + outcome.map_seconds
        computed.update(outcome.computed)
        reused.update(outcome.reused)
    steps = pd.concat([f for outcome in outcomes for f in outcome.frames], ignore_index=True)
    summary = summarise(steps, n_boot=spec.bootstrap, seed=spec.seed)
    run = {
        "parameters": spec.to_dict(),
        "versions": _versions(__version__),
        "dataset": {"name": spec.dataset, "images": len(dataset.images),
                    "protocol pairs": len(protocol)},
        "thresholds": thresholds,
        "map seconds": {f"{m} / {meth}": round(s, 3) for (m, meth), s in map_seconds.items()},
        "this run": {"seconds": round(time.perf_counter() - start, 1),
                     "computed": dict(computed), "read from the cache": dict(reused),
                     # The tasks' own seconds (each on one thread) summed: what one worker
                     # would take; against the wall time of the task phase, the scaling.
                     "task seconds": {m: round(sum(o.seconds for o in outcomes
                                                   if o.key[0] == m), 3) for m in spec.models},
                     "tasks wall seconds": round(tasks_wall, 3), **how},
    }
    _write_tables(out, spec.format, steps, summary, run)
    return EvaluationResult(steps, summary, run, out)


# --- one task: one model x method x method seed x item --------------------------------------

#: Threads of a task (torch's and numpy's BLAS), wherever it runs. Measured with dlib_resnet29
#: on torch 2.13 (CPU): a batch of one chip embeds to other bits with 1, 2, 3 and 4 threads,
#: the gradient maps (gradcam, saliency) differ from run to run with 2 threads, and the float64
#: identification scores (numpy's OpenBLAS) differ in the last bit between 1 and 2 threads;
#: with one thread every map and curve is bit-identical run to run (batches of two or more
#: chips give the same bits with any thread count). So tasks run single-threaded: sequential
#: and distributed runs write the same tables to the last bit (steps.csv byte-identical), and a
#: run's cores are used by worker processes instead.
_TASK_THREADS = 1


@dataclass(frozen=True)
class _Job:
    """One task: the maps of one item by one run of a method, and all the item's curves."""

    label: str
    method: str
    method_seed: int | None
    params: dict[str, Any]
    item: _Item


@dataclass
class _Outcome:
    """What a task did: its rows of the step table, the seconds its maps took (as computed),
    the seconds the task itself took in this run, and how many maps and curves it computed or
    read from the cache."""

    key: tuple[str, str]  # model, method label
    frames: list[pd.DataFrame]
    map_seconds: float
    seconds: float
    computed: dict[str, int]
    reused: dict[str, int]


def _jobs(spec: EvaluationSpec, md: _ModelData) -> list[_Job]:
    """The tasks of one model, in the order of the step table."""
    from xfr_lib.explainers import method_info

    jobs = []
    for label in spec.methods:
        method, params = spec.method_and_params(label)
        seeded = "seed" in method_info(method)["defaults"]
        for mseed in (spec.method_seeds if seeded else (None,)):
            run_params = {**params, "seed": mseed} if seeded else params
            jobs += [_Job(label, method, mseed, run_params, item)
                     for item in md.pairs + md.probes]
    return jobs


def _run_job(cache: Path, spec: EvaluationSpec, setting: _ModelSetting, model, job: _Job,
             version: str) -> _Outcome:
    """A task's maps (cached), then each of its curves (cached) with their table columns."""
    from xfr_lib.explainers import get_explainer

    start = time.perf_counter()
    explainer = get_explainer(job.method, model, **job.params)
    resolved = {k: v for k, v in explainer.params.items() if k not in _SPEED_ONLY}
    item = job.item
    computed, reused = Counter(maps=0, curves=0), Counter(maps=0, curves=0)
    frames = []
    with _task_threads():
        maps, seconds, fresh = _maps(cache, setting, job.method, resolved, explainer, item,
                                     version)
        (computed if fresh else reused)["maps"] += 1
        for metric in spec.metrics:
            task = "identification" if metric.startswith("identification") else "verification"
            if (task == "identification") != (item.kind == "probe"):
                continue
            for fill in spec.fills:
                frame, fresh = _curve(cache, spec, setting, model, maps, item, metric, fill,
                                      version)
                (computed if fresh else reused)["curves"] += 1
                frame.insert(0, "pair", item.label)
                frame.insert(0, "map", maps["kind"].item())
                frame.insert(0, "kind", item.kind)
                frame.insert(0, "fill", fill)
                frame.insert(0, "metric", metric.removeprefix("identification-"))
                frame.insert(0, "task", task)
                frame.insert(0, "method seed", -1 if job.method_seed is None
                             else int(job.method_seed))
                frame.insert(0, "method", job.label)
                frame.insert(0, "model", setting.name)
                frames.append(frame)
    return _Outcome((setting.name, job.label), frames, seconds, time.perf_counter() - start,
                    dict(computed), dict(reused))


@contextmanager
def _task_threads() -> Iterator[None]:
    """Torch and BLAS limited to :data:`_TASK_THREADS` threads, restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(_TASK_THREADS)
    try:
        with threadpool_limits(limits=_TASK_THREADS, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def _remote_job(cache: Path, spec: EvaluationSpec, setting: _ModelSetting, job: _Job,
                version: str) -> _Outcome:
    """:func:`_run_job` on a Dask worker, with the worker process's copy of the model."""
    from xfr_lib import __version__
    from xfr_lib.evaluate._distributed import process_model

    if __version__ != version:
        import socket

        raise XfrError(f"{socket.gethostname()} runs xfr {__version__}, the client {version}; "
                       f"install the same xfr on every worker")
    if setting.gallery is not None:
        # Dask may hand over an array that is not aligned in memory; numpy multiplies such an
        # array without BLAS, in another order, and the identification scores then differ from
        # a sequential run's in the last bit (measured). An aligned copy gives the same bits.
        setting = dataclasses.replace(setting, gallery=np.require(
            setting.gallery, np.float64, ["C_CONTIGUOUS", "ALIGNED"]))
    model = process_model(setting.name, setting.device, setting.precision, setting.fingerprint)
    return _run_job(cache, spec, setting, model, job, version)


def _maps(cache: Path, setting: _ModelSetting, method: str, resolved: dict, explainer,
          item: _Item, version: str) -> tuple[dict[str, np.ndarray], float, bool]:
    """The item's maps (read from the cache, or computed and cached), seconds, computed now."""
    key = _digest({"what": "maps", "version": version, "model": setting.fingerprint,
                   "method": method, "params": resolved, "a": _chip_digest(item.chip_a),
                   "b": _chip_digest(item.chip_b)})
    path = cache / "maps" / f"{key}.npz"
    found = _load_npz(path)
    if found is not None:
        return found, float(found["seconds"]), False
    from xfr_lib.faces import chip_to_tensor

    t0 = time.perf_counter()
    expl = explainer.explain(chip_to_tensor(item.chip_a), chip_to_tensor(item.chip_b))
    seconds = time.perf_counter() - t0
    # Genuine pairs and probes are explained by their similarity maps, impostor pairs by their
    # dissimilarity maps; the signed map breaks ties (ties="signed") towards the map's kind.
    kind = "dissimilarity" if item.kind == "impostor" else "similarity"
    other = "similarity" if kind == "dissimilarity" else "dissimilarity"
    maps = {"kind": np.array(kind), "seconds": np.array(seconds), "score": np.array(expl.score)}
    for side in ("a", "b"):
        m, o = getattr(expl, f"{kind}_{side}"), getattr(expl, f"{other}_{side}")
        maps[f"map_{side}"] = m.astype(np.float32)
        maps[f"signed_{side}"] = (m - o).astype(np.float32)
    _save_npz(path, maps)
    return maps, seconds, True


def _curve(cache: Path, spec: EvaluationSpec, setting: _ModelSetting, model,
           maps: dict[str, np.ndarray], item: _Item, metric: str, fill: str,
           version: str) -> tuple[pd.DataFrame, bool]:
    map_key = hashlib.sha256(b"".join(np.ascontiguousarray(maps[k]).tobytes()
                                      for k in ("map_a", "map_b", "signed_a", "signed_b"))
                             ).hexdigest()[:24]
    settings = {"what": "curve", "version": version, "model": setting.fingerprint,
                "maps": map_key,
                "metric": metric, "fill": fill, "steps": spec.steps,
                "images": _images(spec.images, item.kind),
                "ties": spec.ties, "seed": spec.seed, "label": item.label,
                "a": _chip_digest(item.chip_a), "b": _chip_digest(item.chip_b)}
    if metric.startswith("identification"):
        settings["gallery"] = hashlib.sha256(setting.gallery.tobytes()).hexdigest()[:16]
    else:
        settings["threshold"] = setting.threshold
    path = cache / "curves" / f"{_digest(settings)}.npz"
    found = _load_npz(path)
    if found is not None:
        return pd.DataFrame(found), False
    seed = pair_seed(spec.seed, item.label)
    ties = spec.ties
    if metric.startswith("identification"):
        frame = identification_curve(
            model, item.chip_a, maps["map_a"], item.identity, setting.gallery,
            list(setting.gallery_ids),
            mode=metric.removeprefix("identification-"), steps=spec.steps, fill=fill, ties=ties,
            signed=maps["signed_a"], seed=seed, batch_size=spec.batch_size)
    else:
        frame = verification_curve(
            model, item.chip_a, item.chip_b, maps["map_a"], maps["map_b"],
            item.kind == "genuine", mode=metric, threshold=setting.threshold, steps=spec.steps,
            fill=fill, images=_images(spec.images, item.kind), ties=ties, signed_a=maps["signed_a"],
            signed_b=maps["signed_b"], seed=seed, batch_size=spec.batch_size)
    _save_npz(path, {c: frame[c].to_numpy() for c in frame.columns})
    return frame, True


def _images(images: str, kind: str) -> str:
    if images != "auto":
        return images
    return "both" if kind == "impostor" else "one"


def summarise(steps: pd.DataFrame, n_boot: int = N_BOOTSTRAP, level: float = LEVEL,
              seed: int = 0) -> pd.DataFrame:
    """Per model x method x seed x task x metric x fill x map: pairs, area and its interval.

    The area of each pair's 0/1 curve of correct decisions (:func:`curve_area`) is averaged
    over pairs (equal to the area of the mean curve); ``low``/``high`` are its bootstrap
    interval over pairs (NaN with ``n_boot=0`` or a single pair).
    """
    keys = ["model", "method", "method seed", "task", "metric", "fill", "map"]
    areas = (steps.groupby([*keys, "pair"], sort=False)
             .apply(lambda g: curve_area(g.fraction.to_numpy(), g.correct.to_numpy(float)),
                    include_groups=False)
             .rename("area").reset_index())
    rows = []
    for key, g in areas.groupby(keys, sort=False):
        low, high = (bootstrap_interval(g.area, n_boot=n_boot, level=level, seed=seed)
                     if n_boot else (float("nan"), float("nan")))
        rows.append({**dict(zip(keys, key, strict=True)), "pairs": len(g),
                     "area": float(g.area.mean()), "low": low, "high": high})
    return pd.DataFrame(rows)


def pair_areas(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per model x method x seed x task x metric x fill x map x pair, with its area."""
    keys = ["model", "method", "method seed", "task", "metric", "fill", "map", "pair"]
    return (steps.groupby(keys, sort=False)
            .apply(lambda g: curve_area(g.fraction.to_numpy(), g.correct.to_numpy(float)),
                   include_groups=False)
            .rename("area").reset_index())


def _versions(version: str) -> dict[str, str]:
    import torch

    return {"xfr": version, "python": platform.python_version(), "torch": str(torch.__version__),
            "numpy": np.__version__, "pandas": pd.__version__}


def _write_tables(out: Path, fmt: str, steps: pd.DataFrame, summary: pd.DataFrame,
                  run: dict) -> None:
    if fmt == "parquet":
        atomic_write(out / "steps.parquet", lambda f: steps.to_parquet(f, index=False))
    else:
        atomic_write_text(out / "steps.csv", steps.to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "run.yaml", yaml.safe_dump(run, sort_keys=False))


def read_evaluation(out: str | Path) -> EvaluationResult:
    """The tables a finished :func:`run_evaluation` wrote into ``out``."""
    out = Path(out)
    if not (out / "run.yaml").exists():
        raise XfrError(f"{out} holds no finished evaluation (no run.yaml); run xfr evaluate")
    run = yaml.safe_load((out / "run.yaml").read_text(encoding="utf-8"))
    steps = (pd.read_parquet(out / "steps.parquet") if (out / "steps.parquet").exists()
             else pd.read_csv(out / "steps.csv"))
    return EvaluationResult(steps, pd.read_csv(out / "summary.csv"), run, out)

