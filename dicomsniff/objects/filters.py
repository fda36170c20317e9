"""Which associations and objects a command works on: ``--association``, ``--ae``,
``--sop-class``. Decided while the capture streams by (no second pass over the associations),
so the AE titles count once the A-ASSOCIATE-RQ has been seen.

Filters combine (all must hold); repeating one filter widens it (any value may match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Association
from ..uids import uid_name


def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


@dataclass(frozen=True)
class Filters:
    associations: frozenset[int] = frozenset()
    aes: tuple[str, ...] = ()
    sop_classes: tuple[str, ...] = ()

    @classmethod
    def of(cls, associations: Sequence[int] = (), aes: Sequence[str] = (),
           sop_classes: Sequence[str] = ()) -> Filters:
        return cls(frozenset(associations), tuple(_fold(t) for t in aes),
                   tuple(_fold(s) for s in sop_classes))

    def association(self, a: Association) -> bool:
        """Does ``a`` pass the association and AE title filters (as far as known now)?"""
        if self.associations and a.id not in self.associations:
            return False
        if self.aes:
            titles = (_fold(a.calling_ae), _fold(a.called_ae))
            return any(t in titles for t in self.aes)
        return True

    def may_want(self, a: Association) -> bool:
        """Before negotiation is seen only the id is known: AE titles cannot exclude yet."""
        return not self.associations or a.id in self.associations

    def sop_class(self, uid: str | None) -> bool:
        """``--sop-class`` matches a UID exactly or a substring of its name ('CT Image')."""
        if not self.sop_classes:
            return True
        u = _fold(uid)
        name = _fold(uid_name(uid))
        return any(s == u or (name and s in name) for s in self.sop_classes)

    def describe(self) -> str:
        parts = [f"association #{i}" for i in sorted(self.associations)]
        parts += [f"AE {t}" for t in self.aes]
        parts += [f"SOP class {s}" for s in self.sop_classes]
        return ", ".join(parts) or "everything"
