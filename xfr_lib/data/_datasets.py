"""Labelled face images behind one small interface.

A :class:`FaceDataset` is an ordered list of :class:`FaceImage` (path, identity, metadata)
plus the dataset's licence and citation. The order is deterministic (identities in natural
order, then file names in natural order, so ``s2`` comes before ``s10`` and ``2.pgm`` before
``10.pgm``), which is what makes index-based protocols (:func:`xfr_lib.data.make_verification_protocol`)
reproducible. Images are not read here: a dataset only says where they are.

Datasets (``list_datasets()``):

* ``orl``: the AT&T (ORL) faces, 40 people x 10 greyscale photos (``s1`` .. ``s40``).
* ``wild``: a handful of labelled in-the-wild photos of public figures, each with its own
  licence and credit from ``data_manifest.yaml``.
* ``radar``: 609 Brazilian politicians (and a few others), one photo each: a distractor
  gallery for identification.
* ``lfw``, ``cplfw``, ``calfw``: public benchmarks read from a local folder (``root=``);
  see :func:`xfr_lib.data.lfw`.
* ``folder``: your own images, read by :func:`read_image_folder`.

Every loader registers itself in :data:`DATASETS` (``@DATASETS.register("name")``); its
keyword arguments besides ``root`` are the options :func:`load_dataset` accepts.

Example:
    >>> from xfr_lib.data import load_dataset
    >>> orl = load_dataset("orl")
    >>> len(orl), len(orl.identities), orl[0].identity
    (400, 40, 's1')
"""

from __future__ import annotations

import csv
import inspect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xfr_lib._registry import Registry
from xfr_lib.data import _assets as assets
from xfr_lib.errors import DatasetError, UnknownNameError

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp", ".tif", ".tiff"})

#: Dataset loaders by name: ``loader(root=None, **options) -> FaceDataset``.
DATASETS: Registry = Registry("dataset")

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``s2 < s10``, ``2.pgm < 10.pgm``.

    Text parts compare case-insensitively first, then exactly, so the order is total.
    """
    parts = _DIGITS.split(text)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in parts) + (
        (2, 0, text),
    )


def normalize_name(text: str) -> str:
    """A name for comparisons: Unicode NFC, whitespace collapsed, case-folded."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def is_image_file(path: Path) -> bool:
    """True for a visible regular file with one of :data:`IMAGE_EXTENSIONS`."""
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
    )


