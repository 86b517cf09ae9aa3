"""An identity classifier on a face model's embeddings, trained on a labelled gallery.

SDD-CAM (:mod:`xfr_lib.explainers.sdd`) explains a *classifier*: the paper fine-tunes AdaFace
on FaceScrub's 530 people. xfr puts a classifier on either of its face models:

    logit_c(x) = scale * cos(f(x), w_c)

with ``f`` the model's embedding and one learned unit vector ``w_c`` per person (a cosine
head, as in CosFace/ArcFace training without the margin). Two consequences xfr relies on:

* a class's logit is ``scale`` times the pair score of the image with the *reference* ``w_c``,
  so class maps are the pair-score gradient maps of :mod:`xfr_lib.explainers._gradients` with
  the class vectors as references;
* the head starts from each person's mean training embedding (weight imprinting), so training
  only refines what the face model already separates, and converges in seconds on CPU.

``finetune="last"`` also trains the model's last block (``FaceModel.last_block``: dlib's 2x2
stage and linear layer, SFace's linear layer on its 7x7 map), as the paper fine-tunes its
network; the layers the class maps come from stay as pretrained. The head alone is the default:
the class maps then explain the pretrained model itself.

Training is seeded (the split, the batches, any random initialisation) and cached: the trained
head (and fine-tuned block) is stored under ``<cache>/classifiers/`` keyed by a SHA-256 of the
model's weights, every chip's pixels and identity, the parameters and xfr's version, written
atomically. The same inputs reload it; any change retrains.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from xfr_lib._io import atomic_write
from xfr_lib.errors import XfrError
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import embed, model_fingerprint

#: Training parameters and their defaults (:func:`train_classifier`).
CLASSIFIER_DEFAULTS: dict[str, Any] = {
    "test_fraction": 0.3,   # of each person's images held out (at least one if they have two)
    "epochs": 30,
    "lr": 0.01,             # AdamW, the head
    "finetune": None,       # None (head only) or "last" (the model's last block too)
    "finetune_lr": 1e-4,    # AdamW, the fine-tuned block
    "weight_decay": 1e-4,
    "scale": 16.0,          # logit scale of the cosine head
    "batch_size": 32,
    "seed": 0,
}


class IdentityClassifier(nn.Module):
    """A face model with a cosine head over a fixed set of people.

    Attributes:
        backbone: the face model (a fine-tuned copy with ``finetune="last"``).
        classes: the people, in class order.
        scale: the logit scale.
        report: how it was trained (:func:`train_classifier`): parameters, split, accuracies.
    """

    def __init__(self, backbone: nn.Module, classes: Sequence[str], weights: torch.Tensor,
                 scale: float, report: dict[str, Any] | None = None) -> None:
        super().__init__()
        if weights.ndim != 2 or len(weights) != len(classes):
            raise XfrError(f"a classifier needs one weight row per class: {len(classes)} "
                           f"classes, weights of shape {list(weights.shape)}")
        self.backbone = backbone
        self.classes = list(classes)
        self.register_buffer("weights", F.normalize(weights.detach().float(), dim=1))
        self.scale = float(scale)
        self.report = dict(report or {})

    @property
    def name(self) -> str:
        return f"{self.backbone.name} classifier ({len(self.classes)} people)"

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.backbone.input_size)

    def align(self, image, face=None) -> torch.Tensor:
        """The aligned chip of a photo for the backbone (see ``FaceModel.align``)."""
        return self.backbone.align(image, face=face)

    def class_index(self, name: str) -> int:
        """The class number of a person.

        Raises:
            XfrError: not one of :attr:`classes`.
        """
        if name not in self.classes:
            shown = ", ".join(self.classes[:8]) + (" ..." if len(self.classes) > 8 else "")
            raise XfrError(f"{name!r} is not a class of this classifier; use one of {shown}")
        return self.classes.index(name)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` logits of aligned chips ``[B, 3, H, W]`` in [0, 1] (differentiable)."""
        return self.scale * self.backbone.embed(x) @ self.weights.to(x.device).T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    @torch.no_grad()
    def probabilities(self, chips: torch.Tensor | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``[N, C]`` softmax probabilities of aligned chips (float tensor ``[N, 3, H, W]`` in
        [0, 1] or uint8 ``[N, H, W, 3]``)."""
        emb = embed(self.backbone, chips, batch_size)
        return torch.softmax(self.scale * emb @ self.weights.cpu().T, dim=1).numpy()


@dataclass
class LabelledChips:
    """Aligned chips with the person in each (what a classifier trains and tests on).

    Attributes:
        chips: ``[N, H, W, 3]`` uint8.
        identities: who is in each chip.
        sources: where each chip came from (file paths), for reports.
        skipped: one line per image left out (no face found), for reports.
    """

    chips: np.ndarray
    identities: list[str]
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def labelled_chips(model: Any, source: Any, progress: bool = True) -> LabelledChips:
    """The aligned chips of a labelled gallery, for ``model``.

    Args:
        model: the face model (its alignment and chip size).
        source: a dataset name (``"orl"``), a folder of ``<identity>/<image>``, a
            :class:`~xfr_lib.data.FaceDataset`, or :class:`LabelledChips` (returned as is).
        progress: a progress bar over the images.

    Raises:
        XfrError: no face found in any image.
    """
    if isinstance(source, LabelledChips):
        return source
    from xfr_lib.data import FaceDataset, list_datasets, load_dataset
    from xfr_lib.evaluate import embed_dataset

    if isinstance(source, FaceDataset):
        dataset = source
    elif isinstance(source, str) and source in list_datasets():
        dataset = load_dataset(source)
    elif isinstance(source, (str, Path)):
        dataset = load_dataset("folder", source)
    else:
        raise XfrError(f"cannot train a classifier on a {type(source).__name__}; give a "
                       f"dataset name, a folder of <identity>/<image> or a FaceDataset")
    emb = embed_dataset(model, dataset, progress=progress)
    keep = np.flatnonzero(emb.ok)
    if len(keep) == 0:
        raise XfrError(f"{dataset.name}: no face found in any image; a classifier needs "
                       f"aligned faces")
    return LabelledChips(chips=emb.chips[keep], identities=[emb.identities[i] for i in keep],
                         sources=[str(emb.paths[i]) for i in keep],
                         skipped=[f"{emb.paths[i]}: {r}" for i, r in sorted(emb.failures.items())])


def split_per_person(identities: Sequence[str], test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / test indices: of each person with at least two images,
    ``max(1, round(test_fraction * n))`` images are held out (none with ``test_fraction=0``);
    everyone keeps at least one training image."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(identities)
    train, test = [], []
    for person in sorted(set(identities)):
        idx = np.flatnonzero(ids == person)
        idx = idx[rng.permutation(len(idx))]
        n_test = 0 if test_fraction == 0 or len(idx) < 2 else \
            min(len(idx) - 1, max(1, round(test_fraction * len(idx))))
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def check_classifier_params(params: dict[str, Any]) -> dict[str, Any]:
    """The training parameters with defaults filled in; one-line :class:`XfrError` on a bad
    name or value."""
    unknown = sorted(set(params) - set(CLASSIFIER_DEFAULTS))
    if unknown:
        raise XfrError(f"unknown classifier parameter {unknown[0]!r}; use "
                       f"{', '.join(CLASSIFIER_DEFAULTS)}")
    p = {**CLASSIFIER_DEFAULTS, **params}

    def number(key, ok, what):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
            raise XfrError(f"classifier {key}={v!r} is invalid; use {what}")

    number("test_fraction", lambda v: 0 <= v < 1, "a fraction in [0, 1)")
    number("epochs", lambda v: int(v) == v and v >= 1, "a positive whole number")
    number("batch_size", lambda v: int(v) == v and v >= 1, "a positive whole number")
    number("seed", lambda v: int(v) == v and v >= 0, "a non-negative whole number")
    for key in ("lr", "finetune_lr", "scale"):
        number(key, lambda v: v > 0, "a positive number")
    number("weight_decay", lambda v: v >= 0, "a non-negative number")
    if p["finetune"] not in (None, "last"):
        raise XfrError(f"classifier finetune={p['finetune']!r} is invalid; use null (the head "
                       f"only) or 'last' (the model's last block too)")
    for key in ("epochs", "batch_size", "seed"):
        p[key] = int(p[key])
    for key in ("test_fraction", "lr", "finetune_lr", "weight_decay", "scale"):
        p[key] = float(p[key])
    return p


def _cache_key(model: Any, data: LabelledChips, params: dict[str, Any]) -> str:
    from xfr_lib import __version__

    h = hashlib.sha256(json.dumps({"model": model_fingerprint(model), "params": params,
                                   "version": __version__}, sort_keys=True).encode())
    for chip, person in zip(data.chips, data.identities, strict=True):
        h.update(person.encode() + b"\0")
        h.update(np.ascontiguousarray(chip).tobytes())
    return h.hexdigest()[:24]


def _finetuned_params(model: nn.Module) -> dict[str, nn.Parameter]:
    block = tuple(getattr(model, "last_block", ()))
    if not block:
        raise XfrError(f"{getattr(model, 'name', type(model).__name__)} names no last block "
                       f"(FaceModel.last_block); train its head only (finetune=None)")
    return {n: p for n, p in model.named_parameters()
            if any(n == b or n.startswith(b + ".") for b in block)}


def train_classifier(model: Any, source: Any, *, cache: bool | str | Path = True,
                     progress: bool = True, **params: Any) -> IdentityClassifier:
    """Train (or reload) an identity classifier on a labelled gallery.

    Args:
        model: a face model of :func:`xfr_lib.load_model` (not modified: fine-tuning works on
            a copy).
        source: the gallery: a dataset name (default in the chapters: ``"orl"``), a folder of
            ``<identity>/<image>``, a :class:`~xfr_lib.data.FaceDataset` or
            :class:`LabelledChips`.
        cache: True (``<xfr cache>/classifiers``), a folder, or False (always train).
        progress: progress bars (alignment, epochs).
        **params: :data:`CLASSIFIER_DEFAULTS` (``test_fraction``, ``epochs``, ``lr``,
            ``finetune``, ``finetune_lr``, ``weight_decay``, ``scale``, ``batch_size``, ``seed``).

    Returns:
        The classifier; its ``report`` holds the parameters, the split (``train``/``test``
        indices into the gallery's usable images), train and held-out test accuracy, the loss
        per epoch, seconds, the cache file and ``loaded`` (True when reloaded, not trained).

    Raises:
        XfrError: bad parameters, fewer than two people, or no face in the gallery.
    """
    p = check_classifier_params(params)
    data = labelled_chips(model, source, progress=progress)
    classes = sorted(set(data.identities))
    if len(classes) < 2:
        raise XfrError(f"a classifier needs at least two people; the gallery has "
                       f"{len(classes)}")
    folder = None
    if cache:
        from xfr_lib.data import cache_dir

        folder = Path(cache) if not isinstance(cache, bool) else cache_dir() / "classifiers"
    key = _cache_key(model, data, p)
    path = folder / f"{model.name}-{key}.pt" if folder is not None else None
    if path is not None and path.exists():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            return _rebuild(model, stored, loaded=True, path=path)
        except Exception:  # noqa: BLE001 - an unreadable cache file is retrained, never trusted
            warnings.warn(f"unreadable classifier cache {path} is retrained", stacklevel=2)
    stored = _train(model, data, classes, p, progress)
    stored["report"]["cache file"] = str(path) if path is not None else None
    if path is not None:
        def write(f):
            buf = io.BytesIO()
            torch.save(stored, buf)
            f.write(buf.getvalue())

        atomic_write(path, write)
    return _rebuild(model, stored, loaded=False, path=path)


def _rebuild(model: Any, stored: dict, loaded: bool, path: Path | None) -> IdentityClassifier:
    backbone = model
    if stored["finetuned"]:
        backbone = copy.deepcopy(model)
        state = dict(backbone.named_parameters())
        with torch.no_grad():
            for name, value in stored["finetuned"].items():
                state[name].copy_(value)
    report = {**stored["report"], "loaded": loaded,
              "cache file": str(path) if path is not None else None}
    return IdentityClassifier(backbone, stored["classes"], stored["weights"],
                              stored["report"]["params"]["scale"], report)


def _train(model: Any, data: LabelledChips, classes: list[str], p: dict[str, Any],
           progress: bool) -> dict:
    start = time.perf_counter()
    train, test = split_per_person(data.identities, p["test_fraction"], p["seed"])
    labels = torch.tensor([classes.index(i) for i in data.identities])
    chips = data.chips  # uint8, converted batch by batch
    backbone = model
    tuned: dict[str, nn.Parameter] = {}
    if p["finetune"] == "last":
        backbone = copy.deepcopy(model)
        tuned = _finetuned_params(backbone)
        for t in tuned.values():
            t.requires_grad_(True)
    device = next(backbone.parameters()).device
    with torch.no_grad():  # imprinting: each class starts at its mean training embedding
        emb_train = embed(backbone, chips[train], p["batch_size"])
        weights = torch.zeros(len(classes), emb_train.shape[1])
        weights.index_add_(0, labels[train], emb_train)
    head = nn.Parameter(F.normalize(weights, dim=1).to(device))
    groups = [{"params": [head], "lr": p["lr"]}]
    if tuned:
        groups.append({"params": list(tuned.values()), "lr": p["finetune_lr"]})
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p["seed"])
        optimiser = torch.optim.AdamW(groups, weight_decay=p["weight_decay"])
        rng = np.random.default_rng(p["seed"])
        for _epoch in tqdm(range(p["epochs"]), desc="train classifier", unit="epoch",
                           disable=not progress, leave=False):
            total = 0.0
            for batch in np.array_split(rng.permutation(train),
                                        max(1, -(-len(train) // p["batch_size"]))):
                y = labels[batch].to(device)
                if tuned:
                    emb = backbone.embed(chip_to_tensor(chips[batch]).to(device))
                else:
                    emb = emb_train[np.searchsorted(train, batch)].to(device)
                logits = p["scale"] * F.normalize(emb, dim=1) @ F.normalize(head, dim=1).T
                loss = F.cross_entropy(logits, y)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            losses.append(total / len(train))
    for t in tuned.values():
        t.requires_grad_(False)
    clf = IdentityClassifier(backbone, classes, head.detach().cpu(), p["scale"])
    accuracy = {}
    for part, idx in (("train", train), ("test", test)):
        if len(idx):
            pred = clf.probabilities(chips[idx], p["batch_size"]).argmax(1)
            accuracy[part] = float((pred == labels[idx].numpy()).mean())
        else:
            accuracy[part] = float("nan")
    report = {
        "params": p, "model": model.name, "people": len(classes),
        "images": len(data.identities), "train": train.tolist(), "test": test.tolist(),
        "train accuracy": accuracy["train"], "test accuracy": accuracy["test"],
        "loss per epoch": losses, "skipped": list(data.skipped),
        "seconds": time.perf_counter() - start,
    }
    return {"classes": classes, "weights": head.detach().cpu(), "report": report,
            "finetuned": {n: t.detach().cpu().clone() for n, t in tuned.items()}}
