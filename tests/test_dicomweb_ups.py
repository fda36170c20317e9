"""UPS-RS (PS3.18 11) on a real recording: captures/dicomweb/ups.pcap.

The user agents are real (curl 7.88 and Python ``requests``), the HTTP stack is real
(waitress), the origin server is a scripted UPS-RS application (captures/ups_origin.py: no
UPS-RS server is installable here). The ground truth is what the clients logged for each
exchange (captures/ups_record.py writes it to manifest-ups.json); tshark's HTTP dissector is
the independent oracle for the framing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dicomsniff.dicomweb.services import FILTERED_SUBSCRIPTION, GLOBAL_SUBSCRIPTION
from tests.dicomweb_files import analyze_file

DIR = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"
MANIFEST = json.loads((DIR / "manifest-ups.json").read_text())
ENTRY = MANIFEST["captures"][0]
TRUTH = ENTRY["exchanges"]
PCAP = DIR / ENTRY["file"]
W1, W2 = ENTRY["workitems"]
_CACHE: dict[str, object] = {}

# The PS3.18 11 transaction of each logged exchange, in order, as the scenario sent it.
ACTIONS = [
    "Create Workitem", "Retrieve Workitem", "Retrieve Workitem", "Retrieve Workitem",
    "Create Workitem", "Create Workitem",  # curl
    "Search for Workitems", "Update Workitem", "Create Global Subscription",
    "Create Filtered Global Subscription", "Create Subscription", "Create Subscription",
    "Change Workitem State", "Update Workitem", "Update Workitem", "Change Workitem State",
    "Change Workitem State", "Change Workitem State", "Change Workitem State",
    "Change Workitem State", "Request Cancellation", "Request Cancellation",
    "Request Cancellation", "Request Cancellation", "Suspend Global Subscription",
    "Delete Subscription", "Delete Global Subscription",
    "Delete Filtered Global Subscription", "Delete Subscription", "Search for Workitems",
]


def web():
    if "web" not in _CACHE:
        _CACHE["web"] = analyze_file(PCAP)
    return _CACHE["web"]


def txns():
    return sorted(web().transactions, key=lambda t: t.request_frame)


def logged_workitem(path: str) -> str | None:
    """The workitem UID in a logged path: /workitems/{uid}... or /workitems?{uid}."""
    m = re.search(r"/workitems/([0-9.]+)", path) or re.search(r"/workitems\?([0-9.]+)$", path)
    return m.group(1) if m else None


def test_file_matches_manifest() -> None:
    assert hashlib.sha256(PCAP.read_bytes()).hexdigest() == ENTRY["sha256"]
    assert ENTRY["tcpdump"]["dropped_by_kernel"] == 0
    assert {e["client"] for e in TRUTH} == {"curl", "python-requests"}


def test_every_exchange_the_clients_logged() -> None:
    """Method, path, status, Content-Type, body length and Warning header, in order."""
    got = txns()
    assert len(got) == len(TRUTH) == len(ACTIONS)
    for t, e in zip(got, TRUTH, strict=True):
        assert (t.method, t.target, t.status) == (e["method"], e["path"], e["status"])
        assert (t.response_content_type or None) == (e["content_type"] or None)
        assert t.response_bytes == e["bytes"]
        assert t.response_complete and t.request_complete
        assert t.warnings == ([e["warning"]] if e["warning"] else [])


def test_every_ups_rs_transaction_classified() -> None:
    """Command, action and workitem UID of each request (PS3.18 11)."""
    for t, e, action in zip(txns(), TRUTH, ACTIONS, strict=True):
        assert (t.command, t.action) == ("UPS-RS", action), e["path"]
        assert t.workitem == logged_workitem(e["path"]), e["path"]
    # the well-known UIDs of the global subscriptions (PS3.18 11.10; PS3.4 CC.3.1)
    scoped = {t.workitem for t in txns() if "Global" in t.action}
    assert scoped == {GLOBAL_SUBSCRIPTION, FILTERED_SUBSCRIPTION}
    # Create Workitem with the UID as the query, POST /workitems{?workitem} (PS3.18 11.4.1)
    creates = [t for t in txns() if t.action == "Create Workitem"]
    assert [t.workitem for t in creates] == [W1, W2, W2]


def test_status_meanings() -> None:
    by = {}
    for t in txns():
        by.setdefault(t.status, []).append(t)
    assert sorted(by) == [200, 201, 202, 204, 400, 404, 406, 409]
    assert all(t.status_meaning.startswith("Created") for t in by[201])
    # PS3.18 11.8.3: 202 to a Request Cancellation: accepted, the state has not changed yet
    (accepted,) = by[202]
    assert accepted.action == "Request Cancellation" and accepted.workitem == W2
    assert "has not changed yet" in accepted.status_meaning
    assert all("no such workitem" in t.status_meaning for t in by[404])
    assert all(t.status_meaning.startswith("Conflict") for t in by[409])
    assert {t.action for t in by[409]} == {"Update Workitem", "Change Workitem State",
                                           "Request Cancellation"}
    assert all(t.status_category == "Failure" for s in (400, 404, 406, 409) for t in by[s])
    # 201 for a create carries the Location of the new workitem (what curl logged)
    for t, e in zip(txns(), TRUTH, strict=True):
        if t.action == "Create Workitem" and t.status == 201:
            assert e["location"].endswith(f"/workitems/{t.workitem}")


def test_findings_follow_the_failures_and_warnings() -> None:
    """One finding per failure status and per Warning header, none elsewhere: the origin
    server follows PS3.18 11, so nothing is blamed on it."""
    frames = {}
    for f in web().findings:
        frames.setdefault(f.frame, set()).add(f.code)
    expected = {}
    for t, e in zip(txns(), TRUTH, strict=True):
        codes = set()
        if e["warning"]:
            codes.add("DICOMWEB-WARNING-HEADER")
        codes |= {404: {"DICOMWEB-NOT-FOUND"}, 406: {"DICOMWEB-NOT-ACCEPTABLE"},
                  400: {"DICOMWEB-CLIENT-ERROR"}, 409: {"DICOMWEB-CLIENT-ERROR"}
                  }.get(e["status"], set())
        if codes:
            expected[t.response_frames[-1]] = codes
    assert frames == expected
    assert not [f for f in web().findings if f.severity == "error"]
    # the already-in-the-requested-state answers: 200 with Warning (PS3.18 11.7.3, 11.8.3)
    already = [t for t in txns() if t.status == 200 and t.warnings]
    assert [(t.action, "COMPLETED" in t.warnings[0] or "CANCELED" in t.warnings[0])
            for t in already] == [("Change Workitem State", True),
                                  ("Request Cancellation", True)]


@pytest.mark.tshark
def test_http_framing_agrees_with_tshark() -> None:
    if shutil.which("tshark") is None:
        pytest.fail("tshark is needed (installed by .ci/run)")
    out = subprocess.run(["tshark", "-r", str(PCAP), "-Y", "http", "-T", "fields",
                          "-e", "frame.number", "-e", "http.request.method", "-e",
                          "http.request.uri", "-e", "http.response.code"],
                         capture_output=True, text=True, check=True).stdout
    requests, responses = [], []
    for line in out.splitlines():
        frame, method, uri, code = (line.split("\t") + ["", "", ""])[:4]
        if method:
            requests.append((int(frame), method, uri))
        if code:
            responses.append((int(frame), int(code)))
    ours = txns()
    assert len(requests) == len(responses) == len(TRUTH)
    assert requests == [(t.request_end_frame, t.method, t.target) for t in ours]
    assert responses == [(t.response_frames[-1], t.status) for t in ours]
    assert [m for _, m, _ in requests] == [e["method"] for e in TRUTH]
    assert [c for _, c in responses] == [e["status"] for e in TRUTH]
