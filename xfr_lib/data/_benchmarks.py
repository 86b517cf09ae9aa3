"""Public face-verification benchmarks read from local folders: LFW, CPLFW, CALFW.

These datasets cannot be redistributed, so xfr never ships them. LFW can be downloaded on a
machine with the internet (URLs and SHA-256 from the ``benchmarks:`` section of
``data_manifest.yaml``); CPLFW and CALFW are distributed through Google Drive / Baidu without
checksums, so you download them yourself and point xfr at the folder.

Layouts:

* LFW: ``<root>/lfw/<Name>/<Name>_<NNNN>.jpg`` (``lfw_funneled/`` for the funneled variant)
  and ``<root>/pairs.txt`` (or ``pairsDevTrain.txt`` / ``pairsDevTest.txt``). Identity =
  the folder name as LFW spells it (``Aaron_Eckhart``).
* CPLFW / CALFW: one flat folder of images (``Name_1.jpg`` for CPLFW, ``Name_0001.jpg`` for
  CALFW) and ``pairs_CPLFW.txt`` / ``pairs_CALFW.txt``. Identity = the file name without the
  trailing ``_<n>.<ext>``. The image folder is ``root`` itself if it holds images, else the
  one sub-folder of ``root`` that does (e.g. ``aligned images/``), else pass ``images=``.

LFW's files are downloaded and checked by pooch (:func:`xfr_lib.data.download_url`) and
unpacked by pooch's ``Untar`` after xfr's own safety checks (:func:`extract_tar`).

Example (on a machine with the internet; ``tests/test_benchmarks.py`` runs the same code on
small files in the official formats, served over HTTP from 127.0.0.1 as a mirror would)::

    from xfr_lib.data import lfw
    bench = lfw("~/data/lfw-root", download=True)
    len(bench.dataset), len(bench.protocol)      # (13233, 6000)
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from xfr_lib.data import _assets as assets
from xfr_lib.data._datasets import (
    DATASETS,
    FaceDataset,
    FaceImage,
    _require_dir,
    _sorted_images,
    is_image_file,
)
from xfr_lib.data._verification import VerificationProtocol, _int, _read_lines, read_pairs_txt
from xfr_lib.errors import DatasetError, UnknownNameError

#: LFW variant -> (archive file, folder it extracts to).
LFW_VARIANTS = {"original": ("lfw.tgz", "lfw"), "funneled": ("lfw-funneled.tgz", "lfw_funneled")}
#: The pairs files of LFW: View 2 (10 folds) and View 1 (one fold each).
LFW_PAIRS = ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt")

_XLFW = {"cplfw": "pairs_CPLFW.txt", "calfw": "pairs_CALFW.txt"}
_XLFW_NAME = re.compile(r"^(?P<identity>.+)_(?P<num>\d+)$")


@dataclass
class Benchmark:
    """A benchmark's images and its official verification protocol.

    Attributes:
        name: ``"lfw"``, ``"cplfw"`` or ``"calfw"``.
        dataset: the images.
        protocol: the official pairs and folds.
    """

    name: str
    dataset: FaceDataset
    protocol: VerificationProtocol


def _benchmark_spec(name: str) -> dict:
    specs = assets.manifest().get("benchmarks", {})
    if name not in specs:
        raise UnknownNameError("benchmark", name, sorted(specs))
    return specs[name]


def _file_source(name: str, urls: dict | None) -> dict:
    """``{"url", "sha256"}`` of an LFW file: ``urls[name]`` if given, else the manifest's."""
    if urls and name in urls:
        src = urls[name]
        return {"url": src, "sha256": None} if isinstance(src, str) else dict(src)
    files = _benchmark_spec("lfw").get("files", {})
    if name not in files:
        raise UnknownNameError("LFW file", name, sorted(files))
    return files[name]


