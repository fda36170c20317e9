"""A base for plain slotted record classes: ``__repr__`` and ``__eq__`` as a dataclass has.

The event and model classes are written out by hand instead of with ``@dataclass``: creating
some 35 dataclasses (and importing ``dataclasses``, which imports ``inspect``) cost about 20 ms
of every start, a tenth of the time dicomsniff needs for a small capture. A subclass names its
fields in ``_fields`` (and usually ``__slots__ = _fields``) and writes its ``__init__``.
"""

from __future__ import annotations

from typing import Any


class Record:
    """Field-wise repr and equality over ``_fields``; unhashable, like a mutable dataclass."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self._fields
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]
