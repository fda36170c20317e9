"""SVG of a :class:`~dicomsniff.export.sequence.Diagram`, drawn by dicomsniff itself.

No Java, no browser: columns are spaced so that every label fits between the lifelines it
joins (the width grows with the lifelines and the labels), each message gets its own row (the
height grows with the messages, and arrows never overlap), and a left gutter gives the frame
number (and with ``--timing`` the time) of each row, to find it in Wireshark. Failures are red,
warnings orange. Every string is XML-escaped: wire data cannot become markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .fontmetrics import text_width
from .sequence import Diagram, Message, Note

FONT = "DejaVu Sans, Verdana, Bitstream Vera Sans, sans-serif"
SIZE = 13  # first line of a label (bold)
SMALL = 12  # the other lines
LINE = 17  # line pitch
MARGIN = 24
MIN_GAP = 150  # between lifelines
ARROW_ROOM = 44  # label padding between two lifelines
OVERHANG = 28  # how far a note reaches past the lifelines it spans
LOOP = 34  # width of a message to itself
ROW_GAP = 16
HEAD_H = 46

INK = {"normal": "#263238", "muted": "#78909C", "info": "#263238", "warning": "#D84315",
       "failure": "#C62828"}
NOTE_FILL = {"info": ("#E8F1FB", "#7EA6D8"), "muted": ("#F1F3F5", "#B0BEC5"),
             "warning": ("#FFF4E5", "#E65100"), "failure": ("#FDECEA", "#C62828")}


def _clean(s: str) -> str:
    """XML 1.0 cannot carry control characters at all, escaped or not: show them as \\xNN."""
    return "".join(f"\\x{ord(c):02x}" if (ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF
                                           or ord(c) in (0xFFFE, 0xFFFF)) else c for c in s)


def _block_width(lines: list[str]) -> float:
    return max((text_width(x, SIZE if i == 0 else SMALL, i == 0) for i, x in enumerate(lines)),
               default=0)


@dataclass
class _Layout:
    xs: list[float]
    head_w: list[float]
    gutter: float
    width: float
    t0: float | None = None  # set with --timing: the gutter shows '+s' offsets
    frame_w: float = 0.0  # the gutter's frame column


def _frame_label(item: Message | Note) -> str:
    """The gutter's frame: "frame 123", or "file#n" for a capture of several files."""
    return item.frame_name or f"frame {item.frame}"


def _frame_width(d: Diagram) -> float:
    widest = max((text_width(_frame_label(it), 11) for it in d.items
                  if it.frame is not None), default=0.0)
    return max(text_width("frame 000000", 11), widest)


def _gutter_width(d: Diagram) -> float:
    w = _frame_width(d)
    if d.timing:
        w += text_width("+0000.000 s", 11) + 10
    return w + 12


def _columns(d: Diagram) -> _Layout:
    """Lifeline positions: every label fits between the lifelines it joins."""
    n = len(d.lifelines)
    head_w = [max(text_width(lf.title, 14, True), text_width(lf.address, SMALL)) + 24
              for lf in d.lifelines]
    gaps = [max(MIN_GAP, (head_w[i] + head_w[i + 1]) / 2 + 24) for i in range(n - 1)]
    spans: list[tuple[int, int, float]] = []
    for it in d.items:
        w = _block_width(it.lines)
        if isinstance(it, Message) and it.src != it.dst:
            lo, hi = sorted((it.src, it.dst))
            spans.append((lo, hi, w + ARROW_ROOM))
        elif isinstance(it, Message) and it.src < n - 1:
            spans.append((it.src, it.src + 1, w + LOOP + 24))
        elif isinstance(it, Note) and it.first < it.last:
            spans.append((it.first, it.last, w + 20 - 2 * OVERHANG))
    for lo, hi, need in sorted(spans, key=lambda s: s[1] - s[0]):
        have = sum(gaps[lo:hi])
        if have < need:
            extra = (need - have) / (hi - lo)
            for k in range(lo, hi):
                gaps[k] += extra
    gutter = _gutter_width(d)
    xs = [0.0]
    for g in gaps:
        xs.append(xs[-1] + g)
    left, right = -head_w[0] / 2, xs[-1] + head_w[-1] / 2
    for it in d.items:
        w = _block_width(it.lines)
        if isinstance(it, Message) and it.src == it.dst:
            right = max(right, xs[it.src] + LOOP + 12 + w)
        elif isinstance(it, Note):
            mid = (xs[it.first] + xs[it.last]) / 2
            half = max(w + 20, xs[it.last] - xs[it.first] + 2 * OVERHANG) / 2
            left, right = min(left, mid - half), max(right, mid + half)
    shift = MARGIN + gutter - left
    xs = [x + shift for x in xs]
    return _Layout(xs, head_w, gutter, right + shift + MARGIN, frame_w=_frame_width(d))