@dataclass(frozen=True)
class FaceImage:
    """One labelled image.

    Attributes:
        path: where the image file is.
        identity: who is in it (the dataset's label).
        meta: whatever is known about the file (``licence``, ``credit``, ...). Not part of
            equality or hashing: two FaceImage are equal when path and identity are.
    """

    path: Path
    identity: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class FaceDataset:
    """An ordered collection of labelled face images.

    Attributes:
        name: the dataset's name (``"orl"``, ``"folder"``, ...).
        images: the images, in a deterministic order.
        root: the folder the images are under.
        description: one line on what the dataset is.
        licence: the terms under which the images may be used.
        citation: how to credit the dataset.
        params: how it was loaded (options), recorded for reproducibility.
    """

    name: str
    images: list[FaceImage]
    root: Path
    description: str = ""
    licence: str = ""
    citation: str = ""
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> FaceImage:
        return self.images[index]

    def __iter__(self):
        return iter(self.images)

    def __repr__(self) -> str:
        return (
            f"FaceDataset(name={self.name!r}, images={len(self.images)}, "
            f"identities={len(self.identities)}, root={str(self.root)!r})"
        )

    @cached_property
    def _index(self) -> dict[str, list[int]]:
        by_identity: dict[str, list[int]] = {}
        for i, image in enumerate(self.images):
            by_identity.setdefault(image.identity, []).append(i)
        return by_identity

    @property
    def identities(self) -> list[str]:
        """The distinct identities, in natural order."""
        return sorted(self._index, key=natural_key)

    @property
    def labels(self) -> np.ndarray:
        """Identity of every image as an integer: its position in :attr:`identities`."""
        position = {identity: k for k, identity in enumerate(self.identities)}
        return np.array([position[im.identity] for im in self.images], dtype=np.int64)

    def indices_of(self, identity: str) -> list[int]:
        """Indices of the images of ``identity``, in dataset order.

        Raises:
            UnknownNameError: if the dataset has no such identity.
        """
        if identity not in self._index:
            raise UnknownNameError(f"identity of dataset {self.name!r}", identity, self.identities)
        return list(self._index[identity])

    def subset(self, indices: Iterable[int]) -> FaceDataset:
        """A new dataset of the images at ``indices`` (in the order given)."""
        indices = [int(i) for i in indices]
        n = len(self.images)
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise DatasetError(
                f"subset index {bad[0]} is out of range for dataset {self.name!r} "
                f"of {n} images; pass indices in 0..{n - 1}"
            )
        return FaceDataset(
            name=self.name,
            images=[self.images[i] for i in indices],
            root=self.root,
            description=self.description,
            licence=self.licence,
            citation=self.citation,
            params={**self.params, "subset_of": len(self.images), "subset_size": len(indices)},
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per image: ``path``, ``identity`` and one column per metadata key."""
        rows = [{"path": str(im.path), "identity": im.identity, **im.meta} for im in self.images]
        frame = pd.DataFrame(rows, columns=None if rows else ["path", "identity"])
        frame.index.name = "index"
        return frame


# --- loaders ----------------------------------------------------------------------------------


def _require_dir(root: Path | str | None, what: str) -> Path:
    if root is None:
        raise DatasetError(
            f"dataset {what!r} needs a folder: call load_dataset({what!r}, root=...)"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder {root} does not exist or is not a folder; "
            f"pass the folder of dataset {what!r} as root="
        )
    return root


def _sorted_images(images: list[FaceImage]) -> list[FaceImage]:
    return sorted(images, key=lambda im: (natural_key(im.identity), natural_key(im.path.name)))


def read_image_folder(root: Path | str) -> tuple[list[FaceImage], int]:
    """The labelled images of a folder of your own (a gallery, a dataset).

    Two layouts, which may be mixed:

    * ``<root>/<identity>/<image>``: every image directly inside a sub-folder belongs to the
      identity named by the sub-folder;
    * ``<root>/<image>``: an image directly under ``root`` is its own identity, named by the
      file name without extension (``obama.jpg`` -> ``obama``).

    Images are files with one of :data:`IMAGE_EXTENSIONS` (any letter case); hidden files and
    folders are skipped, and so is anything deeper than one sub-folder (counted in the
    second return value).

    Args:
        root: the folder.

    Returns:
        The images (in :func:`natural_key` order of identity, then file name) and the number
        of image files that were left out because they sit deeper than one sub-folder.

    Raises:
        DatasetError: ``root`` is missing or holds no image in either layout.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; pass a folder of <identity>/<image> "
                           f"(or of images named after their identity)")
    images, deeper = [], 0
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if is_image_file(entry):
            images.append(FaceImage(path=entry, identity=entry.stem))
        elif entry.is_dir():
            for p in entry.iterdir():
                if is_image_file(p):
                    images.append(FaceImage(path=p, identity=entry.name))
                elif p.is_dir() and not p.name.startswith("."):
                    deeper += sum(1 for q in p.rglob("*") if is_image_file(q))
    if not images:
        raise DatasetError(
            f"no images found in {root}: expected <identity>/<image> or images named after "
            f"their identity, with extensions {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return _sorted_images(images), deeper


@DATASETS.register("folder")
def load_folder(
    root: Path | str | None = None,
    dataset_name: str = "folder",
    description: str = "",
    licence: str = "",
    citation: str = "",
) -> FaceDataset:
    """Your own labelled images, in the layouts of :func:`read_image_folder`.

    Args:
        root: the folder (required).
        dataset_name: the dataset's name.
        description: one line on what it is.
        licence: the images' terms of use.
        citation: how to credit them.

    Raises:
        DatasetError: if ``root`` is not given, missing or holds no image.
    """
    if root is None:
        raise DatasetError("dataset 'folder' needs root=: a folder of <identity>/<image> "
                           "(or of images named after their identity)")
    root = Path(root).expanduser()
    images, deeper = read_image_folder(root)
    return FaceDataset(
        name=dataset_name,
        images=images,
        root=root,
        description=description or f"images under {root}",
        licence=licence,
        citation=citation,
        params={"root": str(root), "left_out_deeper": deeper},
    )


def _asset_root(name: str, root: Path | str | None) -> tuple[Path, dict]:
    spec = assets.asset_spec(name)
    return (Path(root).expanduser() if root is not None else assets.asset_dir(name)), spec


def _asset_dataset(name: str, images: list[FaceImage], folder: Path, spec: dict) -> FaceDataset:
    """A dataset shipped as an asset: its description, licence and citation come from the manifest."""
    return FaceDataset(name=name, images=_sorted_images(images), root=folder,
                       description=spec["description"], licence=spec["licence"],
                       citation=spec["citation"], params={"root": str(folder)})


@DATASETS.register("orl")
def load_orl(root: Path | str | None = None) -> FaceDataset:
    """The AT&T (ORL) faces: ``s1/1.pgm`` .. ``s40/10.pgm``, identities ``s1`` .. ``s40``.

    Only ``.pgm`` files count (the packaged copy has a stray ``s10/target.jpg``).

    Args:
        root: a local copy in the same layout; default: the verified asset ``orl``.
    """
    folder, spec = _asset_root("orl", root)
    folder = _require_dir(folder, "orl")
    meta = {"licence": spec["licence"]}
    images = [
        FaceImage(path=p, identity=person.name, meta=dict(meta))
        for person in folder.iterdir()
        if person.is_dir() and re.fullmatch(r"s\d+", person.name)
        for p in person.iterdir()
        if p.is_file() and p.suffix.lower() == ".pgm"
    ]
    if not images:
        raise DatasetError(
            f"no ORL images (s<k>/<n>.pgm) in {folder}; run 'xfr fetch' or pass the "
            f"folder of s1..s40 as root="
        )
    return _asset_dataset("orl", images, folder, spec)


@DATASETS.register("wild")
def load_wild(root: Path | str | None = None) -> FaceDataset:
    """Labelled in-the-wild photos; identity, licence and credit from ``data_manifest.yaml``.

    Args:
        root: a local copy in the asset's layout; default: the verified asset ``wild``.
    """
    folder, spec = _asset_root("wild", root)
    folder = _require_dir(folder, "wild")
    images = []
    for entry in spec["files"]:
        if "identity" not in entry:  # CREDITS.md
            continue
        path = folder / entry["path"]
        if not path.is_file():
            raise DatasetError(
                f"image {path} of dataset 'wild' is missing; run 'xfr fetch' "
                f"(or restore it from the package {entry['package']})"
            )
        meta = {k: entry[k] for k in ("licence", "credit") if k in entry}
        meta["source"] = entry["package"]
        images.append(FaceImage(path=path, identity=entry["identity"], meta=meta))
    return _asset_dataset("wild", images, folder, spec)


#: politicos.csv column -> meta key.
_RADAR_COLUMNS = {
    "Id Parlamento": "id_parlamento",
    "Nome": "full_name",
    "Apelido": "known_as",
    "Cargo": "office",
    "Partido": "party",
    "UF": "state",
}


@DATASETS.register("radar")
def load_radar(root: Path | str | None = None) -> FaceDataset:
    """The radar distractor gallery: ``images/<Name>.jpg``, one photo per person.

    Identity = the file name without extension, in Unicode NFC (151 of the packaged names
    are stored decomposed, NFD; the path keeps the name on disk). Metadata come from
    ``politicos.csv``: a photo matches the row whose ``Apelido`` (the name a politician is
    known by), else whose ``Nome`` (full name), equals the identity after NFC, whitespace
    collapsing and case folding. In the packaged copy 603 of 609 photos match by ``Apelido``
    (4 of them only case-insensitively, e.g. ``MARCUS PESTANA``); 6 match no row (``Lula``,
    ``Jair Bolsonaro``, ``Bozzella``, ``Glaustin da Fokus``, ``Pastor Gil``, ``Elon Musk``) and
    carry ``politico_match=None``. ``office`` is stripped of trailing blanks.

    Args:
        root: a local copy in the asset's layout; default: the verified asset ``radar``.
    """
    folder, spec = _asset_root("radar", root)
    folder = _require_dir(folder, "radar")
    image_dir = folder / "images"
    if not image_dir.is_dir():
        raise DatasetError(
            f"{image_dir} is missing; run 'xfr fetch' or pass the folder that holds "
            f"images/ and politicos.csv as root="
        )
    rows: list[dict] = []
    table = folder / "politicos.csv"
    if table.is_file():
        with open(table, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    by_column = {col: {} for col in ("Apelido", "Nome")}
    for row in rows:
        for col, lookup in by_column.items():
            lookup.setdefault(normalize_name(row.get(col) or ""), row)
    images = []
    for path in image_dir.iterdir():
        if not is_image_file(path):
            continue
        identity = unicodedata.normalize("NFC", path.stem)
        meta: dict[str, Any] = {"licence": spec["licence"], "politico_match": None}
        for col, lookup in by_column.items():
            row = lookup.get(normalize_name(identity))
            if row is not None:
                meta.update({key: (row.get(c) or "").strip() for c, key in _RADAR_COLUMNS.items()})
                meta["politico_match"] = col
                break
        images.append(FaceImage(path=path, identity=identity, meta=meta))
    if not images:
        raise DatasetError(f"no images in {image_dir}; run 'xfr fetch'")
    return _asset_dataset("radar", images, folder, spec)


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return DATASETS.names()


def load_dataset(name: str, root: Path | str | None = None, **options: Any) -> FaceDataset:
    """Load a dataset by name.

    Args:
        name: one of :func:`list_datasets`.
        root: the dataset's folder. Optional for ``orl``, ``wild`` and ``radar`` (default: the
            verified packaged copy); required for ``lfw``, ``cplfw``, ``calfw`` and ``folder``.
        **options: the loader's other keyword arguments: ``lfw``: ``variant``
            ("original" | "funneled"), ``download``, ``urls``, ``progress``;
            ``cplfw``/``calfw``: ``images`` (the image folder if not found under root);
            ``folder``: ``dataset_name``, ``description``, ``licence``, ``citation``.

    Raises:
        UnknownNameError: for an unknown dataset or option name.
        DatasetError: for a missing or empty folder.
    """
    loader = DATASETS.get(name)
    accepted = [p for p in inspect.signature(loader).parameters if p != "root"]
    for key in options:
        if key not in accepted:
            raise UnknownNameError(f"option of dataset {name!r}", key, accepted or ["(none)"])
    return loader(root, **options)


def check_disjoint(a: FaceDataset, b: FaceDataset) -> None:
    """Raise DatasetError if datasets ``a`` and ``b`` share an identity.

    Identities are compared after NFC normalisation, whitespace collapsing and case folding,
    so ``"Lula"`` and ``"LULA"`` collide.
    """
    seen = {normalize_name(i): i for i in a.identities}
    clash = [(seen[normalize_name(j)], j) for j in b.identities if normalize_name(j) in seen]
    if clash:
        x, y = clash[0]
        raise DatasetError(
            f"datasets {a.name!r} and {b.name!r} share {len(clash)} identit"
            f"{'y' if len(clash) == 1 else 'ies'} (e.g. {x!r} / {y!r}); remove them from one of "
            f"the two (dataset.subset) so that distractors are people not in the dataset"
        )

