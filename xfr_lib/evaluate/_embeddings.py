"""Embeddings of whole datasets: every image detected, aligned (cached) and embedded in batches.

Aligned chips come from the chip cache (:func:`xfr_lib.faces.aligned_chip`); embeddings are
recomputed (cheap, and they change whenever a model does). Images without a detectable face
are recorded, not fatal: ``EmbeddingSet.ok`` marks them and ``failures`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from xfr_lib.errors import XfrError
from xfr_lib.explainers import Gallery
from xfr_lib.faces import aligned_chip, chip_to_tensor
from xfr_lib.models import embed


@dataclass
class EmbeddingSet:
    """Embeddings of a list of images for one model.

    Attributes:
        model: model name.
        paths: the image files, in order.
        embeddings: ``[N, D]`` float32, L2-normalised; rows of failed images are NaN.
        ok: ``[N]`` bool, a face was found and aligned.
        chips: ``[N, H, W, 3]`` uint8 aligned chips (zeros where ``ok`` is False).
        landmarks: ``[N, 68, 2]`` landmarks in chip coordinates (NaN where ``ok`` is False).
        n_faces: ``[N]`` number of faces detected in each image.
        failures: index -> one-line reason.
        identities: who is in each image (from the dataset; the file stem for bare paths).
    """

    model: str
    paths: list[Path]
    embeddings: np.ndarray
    ok: np.ndarray
    chips: np.ndarray
    landmarks: np.ndarray
    n_faces: np.ndarray
    failures: dict[int, str] = field(default_factory=dict)
    identities: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.identities:
            self.identities = [Path(p).stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> EmbeddingSet:
        """The images at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        position = {old: new for new, old in enumerate(idx)}
        return EmbeddingSet(
            model=self.model, paths=[self.paths[i] for i in idx],
            embeddings=self.embeddings[idx], ok=self.ok[idx], chips=self.chips[idx],
            landmarks=self.landmarks[idx], n_faces=self.n_faces[idx],
            failures={position[i]: r for i, r in self.failures.items() if i in position},
            identities=[self.identities[i] for i in idx])

    def __add__(self, other: EmbeddingSet) -> EmbeddingSet:
        """Both sets, this one first (same model and chip size)."""
        if other.model != self.model or other.chips.shape[1:] != self.chips.shape[1:]:
            raise XfrError(f"cannot join embeddings of {self.model!r} and {other.model!r}; "
                           f"embed both with the same model")
        n = len(self)
        return EmbeddingSet(
            model=self.model, paths=self.paths + other.paths,
            embeddings=np.concatenate([self.embeddings, other.embeddings]),
            ok=np.concatenate([self.ok, other.ok]),
            chips=np.concatenate([self.chips, other.chips]),
            landmarks=np.concatenate([self.landmarks, other.landmarks]),
            n_faces=np.concatenate([self.n_faces, other.n_faces]),
            failures={**self.failures, **{n + i: r for i, r in other.failures.items()}},
            identities=self.identities + other.identities)

    def index(self, name: str) -> int:
        """The position of the image whose file name without extension is ``name``.

        Raises:
            XfrError: no such image, or no face was found in it.
        """
        stems = [p.stem for p in self.paths]
        if name not in stems:
            raise XfrError(f"no image named {name!r}; choose one of {', '.join(stems)}")
        i = stems.index(name)
        if not self.ok[i]:
            raise XfrError(f"image {name!r} cannot be used: {self.failures.get(i, 'no face')}")
        return i

    def named_pairs(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """Pairs given as ``"nameA:nameB"`` (file names without extension) -> index pairs."""
        pairs = []
        for text in texts:
            names = text.split(":")
            if len(names) != 2:
                raise XfrError(f"pair {text!r} is not 'nameA:nameB' (file names without "
                               f"extension, e.g. 'macron_1:macron_2')")
            pairs.append((self.index(names[0]), self.index(names[1])))
        return pairs

    def tensor(self, i: int):
        """Chip ``i`` as the ``[3, H, W]`` float tensor the explainers take."""
        return chip_to_tensor(self.chips[int(i)])

    def gallery(self) -> Gallery:
        """The images with a face as an explainers' :class:`~xfr_lib.explainers.Gallery`
        (aligned chips, identities and the embeddings already computed)."""
        keep = np.flatnonzero(self.ok)
        return Gallery(items=list(chip_to_tensor(self.chips[keep])),
                       identities=[self.identities[i] for i in keep],
                       embeddings=self.embeddings[keep])

    def similarity(self, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity matrix between the embeddings of ``rows`` and ``cols`` (default: all)."""
        a = self.embeddings if rows is None else self.embeddings[rows]
        b = self.embeddings if cols is None else self.embeddings[cols]
        return a @ b.T

    def pair_scores(self, pairs: np.ndarray) -> np.ndarray:
        """Cosine similarity of each ``[i, j]`` pair (NaN where a face is missing)."""
        pairs = np.asarray(pairs)
        return np.einsum("pd,pd->p", self.embeddings[pairs[:, 0]], self.embeddings[pairs[:, 1]])


def embed_paths(model, paths: list[Path | str], batch_size: int = 32, progress: bool = True,
                use_cache: bool = True, desc: str | None = None,
                identities: Sequence[str] | None = None) -> EmbeddingSet:
    """Detect, align (cached) and embed every image of ``paths`` with ``model``.

    Args:
        model: the face model.
        paths: the image files.
        batch_size: chips per forward pass.
        progress: show a progress bar over the images.
        use_cache: use the aligned-chip cache.
        desc: the progress bar's label.
        identities: who is in each image (default: the file stems).
    """
    paths = [Path(p) for p in paths]
    h, w = model.input_size
    n = len(paths)
    chips = np.zeros((n, h, w, 3), np.uint8)
    landmarks = np.full((n, 68, 2), np.nan, np.float32)
    n_faces = np.zeros(n, np.int32)
    ok = np.zeros(n, bool)
    failures: dict[int, str] = {}
    for i, p in enumerate(tqdm(paths, desc=desc or f"align ({model.alignment})", unit="img",
                               disable=not progress, leave=False)):
        rec = aligned_chip(p, model.alignment, (h, w), use_cache=use_cache)
        n_faces[i] = rec["n_faces"]
        if rec["error"] is not None:
            failures[i] = rec["error"]
            continue
        chips[i], landmarks[i], ok[i] = rec["chip"], rec["landmarks"], True
    emb = np.full((n, model.embedding_dim), np.nan, np.float32)
    if ok.any():
        emb[ok] = embed(model, chips[ok], batch_size).numpy()
    return EmbeddingSet(model=model.name, paths=paths, embeddings=emb, ok=ok, chips=chips,
                        landmarks=landmarks, n_faces=n_faces, failures=failures,
                        identities=list(identities) if identities is not None else [])


def embed_dataset(model, dataset, batch_size: int = 32, progress: bool = True,
                  use_cache: bool = True) -> EmbeddingSet:
    """Embeddings of every image of a :class:`~xfr_lib.data.FaceDataset`."""
    return embed_paths(model, [im.path for im in dataset.images], batch_size=batch_size,
                       progress=progress, use_cache=use_cache, desc=f"{dataset.name}: align",
                       identities=[im.identity for im in dataset.images])


@dataclass
class IdentificationScores:
    """Probes scored against a gallery (images without a face left out).

    Attributes:
        similarity: ``[n_probes, n_gallery]`` cosine similarities.
        probe_ids: identity of each probe row.
        gallery_ids: identity of each gallery column.
        probes_missed: probes left out (no face).
        gallery_missed: gallery images left out (no face).
    """

    similarity: np.ndarray
    probe_ids: np.ndarray
    gallery_ids: np.ndarray
    probes_missed: int
    gallery_missed: int


def identification_scores(probes: EmbeddingSet, gallery: EmbeddingSet) -> IdentificationScores:
    """Score every probe with a face against every gallery image with a face.

    Args:
        probes: the probes' embeddings.
        gallery: the gallery's embeddings (e.g. ``protocol gallery + distractors`` with
            ``EmbeddingSet.subset`` and ``+``).
    """
    p, g = np.flatnonzero(probes.ok), np.flatnonzero(gallery.ok)
    return IdentificationScores(
        similarity=probes.embeddings[p] @ gallery.embeddings[g].T,
        probe_ids=np.array([probes.identities[i] for i in p], dtype=object),
        gallery_ids=np.array([gallery.identities[i] for i in g], dtype=object),
        probes_missed=int(len(probes) - len(p)), gallery_missed=int(len(gallery) - len(g)))