class _Canvas:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, x: float, y: float, s: str, *, size: float = SMALL, bold: bool = False,
             color: str = "#263238", anchor: str = "start") -> None:
        weight = ' font-weight="bold"' if bold else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{weight} '
                          f'fill="{color}" text-anchor="{anchor}">{escape(_clean(s))}</text>')

    def lines(self, x: float, y: float, lines: list[str], color: str,
              anchor: str = "start") -> None:
        for i, s in enumerate(lines):
            self.text(x, y + 13 + i * LINE, s, size=SIZE if i == 0 else SMALL, bold=i == 0,
                      color=color, anchor=anchor)

    def add(self, s: str) -> None:
        self.parts.append(s)


def _arrow(c: _Canvas, x1: float, x2: float, y: float, m: Message) -> None:
    color = INK.get(m.style, INK["normal"])
    d = 1 if x2 >= x1 else -1
    width = 2 if m.style == "failure" else 1.4
    dash = ' stroke-dasharray="7 4"' if m.reply else ""
    c.add(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2 - d * 2:.1f}" y2="{y:.1f}" '
          f'stroke="{color}" stroke-width="{width}"{dash}/>')
    pts = f"{x2 - d * 11:.1f},{y - 5:.1f} {x2:.1f},{y:.1f} {x2 - d * 11:.1f},{y + 5:.1f}"
    if m.reply:
        c.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"/>')
    else:
        c.add(f'<polygon points="{pts}" fill="{color}"/>')


def _message(c: _Canvas, lay: _Layout, y: float, m: Message) -> float:
    """Draw one message row from ``y``; return the row's height."""
    lines = m.lines
    color = INK.get(m.style, INK["normal"])
    x1, x2 = lay.xs[m.src], lay.xs[m.dst]
    h = len(lines) * LINE
    w = _block_width(lines)
    if m.src == m.dst:
        c.lines(x1 + LOOP + 8, y, lines, color)
        bottom = y + max(h, 22)
        dash = ' stroke-dasharray="7 4"' if m.reply else ""
        c.add(f'<polyline points="{x1:.1f},{y + 6:.1f} {x1 + LOOP:.1f},{y + 6:.1f} '
              f'{x1 + LOOP:.1f},{bottom:.1f} {x1 + 12:.1f},{bottom:.1f}" fill="none" '
              f'stroke="{color}" stroke-width="1.4"{dash}/>')
        pts = f"{x1 + 11:.1f},{bottom - 5:.1f} {x1:.1f},{bottom:.1f} {x1 + 11:.1f},{bottom + 5:.1f}"
        c.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.4"/>'
              if m.reply else f'<polygon points="{pts}" fill="{color}"/>')
        _gutter(c, lay, y + 10, m)
        return bottom - y + ROW_GAP
    mid = (x1 + x2) / 2
    c.add(f'<rect x="{mid - w / 2 - 4:.1f}" y="{y:.1f}" width="{w + 8:.1f}" height="{h + 2:.1f}" '
          'fill="#FFFFFF" fill-opacity="0.9"/>')
    c.lines(mid, y, lines, color, anchor="middle")
    ya = y + h + 7
    _arrow(c, x1, x2, ya, m)
    _gutter(c, lay, ya + 4, m)
    return h + 7 + ROW_GAP


