"""Aligned chips and embeddings of whole datasets, batched, with a chip cache.

Detection and alignment cost far more than a forward pass on the CPU, and they depend only on
the image file and the alignment, not on the model's weights; so aligned chips are cached per
(alignment, chip size, SHA-256 of the file) under ``<cache>/chips``. Embeddings are recomputed
(cheap, and they change whenever a model does). Images without a detectable face are recorded,
not fatal: ``EmbeddingSet.ok`` marks them and ``failures`` says why.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from xfr_lib.data.assets import cache_dir
from xfr_lib.errors import ImageError
from xfr_lib.faces.align import align_face


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


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def aligned_chip(path: Path | str, alignment: str, size: tuple[int, int], use_cache: bool = True) -> dict:
    """Aligned chip of one image file, from the cache when possible.

    Returns a dict with ``chip``, ``landmarks``, ``n_faces`` and ``error`` (None, or the one-line
    reason no chip could be made: no face, unreadable file).
    """
    path = Path(path)
    try:
        digest = file_digest(path)
    except OSError as exc:
        return {"chip": None, "landmarks": None, "n_faces": 0, "error": f"{path}: cannot read ({exc})"}
    cached = cache_dir() / "chips" / f"{alignment}_{size[0]}x{size[1]}" / digest[:2] / f"{digest}.npz"
    if use_cache and cached.is_file():
        with np.load(cached, allow_pickle=False) as z:
            error = str(z["error"]) or None
            return {"chip": z["chip"] if error is None else None, "landmarks": z["landmarks"],
                    "n_faces": int(z["n_faces"]), "error": error and f"{path}: {error}"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # several faces: recorded in n_faces instead
            face = align_face(path, alignment, size)
        record = {"chip": face.chip, "landmarks": face.landmarks, "n_faces": face.n_faces, "error": None}
    except ImageError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        record = {"chip": None, "landmarks": np.full((68, 2), np.nan, np.float32), "n_faces": 0,
                  "error": f"{path}: {reason}"}
        if use_cache:  # remember the failure too: re-detecting would fail again
            _write_npz(cached, chip=np.zeros((0,), np.uint8), landmarks=record["landmarks"], n_faces=0,
                       error=reason)
        return record
    if use_cache:
        _write_npz(cached, chip=face.chip, landmarks=face.landmarks, n_faces=face.n_faces, error="")
    return record


def _write_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@torch.no_grad()
def embed_chips(model, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """L2-normalised embeddings ``[N, D]`` of uint8 chips ``[N, H, W, 3]``."""
    out = []
    device = next(model.parameters()).device
    for start in range(0, len(chips), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(chips[start:start + batch_size]))
        x = batch.to(device).permute(0, 3, 1, 2).float().div_(255.0)
        out.append(model.embed(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.embedding_dim), np.float32)


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
        emb[ok] = embed_chips(model, chips[ok], batch_size)
    return EmbeddingSet(model=model.name, paths=paths, embeddings=emb, ok=ok, chips=chips,
                        landmarks=landmarks, n_faces=n_faces, failures=failures)


def embed_dataset(model, dataset, batch_size: int = 32, progress: bool = True,
                  use_cache: bool = True) -> EmbeddingSet:
    """Embeddings of every image of a :class:`~xfr_lib.data.datasets.FaceDataset`."""
    return embed_paths(model, [im.path for im in dataset.images], batch_size=batch_size,
                       progress=progress, use_cache=use_cache, desc=f"{dataset.name}: align")
