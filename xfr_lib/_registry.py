"""Name -> object tables for models, datasets and explanation methods: one registration style.

Each kind has one :class:`Registry`; an entry registers itself where it is defined::

    @MODELS.register("sface")
    class SFace(FaceModel): ...

    @DATASETS.register("orl")
    def load_orl(root=None): ...

and the subpackage's ``__init__`` imports every module that registers something, by name (no
discovery), so importing the subpackage fills its table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from xfr_lib.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A table of named entries of one kind (``"model"``, ``"dataset"``, ``"method"``).

    Args:
        kind: what an entry is, for messages ("unknown model 'x'; choose one of: ...").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function under ``name``.

        A class also gets ``name`` as its ``name`` attribute, so it knows its registry name.

        Raises:
            ValueError: ``name`` is already taken by another entry.
        """

        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if isinstance(entry, type):
                entry.name = name  # type: ignore[attr-defined]
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """The entry called ``name``.

        Raises:
            UnknownNameError: no such entry; the message lists the known names.
        """
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[name]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
