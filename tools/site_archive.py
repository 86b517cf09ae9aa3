"""The published book as one file: ``python tools/site_archive.py SITE ARCHIVE.zip``.

``make book`` runs it on the built site. The archive holds the site under ``xfr-book/``, whose
``index.html`` opens from disk in a browser (the book loads nothing from a server or the
internet). It is reproducible: members in sorted order, with a fixed date and permissions,
so the same site gives the same bytes and the same checksum. Beside it, ``ARCHIVE.zip.sha256``
in the format of ``sha256sum -c``. Both are written whole or not at all.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from xfr_lib._io import atomic_write, atomic_write_text, sha256_file

PREFIX = "xfr-book"
_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can have
_SKIP = {".buildinfo", ".doctrees"}  # Sphinx's build bookkeeping, not part of the site


def write_archive(site: Path, archive: Path) -> str:
    """Write ``archive`` from the folder ``site``; returns its SHA-256."""
    if not (site / "index.html").is_file():
        raise SystemExit(f"site archive: {site} has no index.html; build the book first")
    files = sorted(p for p in site.rglob("*") if p.is_file()
                   and not _SKIP.intersection(p.relative_to(site).parts))

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for path in files:
                info = zipfile.ZipInfo(f"{PREFIX}/{path.relative_to(site).as_posix()}", _DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())

    atomic_write(archive, write)
    digest = sha256_file(archive)
    atomic_write_text(archive.with_name(archive.name + ".sha256"), f"{digest}  {archive.name}\n")
    return digest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    site, archive = Path(args[0]), Path(args[1])
    digest = write_archive(site, archive)
    print(f"site archive: {archive} ({archive.stat().st_size / 1e6:.1f} MB, sha256 {digest[:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
