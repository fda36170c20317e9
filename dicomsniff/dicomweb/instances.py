"""The instance seam: who wants the bytes of the DICOM instances a DICOMweb body carries.

A STOW-RS request and a WADO-RS (or WADO-URI) response carry whole PS3.10 files, each an
``application/dicom`` part of a multipart/related body (or the body itself). Nothing keeps
them (the body streams, :mod:`.bodies`), unless an :class:`InstancePolicy` registered on the
session (``DicomwebAnalyzer.instance_policies``) returns an :class:`InstanceSink` for one: the
sink then gets the part's bytes as they pass, byte for byte, and ``close`` at its end with
what the part's first bytes say (SOP Class, SOP Instance, Transfer Syntax UIDs). It is the
DICOMweb counterpart of the data set collection policy (``analysis.collect``); ``export-objects``
is its user (``objects.web``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .model import HttpConnectionInfo, WebTransaction


class InstanceSink(Protocol):
    def write(self, data: bytes) -> None:
        """The next bytes of the instance."""

    def close(self, complete: bool, header: dict[str, Any] | None) -> None:
        """The instance ended: ``complete`` False when bytes are missing or it was cut off;
        ``header``: its UIDs read from the first bytes (None: not a PS3.10 file)."""


class InstancePolicy(Protocol):
    def instance(self, connection: HttpConnectionInfo, transaction: WebTransaction,
                 side: int, part: int | None) -> InstanceSink | None:
        """A sink for an instance of ``transaction`` sent by ``side`` (0 the user agent: a
        STOW-RS part; 1 the origin server: a retrieved one), ``part`` its index in the
        multipart body (None: the body itself), or None for not wanted."""


class Tee:
    """Several sinks for one instance: each gets every byte."""

    __slots__ = ("sinks",)

    def __init__(self, sinks: list[InstanceSink]) -> None:
        self.sinks = sinks

    def write(self, data: bytes) -> None:
        for s in self.sinks:
            s.write(data)

    def close(self, complete: bool, header: dict[str, Any] | None) -> None:
        for s in self.sinks:
            s.close(complete, header)
