"""Errors that reach users as one line: what went wrong, with which file, and how to fix it.

Everything the library raises on bad input is an :class:`XfrError`; the command line prints
``xfr: error: <message>`` and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class XfrError(Exception):
    """Base class: the message is a complete, single-line explanation for the user."""


class UnknownNameError(XfrError, KeyError):
    """An unknown model, dataset, method or parameter name."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ImageError(XfrError):
    """An image that cannot be read or used (missing, not an image, truncated, too small)."""


class NoFaceError(ImageError):
    """An image in which the detector finds no face."""


class AssetError(XfrError):
    """A model or dataset file that cannot be fetched or fails its SHA-256 check."""


class DatasetError(XfrError):
    """A dataset folder or protocol file that is missing or not in the expected format."""