def _note(c: _Canvas, lay: _Layout, y: float, n: Note) -> float:
    lines = n.lines
    fill, stroke = NOTE_FILL.get(n.style, NOTE_FILL["info"])
    w = _block_width(lines) + 20
    mid = (lay.xs[n.first] + lay.xs[n.last]) / 2
    span = max(w, lay.xs[n.last] - lay.xs[n.first] + 2 * OVERHANG)
    left, right = mid - span / 2, mid + span / 2
    h = len(lines) * LINE + 9
    c.add(f'<path d="M{left:.1f},{y:.1f} H{right - 9:.1f} L{right:.1f},{y + 9:.1f} '
          f'V{y + h:.1f} H{left:.1f} Z" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>')
    c.lines(left + 10, y + 3, lines, INK.get(n.style, INK["normal"]))
    _gutter(c, lay, y + 16, n)
    return h + ROW_GAP


def _gutter(c: _Canvas, lay: _Layout, y: float, item: Message | Note) -> None:
    if item.frame is not None:
        c.text(MARGIN, y, _frame_label(item), size=11, color="#78909C")
    if lay.t0 is not None and item.time is not None:
        c.text(MARGIN + lay.frame_w + 10, y, f"+{item.time - lay.t0:.3f} s",
               size=11, color="#78909C")


def _heads(c: _Canvas, d: Diagram, lay: _Layout, y: float) -> None:
    for lf, x, w in zip(d.lifelines, lay.xs, lay.head_w, strict=True):
        c.add(f'<rect x="{x - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{HEAD_H}" rx="4" '
              'fill="#ECEFF1" stroke="#546E7A" stroke-width="1.2"/>')
        c.text(x, y + 19, lf.title, size=14, bold=True, anchor="middle")
        c.text(x, y + 36, lf.address, size=SMALL, color="#455A64", anchor="middle")


def render(d: Diagram) -> str:
    """The whole SVG document."""
    lay = _columns(d)
    lay.t0 = d.t0 if d.timing else None
    top = MARGIN + 34 + 16 * len(d.subtitle)  # lifeline heads, under the title block
    body = _Canvas()
    y = top + HEAD_H + 20
    for it in d.items:
        y += _message(body, lay, y, it) if isinstance(it, Message) else _note(body, lay, y, it)
    bottom = y + 4
    height = bottom + HEAD_H + MARGIN
    width = max(lay.width, 2 * MARGIN + text_width(d.title, 16, True),
                2 * MARGIN + max((text_width(x, SMALL) for x in d.subtitle), default=0))
    c = _Canvas()
    c.add('<rect width="100%" height="100%" fill="#FFFFFF"/>')
    c.text(MARGIN, MARGIN + 14, d.title, size=16, bold=True)
    for i, line in enumerate(d.subtitle):
        c.text(MARGIN, MARGIN + 34 + i * 16, line, size=SMALL, color="#546E7A")
    for x in lay.xs:
        c.add(f'<line x1="{x:.1f}" y1="{top + HEAD_H:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
              'stroke="#90A4AE" stroke-width="1" stroke-dasharray="5 5"/>')
    c.text(MARGIN, top + 28, "frame", size=11, color="#90A4AE")
    if lay.t0 is not None:
        c.text(MARGIN + lay.frame_w + 10, top + 28, "time", size=11,
               color="#90A4AE")
    c.parts += body.parts
    _heads(c, d, lay, top)
    _heads(c, d, lay, bottom)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'font-family={quoteattr(FONT)}>')
    title = f"<title>{escape(_clean(d.title))}</title>"
    return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', head, title, *c.parts,
                      "</svg>"]) + "\n"
