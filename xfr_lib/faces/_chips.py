"""Aligned chips: their two forms (uint8 image and float tensor) and a cache of them on disk.

A chip is an aligned face as the models see it. Libraries that read and show images want
``HxWx3`` uint8 RGB; models want ``[3, H, W]`` float tensors in [0, 1]. :func:`chip_to_tensor`
and :func:`tensor_to_chip` convert between the two (single chips or stacks), and nothing else
in xfr does.

Detection and alignment cost far more than a forward pass on the CPU and depend only on the
image file and how the chip is made, so :func:`aligned_chip` caches chips under
``<cache>/chips/<key>/``. The key (:func:`chip_cache_key`) covers everything that changes a
chip: the cache format's version, the alignment and its parameters, the chip size, the
detector's and landmark predictors' files and settings, and which face of the photo is used;
the file itself is named by its SHA-256. A photo in which no face is found is cached too, with
its reason, under the same key. Every cache file is written atomically; a cache that cannot be
written costs only a warning, and an entry that cannot be read is made again.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfr_lib._io import atomic_write, sha256_file
from xfr_lib.data import CACHE_ENV, asset_spec, cache_dir
from xfr_lib.errors import ImageError
from xfr_lib.faces import _detect
from xfr_lib.faces._align import align_face, alignment_settings

#: Bumped whenever the content of a cached chip file changes meaning.
CACHE_VERSION = 2


def chip_to_tensor(chip: np.ndarray) -> torch.Tensor:
    """``HxWx3`` (or ``NxHxWx3``) uint8 RGB -> ``[3, H, W]`` (``[N, 3, H, W]``) float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(chip))
    return x.movedim(-1, -3).float().div_(255.0)


def tensor_to_chip(x: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` (or ``[N, 3, H, W]``) float in [0, 1] -> ``HxWx3`` (``NxHxWx3``) uint8 RGB."""
    return x.detach().clamp(0, 1).mul(255).round().byte().movedim(-3, -1).cpu().numpy()


def chip_cache_key(alignment: str, size: tuple[int, int], face: Any = None) -> str:
    """The folder name of the chip cache for one way of making chips (16 hex digits).

    Args:
        alignment: a key of :data:`xfr_lib.faces.ALIGNMENTS`.
        size: ``(H, W)`` of the chip.
        face: which face of a photo is used (None: the largest; see ``align_face``).
    """
    recipe = {
        "version": CACHE_VERSION,
        "alignment": alignment_settings(alignment),
        "size": [int(size[0]), int(size[1])],
        "detector": _detect.DETECTOR,
        "landmarks": {str(k): v for k, v in _detect.LANDMARK_MODELS.items()},
        "assets": {name: _asset_files(name) for name in ("yunet", "dlib_landmarks")},
        "face": _face_key(face),
    }
    text = json.dumps(recipe, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _asset_files(name: str) -> dict[str, Any]:
    """The manifest entries of an asset's files (paths, sources, SHA-256s); its description,
    licence and citation do not change a chip."""
    spec = asset_spec(name)
    return {kind: spec[kind] for kind in ("files", "trees") if kind in spec}


def _face_key(face: Any) -> Any:
    """A face choice as the key sees it: an index stays an int, a box becomes four floats (so
    ``(10, 20, 30, 40)`` and ``(10.0, 20.0, 30.0, 40.0)`` share a key)."""
    if face is None:
        return None
    if isinstance(face, (int, np.integer)) and not isinstance(face, bool):
        return int(face)
    try:
        return [float(v) for v in np.asarray(face, dtype=np.float64).ravel()]
    except (TypeError, ValueError):
        return repr(face)


def aligned_chip(path: Path | str, alignment: str, size: tuple[int, int], *, face: Any = None,
                 use_cache: bool = True) -> dict[str, Any]:
    """The aligned chip of one image file, from the cache when possible.

    Args:
        path: the image file.
        alignment: a key of :data:`xfr_lib.faces.ALIGNMENTS`.
        size: ``(H, W)`` of the chip.
        face: which face (None: the largest; an index; or an ``(x, y, w, h)`` box).
        use_cache: read and write the cache.

    Returns:
        ``chip`` (``HxWx3`` uint8, or None), ``landmarks`` (``[68, 2]`` in chip coordinates;
        NaN without a chip), ``n_faces`` and ``error`` (None, or the one-line reason no chip
        could be made: no face, unreadable file).
    """
    path = Path(path)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return {"chip": None, "landmarks": _no_landmarks(), "n_faces": 0,
                "error": f"{path}: cannot read ({exc.strerror or exc})"}
    key = chip_cache_key(alignment, size, face)
    cached = _cache_root() / key / digest[:2] / f"{digest}.npz"
    if use_cache and cached.is_file():
        hit = _read(cached, path)
        if hit is not None:
            return hit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # several faces: recorded in n_faces instead
            aligned = align_face(path, alignment, size, face=face)
    except ImageError as exc:
        # The same bytes may come back under another name: keep the reason without the path.
        reason = _unname(str(exc).removeprefix(f"{path}: "), path)
        if use_cache:  # remember the failure too: detecting again would fail again
            _write(cached, chip=np.zeros((0,), np.uint8), landmarks=_no_landmarks(), n_faces=0,
                   error=reason)
        return {"chip": None, "landmarks": _no_landmarks(), "n_faces": 0,
                "error": f"{path}: {reason.replace(_PHOTO, str(path))}"}
    if use_cache:
        _write(cached, chip=aligned.chip, landmarks=aligned.landmarks, n_faces=aligned.n_faces,
               error="")
    return {"chip": aligned.chip, "landmarks": aligned.landmarks, "n_faces": aligned.n_faces,
            "error": None}


#: Stands for the photo's path inside a cached failure reason.
_PHOTO = "<<photo>>"


def _unname(reason: str, path: Path) -> str:
    """``reason`` with the photo's path (as a whole word, not inside a number or another
    path) replaced by :data:`_PHOTO`."""
    word = rf"(?<![\w./\\-]){re.escape(str(path))}(?![\w/\\-])"
    return re.sub(word, _PHOTO, reason)


def _read(cached: Path, path: Path) -> dict[str, Any] | None:
    """A cache entry, or None (a miss) when it cannot be read: it is then made again."""
    try:
        with np.load(cached, allow_pickle=False) as z:
            error = str(z["error"]).replace(_PHOTO, str(path)) or None
            return {"chip": z["chip"] if error is None else None, "landmarks": z["landmarks"],
                    "n_faces": int(z["n_faces"]), "error": error and f"{path}: {error}"}
    except Exception:  # noqa: BLE001 - a damaged entry (zip, member, dtype) is only a miss
        return None


def _cache_root() -> Path:
    return cache_dir() / "chips"


def _no_landmarks() -> np.ndarray:
    return np.full((68, 2), np.nan, np.float32)


def _write(path: Path, **arrays: Any) -> None:
    """Write a cache entry atomically; a cache that cannot be written only costs time, so a
    failure is a warning, not an error."""
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        warnings.warn(f"chip cache not written ({path.parent.parent.parent}: "
                      f"{exc.strerror or exc}); the chip will be made again next time "
                      f"({CACHE_ENV} moves the cache)", stacklevel=3)
