"""File helpers every part of xfr uses: a file's SHA-256, writes that never leave half a file,
and reading a cached JSON result.

A write goes to a temporary file in the target's folder and is renamed into place, so a crash
(or a full disk, or Ctrl-C) leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | Path, write: Callable[[IO], Any], *, binary: bool = True) -> Path:
    """Write ``path`` through ``write(file)`` atomically; return the path.

    Args:
        path: the file to (over)write; its folder is created if needed.
        write: called with the open temporary file (binary, or UTF-8 text).
        binary: open the temporary file in binary mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if binary else {"encoding": "utf-8"}
        with os.fdopen(fd, "wb" if binary else "w", **kwargs) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text), binary=False)


def load_yaml_mapping(path: str | Path, error: type[Exception]) -> dict:
    """The mapping in a YAML file (``{}`` if empty); any problem raises ``error`` in one line."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"parameter file {path} not found") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise error(f"parameter file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"parameter file {path} must be a mapping 'name: value', "
                    f"got a {type(data).__name__}")
    return data


def read_cached_json(path: str | Path | None, parse: Callable[[Any], T]) -> T | None:
    """``parse(json in path)``, or None when there is no such file or it cannot be parsed (a
    cache entry from another version or a torn write: the caller recomputes and overwrites)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        return parse(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError):
        return None
