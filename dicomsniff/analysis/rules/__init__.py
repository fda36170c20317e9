"""Findings rules: what went wrong, why, and where in the standard.

Each rule module registers its finding codes (stable, with a default severity and a PS3.x
section) and small check functions in the registry of :mod:`.base`; :class:`RuleSet` runs them
when an association ends and once at the end of the capture. ``python -m
dicomsniff.analysis.rules`` prints the catalogue of every code.
"""

from __future__ import annotations

# tls: the TLS codes, raised by analysis/tls.py
from . import (  # noqa: F401
    dimse,
    journey,
    negotiation,
    performance,
    protocol,
    retrieve,
    tls,
    transport,
    workflow,
)
from .base import CHECKS, CODES, AssocView, Code, Hit, RuleConfig
from .ruleset import RuleSet

__all__ = ["CHECKS", "CODES", "AssocView", "Code", "Hit", "RuleConfig", "RuleSet",
           "catalogue"]


def catalogue() -> list[Code]:
    """Every known finding code, worst severity first."""
    from .base import SEVERITY_RANK

    return sorted(CODES.values(), key=lambda c: (SEVERITY_RANK[c.severity], c.code))
