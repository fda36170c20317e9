"""A capture file through the engine, for the DICOMweb tests: its DICOMweb session."""

from __future__ import annotations

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.http import session
from dicomsniff.analysis.run import analyze_source


def analyze_file(path, keylog=None):
    """The DICOMweb session of a capture analysed by the engine (the dispatch table sends its
    HTTP connections to analysis/http.py); ``keylog`` (a KeyLog) reads HTTPS through the
    engine's TLS analyzer, or, where the engine has none yet, through the DICOMweb reader's
    own (dicomsniff/dicomweb/flows.py)."""
    try:
        analyzer = Analyzer(tls_keylog=keylog) if keylog is not None else Analyzer()
    except TypeError:  # an engine without TLS analysis: the standalone reader
        from dicomsniff.dicomweb.flows import HttpFlows
        from dicomsniff.sources.capture import CaptureReader

        flows = HttpFlows(keylog=keylog)
        reader = CaptureReader(path)
        try:
            flows.consume(reader)
        finally:
            reader.close()
        flows.finish()
        return flows.web
    web = session(analyzer)
    analyze_source(path, analyzer)
    return web
