"""Capture files through the engine, for the DICOMweb tests: their DICOMweb session."""

from __future__ import annotations

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.http import session
from dicomsniff.analysis.run import analyze_source
from dicomsniff.sources.merge import open_capture


def analyze_file(*paths, keylog=None):
    """The DICOMweb session of one or several capture files (opened as one capture, as the
    subcommands open theirs) analysed by the engine: the dispatch table sends HTTP connections
    to analysis/http.py, and with ``keylog`` (a KeyLog) HTTPS goes through the engine's TLS
    analyzer, which hands the plaintext to the same HTTP analyzer."""
    analyzer = Analyzer(tls_keylog=keylog)
    web = session(analyzer)
    capture = open_capture([str(p) for p in paths])
    try:
        analyze_source(capture, analyzer)
    finally:
        capture.close()
    return web