def _check_member(member: tarfile.TarInfo, archive: Path, dest: Path) -> None:
    """Refuse members that would land outside ``dest`` or are not plain files and folders.

    pooch asks :mod:`tarfile` for its ``'data'`` filter only on Python >= 3.12, so these checks
    run first on every member: no absolute path, no ``..``, no links or devices, and whatever
    else the stdlib's :func:`tarfile.data_filter` refuses.
    """
    name = PurePosixPath(member.name)
    outside = (
        f"{archive} holds {member.name!r}, a path outside the extraction folder; "
        f"the archive is unsafe, delete it and download it again"
    )
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")):
        raise DatasetError(outside)
    if not (member.isfile() or member.isdir()):
        raise DatasetError(
            f"{archive} holds {member.name!r}, which is a link or special file; the "
            f"archive is not the expected one, delete it and download it again"
        )
    try:
        tarfile.data_filter(member, str(dest))
    except tarfile.FilterError:
        raise DatasetError(outside) from None


def extract_tar(archive: Path | str, root: Path | str, folder: str) -> Path:
    """Extract ``folder/`` of a tar archive safely into ``root/folder``, with pooch's Untar.

    Every member is checked first (no absolute paths, no ``..``, no links or devices; see
    :func:`_check_member`), then :class:`pooch.Untar` extracts the archive into a temporary
    folder inside ``root``, and only a complete ``folder`` is renamed into place: an
    interrupted or failed extraction leaves nothing at ``root/folder``.

    Raises:
        DatasetError: for an unreadable, truncated or unsafe archive, or one without
            ``folder/``.
    """
    import pooch

    archive, root = Path(archive).resolve(), Path(root)
    final = root / folder
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{folder}-extract-")).resolve()
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar.getmembers():  # reads the whole archive: truncation shows here
                    _check_member(member, archive, tmp)
            # extract_dir is taken relative to the archive's folder; "download" forces extraction.
            untar = pooch.Untar(extract_dir=os.path.relpath(tmp, archive.parent))
            untar(str(archive), "download", None)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            reason = " ".join(str(exc).split())
            raise DatasetError(
                f"could not extract {archive} ({reason}); delete it and download it again"
            ) from None
        if not (tmp / folder).is_dir():
            raise DatasetError(f"{archive} has no top folder {folder}/; is it the right archive?")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / folder, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def download_lfw(
    root: Path | str,
    variant: str = "original",
    pairs: tuple[str, ...] = LFW_PAIRS,
    urls: dict | None = None,
    progress: bool = True,
    keep_archive: bool = True,
) -> Path:
    """Download and extract LFW into ``root`` (only what is missing), verifying SHA-256.

    Args:
        root: the folder to fill (created if needed).
        variant: ``"original"`` or ``"funneled"``.
        pairs: which pairs files to fetch.
        urls: file name -> URL string or ``{"url", "sha256"}`` overriding the manifest (for
            mirrors and tests; a bare URL string is not checksum-verified).
        progress: show download progress bars.
        keep_archive: keep the verified ``.tgz`` in ``root`` after extraction.

    Returns:
        ``root``.

    Raises:
        AssetError: for a failed download or a checksum mismatch (nothing is kept).
        DatasetError: for an unsafe or wrong archive.
    """
    archive_name, folder = _variant(variant)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for name in pairs:
        if not (root / name).is_file():
            src = _file_source(name, urls)
            assets.download_url(src["url"], root / name, src.get("sha256"), progress=progress)
    if not (root / folder).is_dir():
        src = _file_source(archive_name, urls)
        archive = assets.download_url(
            src["url"], root / archive_name, src.get("sha256"), progress=progress
        )
        extract_tar(archive, root, folder)
        if not keep_archive:
            archive.unlink()
    return root


def _variant(variant: str) -> tuple[str, str]:
    if variant not in LFW_VARIANTS:
        raise UnknownNameError("LFW variant", variant, list(LFW_VARIANTS))
    return LFW_VARIANTS[variant]


