"""The study's journey across associations: worklist, MPPS, images, commitment, availability;
print management and Unified Procedure Step (issue 18, docs/studies.md).

:class:`~.core.Journey` follows an Analyzer (attached by the engine, so ``analyze`` raises its
findings); ``dicomsniff studies`` prints one timeline per study (:mod:`.report`).
"""

from __future__ import annotations

from .core import Journey
from .study import Study

__all__ = ["Journey", "Study"]
