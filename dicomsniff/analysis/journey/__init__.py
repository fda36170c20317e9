"""The study's journey across associations: worklist, MPPS, images, commitment, availability;
print management and Unified Procedure Step (issue 18, docs/studies.md).

:class:`~.core.Journey` follows an Analyzer (the engine attaches its stand-in,
:class:`~.lazy.LazyJourney`, which makes it when the capture needs one; ``analyze`` raises its
findings); ``dicomsniff studies`` prints one timeline per study (:mod:`.report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Journey
    from .study import Study

__all__ = ["Journey", "Study"]


def __getattr__(name: str) -> Any:
    """``Journey`` and ``Study`` on first use: the engine imports only :mod:`.lazy`, and a
    capture with no study traffic never loads the rest (see :mod:`.lazy`)."""
    if name == "Journey":
        from .core import Journey

        return Journey
    if name == "Study":
        from .study import Study

        return Study
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