def lfw_dataset(
    root: Path | str,
    variant: str = "original",
    download: bool = False,
    urls: dict | None = None,
    progress: bool = True,
) -> FaceDataset:
    """LFW's images under ``root`` (see the module doc for the layout).

    Args:
        root: the folder holding ``lfw/`` (or ``lfw_funneled/``) and the pairs files.
        variant: ``"original"`` or ``"funneled"``.
        download: fetch and extract what is missing (needs the internet).
        urls: overrides of the manifest's URLs/checksums (see :func:`download_lfw`).
        progress: show download progress bars.

    Raises:
        DatasetError: if the images are missing and ``download`` is False (the message says
            how to get them).
    """
    archive_name, folder = _variant(variant)
    root = Path(root).expanduser()
    if download:
        download_lfw(root, variant, pairs=(), urls=urls, progress=progress)
    if not (root / folder).is_dir():
        src = _file_source(archive_name, urls)
        raise DatasetError(
            f"LFW images not found at {root / folder}; call lfw({str(root)!r}, download=True) on a "
            f"machine with the internet, or download {src['url']} ({archive_name}) and extract it "
            f"in {root}"
        )
    spec = _benchmark_spec("lfw")
    images = [FaceImage(path=p, identity=person.name)
              for person in (root / folder).iterdir()
              if person.is_dir() and not person.name.startswith(".")
              for p in person.iterdir() if is_image_file(p)]
    if not images:
        raise DatasetError(f"no LFW images (<Name>/<Name>_<NNNN>.jpg) in {root / folder}; "
                           f"download and extract LFW there (lfw(..., download=True))")
    return FaceDataset(name="lfw", images=_sorted_images(images), root=root / folder,
                       description=spec["description"], licence=spec["licence"],
                       citation=spec["citation"], params={"root": str(root), "variant": variant})


def lfw(
    root: Path | str,
    variant: str = "original",
    download: bool = False,
    pairs: str | Path = "pairs.txt",
    urls: dict | None = None,
    progress: bool = True,
) -> Benchmark:
    """LFW with an official protocol.

    Args:
        root: the folder holding ``lfw/`` (or ``lfw_funneled/``) and the pairs files.
        variant: ``"original"`` or ``"funneled"``.
        download: fetch what is missing, verified by SHA-256 (needs the internet).
        pairs: ``"pairs.txt"`` (View 2: 10 folds x 300 + 300), ``"pairsDevTrain.txt"`` /
            ``"pairsDevTest.txt"`` (View 1: one fold of 1100 + 1100 / 500 + 500), or a path.
        urls: overrides of the manifest's URLs/checksums (see :func:`download_lfw`).
        progress: show download progress bars.

    Raises:
        DatasetError: if files are missing (saying how to get them) or malformed.
    """
    root = Path(root).expanduser()
    pairs_path = Path(pairs) if Path(pairs).is_absolute() or os.sep in str(pairs) else root / pairs
    if download and not pairs_path.is_file() and pairs_path.name in LFW_PAIRS:
        download_lfw(root, variant, pairs=(pairs_path.name,), urls=urls, progress=progress)
    dataset = lfw_dataset(root, variant, download=download, urls=urls, progress=progress)
    if not pairs_path.is_file():
        hint = (
            f"download {_file_source(pairs_path.name, urls)['url']} to {pairs_path}"
            if pairs_path.name in LFW_PAIRS
            else "pass the path of an LFW-format pairs file"
        )
        raise DatasetError(
            f"LFW pairs file {pairs_path} not found; call lfw(..., download=True) or {hint}"
        )
    return Benchmark("lfw", dataset, read_pairs_txt(pairs_path, dataset))


def _image_folder(root: Path, name: str) -> Path:
    if any(is_image_file(p) for p in root.iterdir()):
        return root
    candidates = [
        d
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".") and any(is_image_file(p) for p in d.iterdir())
    ]
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(d.name for d in candidates) or "none"
    raise DatasetError(
        f"cannot tell which folder under {root} holds the {name.upper()} images "
        f"(folders with images: {found}); pass images= the flat image folder"
    )


