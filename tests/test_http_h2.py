"""The passive HTTP/2 reader (dissectors/http/h2.py, the h2 library): the exchanges of a real
h2 conversation whatever the segmentation, bounded, and hostile bytes a problem, never an
exception. The recordings (curl and Hypercorn) are in test_dicomweb_peers.py."""

from __future__ import annotations

import pytest

from dissectors.http.h2 import H2Reader
from dissectors.http.stream import HttpHandler
from tests.fuzz.http_targets import H2Case, _h2_run, check_h2, h2_conversation


def test_three_exchanges_with_bodies_past_the_default_windows() -> None:
    client, server = h2_conversation()
    got, web = _h2_run(H2Case(client, server, [], True), [])
    assert got == [
        ("GET", "/dicom-web/studies?PatientID=X", 200, 0, 2, True),
        ("POST", "/dicom-web/studies", 409, len(client) and 200049, 29, True),
        ("GET", "/dicom-web/studies/1/series/2/instances/3/rendered", 200, 0, 300003, True)]
    t = sorted(web.transactions, key=lambda x: x.id)
    assert [x.command for x in t] == ["QIDO-RS", "STOW-RS", "WADO-RS"]
    assert all(x.http_version == "2" for x in t)
    assert t[0].user_agent == "h2-test" and web.connections[0].server_software == "h2-test"
    assert t[1].parts and t[1].parts[0]["bytes"] == 200000  # the multipart read as it streamed
    assert not [f for f in web.findings if f.code.startswith("DICOMWEB-HTTP")]


@pytest.mark.parametrize("step", [9, 100, 4096, 70000])
def test_any_segmentation_even_responses_before_requests(step: int) -> None:
    client, server = h2_conversation()
    check_h2(H2Case(client, server, list(range(step, max(len(client), len(server)), step)),
                    True))


class Log(HttpHandler):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def request(self, msg):
        self.events.append(("request", msg.target))

    def response(self, msg):
        self.events.append(("response", msg.status))

    def problem(self, side, code, text, frame):
        self.events.append(("problem", code, text))

    def unanswered(self, request):
        self.events.append(("unanswered", request.target))


def test_a_gap_ends_the_reading_and_open_streams_are_unanswered() -> None:
    client, server = h2_conversation()
    log = Log()
    r = H2Reader(log)
    r.feed(0, client[:5000], 1, 0.0)
    r.gap(0, 100, 2, 0.0)
    r.feed(0, client[5100:], 3, 0.0)
    r.feed(1, server, 4, 0.0)
    r.close(5, 1.0)
    codes = [e[1] for e in log.events if e[0] == "problem"]
    assert codes == ["HTTP2-MALFORMED"]
    assert ("unanswered", "/dicom-web/studies") in log.events


@pytest.mark.parametrize("garbage", [b"\x00" * 64, b"\xff" * 64, b"GET / HTTP/1.1\r\n\r\n",
                                     b"\x00\x00\x05\x01\x04\x00\x00\x00\x01\xff\xff\xff\xff\xff"])
def test_garbage_after_the_preface_is_a_problem_not_an_exception(garbage: bytes) -> None:
    log = Log()
    r = H2Reader(log)
    r.feed(0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + garbage, 1, 0.0)
    r.feed(1, garbage, 2, 0.0)
    r.close(3, 0.0)
    assert any(e[0] == "problem" and e[1] == "HTTP2-MALFORMED" for e in log.events)


def test_streams_and_held_bytes_are_capped() -> None:
    client, server = h2_conversation()
    log = Log()
    r = H2Reader(log, max_streams=1)
    r.feed(0, client, 1, 0.0)
    r.feed(1, server, 2, 0.0)
    assert ("problem", "HTTP-CAP-PIPELINE") in [e[:2] for e in log.events]
    log = Log()
    r = H2Reader(log)
    r.max_held = 1000
    r.feed(1, server, 1, 0.0)  # responses, and no request ever: held, then given up
    assert not r.pending[1]
    assert [e[1] for e in log.events if e[0] == "problem"] == ["HTTP2-MALFORMED"]
