"""Embeddings of whole datasets: every image detected, aligned (cached) and embedded in batches.

Aligned chips come from the chip cache (:func:`xfr_lib.faces.aligned_chip`); embeddings are
recomputed (cheap, and they change whenever a model does). Images without a detectable face
are recorded, not fatal: ``EmbeddingSet.ok`` marks them and ``failures`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from xfr_lib.faces import aligned_chip
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
    """

    model: str
    paths: list[Path]
    embeddings: np.ndarray
    ok: np.ndarray
    chips: np.ndarray
    landmarks: np.ndarray
    n_faces: np.ndarray
    failures: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

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
                use_cache: bool = True, desc: str | None = None) -> EmbeddingSet:
    """Detect, align (cached) and embed every image of ``paths`` with ``model``."""
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
                        landmarks=landmarks, n_faces=n_faces, failures=failures)


def embed_dataset(model, dataset, batch_size: int = 32, progress: bool = True,
                  use_cache: bool = True) -> EmbeddingSet:
    """Embeddings of every image of a :class:`~xfr_lib.data.FaceDataset`."""
    return embed_paths(model, [im.path for im in dataset.images], batch_size=batch_size,
                       progress=progress, use_cache=use_cache, desc=f"{dataset.name}: align")