def xlfw_dataset(name: str, root: Path | str, images: Path | str | None = None) -> FaceDataset:
    """The flat image folder of CPLFW or CALFW.

    Identity = file name without ``_<n>.<ext>`` (``Aaron_Eckhart_1.jpg`` -> ``Aaron_Eckhart``).
    Image files not named that way are left out and counted in ``params['skipped']``.

    Args:
        name: ``"cplfw"`` or ``"calfw"``.
        root: the benchmark's folder.
        images: the image folder, if it is not ``root`` or its only image sub-folder.

    Raises:
        DatasetError: for a missing folder or one without images.
    """
    if name not in _XLFW:
        raise UnknownNameError("benchmark", name, sorted(_XLFW))
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"{name.upper()} folder {root} does not exist; download {name.upper()} "
            f"from {_benchmark_spec(name).get('source', 'its website')} and pass its folder"
        )
    folder = Path(images).expanduser() if images is not None else _image_folder(root, name)
    if not folder.is_dir():
        raise DatasetError(
            f"{name.upper()} image folder {folder} does not exist; pass images= the "
            f"flat folder of {name.upper()} images"
        )
    found, skipped = [], 0
    for path in folder.iterdir():
        if not is_image_file(path):
            continue
        m = _XLFW_NAME.match(path.stem)
        if m is None:
            skipped += 1
            continue
        found.append(FaceImage(path=path, identity=m["identity"]))
    if not found:
        raise DatasetError(
            f"no {name.upper()} images (<Name>_<n>.jpg) in {folder}; pass images= the "
            f"flat folder of {name.upper()} images"
        )
    spec = _benchmark_spec(name)
    return FaceDataset(
        name=name,
        images=_sorted_images(found),
        root=folder,
        description=spec["description"],
        licence=spec["licence"],
        citation=spec["citation"],
        params={"root": str(root), "images": str(folder), "skipped": skipped},
    )


