"""The streaming multipart/related reader (dissectors/http/multipart.py): RFC 2046 5.1
delimiters found whatever the segmentation, parts never held, hostile shapes bounded."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from dissectors.http.mediatype import parse_accept, parse_media_type
from dissectors.http.multipart import MultipartHandler, MultipartReader


class Parts(MultipartHandler):
    def __init__(self) -> None:
        self.parts: list[list] = []
        self.problems: list[str] = []

    def part(self, part):
        self.parts.append([part.content_type, part.params, b"", None])

    def part_data(self, part, data):
        self.parts[-1][2] += data

    def part_end(self, part):
        self.parts[-1][3] = part.complete

    def problem(self, code, text):
        self.problems.append(code)


def read(body: bytes, boundary: str, step: int = 0) -> Parts:
    h = Parts()
    r = MultipartReader(boundary, h)
    if step:
        for i in range(0, len(body), step):
            r.feed(body[i:i + step])
    else:
        r.feed(body)
    r.close()
    return h


BOUNDARY = "dicomsniff-7f3a"
BODY = (b"preamble to ignore\r\n--dicomsniff-7f3a\r\n"
        b"Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\n"
        + b"\x00" * 128 + b"DICM first part \r\n--dicomsniff-7f3 not a delimiter\r\n"
        b"--dicomsniff-7f3a  \t\r\n"  # transport padding after the boundary (RFC 2046)
        b"\r\n"  # a part without header fields: the multipart's type applies
        b"second\r\n--dicomsniff-7f3a--\r\nepilogue")


@pytest.mark.parametrize("step", [0, 1, 2, 5, 17, 100])
def test_parts_whatever_the_segmentation(step: int) -> None:
    h = read(BODY, BOUNDARY, step)
    assert h.problems == []
    assert [p[0] for p in h.parts] == ["application/dicom", ""]
    assert h.parts[0][1] == {"transfer-syntax": "1.2.840.10008.1.2.1"}
    assert h.parts[0][2] == b"\x00" * 128 + b"DICM first part \r\n--dicomsniff-7f3 not a delimiter"
    assert h.parts[1][2] == b"second"
    assert all(p[3] for p in h.parts)


def test_missing_close_delimiter_is_a_problem_and_the_part_is_cut() -> None:
    h = read(b"--b\r\n\r\nabc", "b")
    assert h.problems == ["MULTIPART-UNTERMINATED"] and h.parts[0][2] == b"abc"


def test_boundary_never_found() -> None:
    assert read(b"no parts here at all", "b").problems == ["MULTIPART-UNTERMINATED"]


def test_boundary_too_long_is_refused_not_searched() -> None:
    h = read(b"--" + b"x" * 300 + b"\r\n\r\nabc", "x" * 300)
    assert h.problems == ["MULTIPART-BOUNDARY"] and h.parts == []


def test_part_head_flood_is_capped() -> None:
    h = Parts()
    r = MultipartReader("b", h, max_head=1024)
    r.feed(b"--b\r\n" + b"X-Flood: y\r\n" * 10_000)
    assert h.problems == ["MULTIPART-HEAD"]
    assert len(r.tail) == 0


def test_boundary_bomb_is_linear_and_keeps_nothing() -> None:
    """50,000 empty parts: each is a few bytes; time and memory stay flat per part."""
    bomb = b"--b\r\n\r\n\r\n" * 50_000 + b"--b--"

    class Count(MultipartHandler):
        n = 0

        def part_end(self, part):
            Count.n += 1

    tracemalloc.start()
    t0 = time.process_time()
    r = MultipartReader("b", Count())
    for i in range(0, len(bomb), 1460):
        r.feed(bomb[i:i + 1460])
    r.close()
    spent = time.process_time() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert Count.n == 50_000
    assert peak < 256 * 1024
    assert spent < 20  # linear: about a second; quadratic would be hours


def test_huge_part_streams_without_being_held() -> None:
    h = Parts()

    class Sizes(MultipartHandler):
        total = 0

        def part_data(self, part, data):
            Sizes.total += len(data)

    r = MultipartReader("bnd", Sizes())
    r.feed(b"--bnd\r\nContent-Type: application/dicom\r\n\r\n")
    block = b"\x5a" * 65536
    tracemalloc.start()
    for _ in range(300):
        r.feed(block)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r.feed(b"\r\n--bnd--")
    r.close()
    assert Sizes.total == 300 * 65536 and not h.problems
    assert peak < 600 * 1024


def test_media_type_parameters_quoted_and_bounded() -> None:
    mt, p = parse_media_type('Multipart/Related; type="application/dicom"; '
                             'boundary="a;b\\"c"; transfer-syntax=1.2.840.10008.1.2.4.90')
    assert mt == "multipart/related"
    assert p == {"type": "application/dicom", "boundary": 'a;b"c',
                 "transfer-syntax": "1.2.840.10008.1.2.4.90"}
    accept = parse_accept('multipart/related; type="application/dicom", application/dicom+json;'
                          'q=0.5, */*' + ", x/y" * 10_000)
    assert accept[0] == ("multipart/related", {"type": "application/dicom"})
    assert accept[1] == ("application/dicom+json", {"q": "0.5"})
    assert len(accept) == 64  # MAX_ITEMS