def load_xlfw_pairs(
    path: Path | str, dataset: FaceDataset, n_folds: int = 10
) -> VerificationProtocol:
    """Read a CPLFW / CALFW ``pairs_*.txt`` into a protocol on ``dataset``.

    Format: two consecutive lines ``filename label`` per pair; label ``0`` on both lines
    marks a different-identity pair, the same positive label on both lines (an identity id)
    a same-identity pair. The published files hold 3000 + 3000 pairs making 10 folds of 600,
    in order. Folds are assigned by rank within each class: the i-th genuine pair goes to fold
    ``i // (n_genuine / n_folds)``, and likewise for impostors. When every block of 600
    consecutive pairs holds 300 of each (the published layout) this is exactly "fold k =
    pairs 600k .. 600k+599"; if a file listed all genuine pairs first it would still give 10
    balanced folds instead of folds of one class.

    Labels come from the file; pairs whose label disagrees with the identities the file names
    imply are counted in ``params['label_identity_mismatches']`` (0 for consistent files).

    Args:
        path: the pairs file.
        dataset: the flat image folder the file names refer to (:func:`xfr_lib.data.xlfw_dataset`).
        n_folds: number of folds.

    Raises:
        DatasetError: naming file and line for a malformed line, an odd number of lines, labels
            that disagree within a pair, a pair count not divisible by ``n_folds``; naming the
            image for a file name that is not in ``dataset``.
    """
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    if not lines:
        raise DatasetError(f"{path} is empty; expected two 'filename label' lines per pair")
    if len(lines) % 2:
        raise DatasetError(
            f"{path} line {lines[-1][0]}: the file has an odd number of lines "
            f"({len(lines)}); every pair is two 'filename label' lines"
        )
    by_name = {image.path.name: i for i, image in enumerate(dataset.images)}
    entries = []
    for lineno, line in lines:
        f = line.split()
        if len(f) != 2:
            raise DatasetError(
                f"{path} line {lineno}: {line.strip()!r} is malformed; expected 'filename label'"
            )
        label = _int(f[1], path, lineno, line)
        if label < 0:
            raise DatasetError(
                f"{path} line {lineno}: label {label} is negative; expected 0 "
                f"(different) or a positive identity id (same)"
            )
        name = Path(f[0]).name  # some copies prefix a folder
        if name not in by_name:
            raise DatasetError(
                f"{path} line {lineno}: image {f[0]!r} is not in {dataset.root}; "
                f"point images= at the folder holding the benchmark's images"
            )
        entries.append((lineno, by_name[name], label))
    pairs, labels = [], []
    mismatches = 0
    for (l1, a, la), (l2, b, lb) in zip(entries[0::2], entries[1::2], strict=True):
        if (la > 0) != (lb > 0) or (la > 0 and la != lb):
            raise DatasetError(
                f"{path} lines {l1}-{l2}: labels {la} and {lb} disagree; a pair is "
                f"two lines with the same label (0 = different, >0 = same)"
            )
        same = la > 0
        mismatches += (dataset.images[a].identity == dataset.images[b].identity) != same
        pairs.append((a, b))
        labels.append(same)
    labels_arr = np.array(labels, dtype=bool)
    folds = np.empty(len(labels_arr), dtype=np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(labels_arr == cls)
        if len(idx) % n_folds:
            raise DatasetError(
                f"{path}: {len(idx)} {'genuine' if cls else 'impostor'} pairs cannot "
                f"be split into {n_folds} equal folds; pass n_folds= that divides it"
            )
        folds[idx] = np.arange(len(idx)) // (len(idx) // n_folds)
    params = {
        "kind": "verification",
        "source": str(path),
        "format": "xlfw-pairs",
        "n_folds": n_folds,
        "genuine_per_fold": int(labels_arr.sum()) // n_folds,
        "impostor_per_fold": int((~labels_arr).sum()) // n_folds,
        "label_identity_mismatches": int(mismatches),
    }
    return VerificationProtocol(dataset.name, pairs, labels_arr, folds, params)




def _xlfw(
    name: str, root: Path | str, pairs: Path | str | None, images: Path | str | None, n_folds: int
) -> Benchmark:
    root = Path(root).expanduser()
    dataset = xlfw_dataset(name, root, images)
    if pairs is None:
        wanted = _XLFW[name].lower()
        hits = [
            p
            for p in (root, dataset.root)
            for p in p.iterdir()
            if p.is_file() and p.name.lower() == wanted
        ]
        if not hits:
            raise DatasetError(
                f"{_XLFW[name]} not found in {root}; put the benchmark's pairs file "
                f"there or pass pairs= its path"
            )
        pairs = hits[0]
    return Benchmark(name, dataset, load_xlfw_pairs(Path(pairs), dataset, n_folds=n_folds))


def cplfw(
    root: Path | str,
    pairs: Path | str | None = None,
    images: Path | str | None = None,
    n_folds: int = 10,
) -> Benchmark:
    """Cross-Pose LFW from a local folder (``pairs_CPLFW.txt`` + flat image folder).

    Args:
        root: the folder you downloaded CPLFW into.
        pairs: the pairs file; default ``<root>/pairs_CPLFW.txt`` (any letter case).
        images: the flat image folder; default found under ``root`` (module doc).
        n_folds: folds of the protocol (10 in the published protocol).
    """
    return _xlfw("cplfw", root, pairs, images, n_folds)


def calfw(
    root: Path | str,
    pairs: Path | str | None = None,
    images: Path | str | None = None,
    n_folds: int = 10,
) -> Benchmark:
    """Cross-Age LFW from a local folder (``pairs_CALFW.txt`` + flat image folder).

    Args:
        root: the folder you downloaded CALFW into.
        pairs: the pairs file; default ``<root>/pairs_CALFW.txt`` (any letter case).
        images: the flat image folder; default found under ``root`` (module doc).
        n_folds: folds of the protocol (10 in the published protocol).
    """
    return _xlfw("calfw", root, pairs, images, n_folds)


@DATASETS.register("lfw")
def _lfw(root: Path | str | None = None, variant: str = "original", download: bool = False,
         urls: dict | None = None, progress: bool = True) -> FaceDataset:
    return lfw_dataset(_require_dir(root, "lfw"), variant=variant, download=download, urls=urls,
                       progress=progress)


@DATASETS.register("cplfw")
def _cplfw(root: Path | str | None = None, images: Path | str | None = None) -> FaceDataset:
    return xlfw_dataset("cplfw", _require_dir(root, "cplfw"), images=images)


@DATASETS.register("calfw")
def _calfw(root: Path | str | None = None, images: Path | str | None = None) -> FaceDataset:
    return xlfw_dataset("calfw", _require_dir(root, "calfw"), images=images)

