"""The rule registry: finding codes as data, checks as small functions.

A *code* is what a user sees and scripts match on (stable, with a default severity and the
section of the standard it rests on). A *check* is a function registered for the codes it may
raise; it reads one finished association (``phase="association"``, run when the association
ends, so its findings are in the association when it is written) or the capture-wide memory
(``phase="finish"``, run once at the end, for conclusions that need every association, such
as an MPPS never completed). Checks return :class:`Hit` objects; :mod:`.ruleset` turns them
into findings. Codes raised by the association tracker itself are listed here too
(``origin="tracker"``) so that the catalogue is the one place describing every code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ...units import duration
from ...units import size as units_size

if TYPE_CHECKING:
    from ...model import Association, Finding, Transaction
    from .state import CaptureState

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


class Code(NamedTuple):
    """One finding code: default severity, where the standard says so, what it means."""

    code: str
    severity: str
    section: str | None
    title: str
    origin: str = "rules"  # "rules" (this package) or "tracker" (analysis/tracker.py)


CODES: dict[str, Code] = {}


def code(name: str, severity: str, section: str | None, title: str,
         origin: str = "rules") -> str:
    """Register a code; returns its name so modules can keep it in a constant."""
    if severity not in SEVERITY_RANK:
        raise ValueError(f"{name}: unknown severity {severity!r}")
    CODES[name] = Code(name, severity, section, title, origin)
    return name


class Hit:
    """What a check found: turned into a Finding (section and severity default to the code's).

    Plain slotted classes here and in the other rule modules, not dataclasses: each dataclass
    compiles its methods at import, and startup time is part of analysing a small capture.
    """

    __slots__ = ("code", "message", "frame", "frames", "severity", "section")

    def __init__(self, code: str, message: str, frame: int | None = None,
                 frames: list[int] | None = None, severity: str | None = None,
                 section: str | None = None) -> None:
        self.code, self.message, self.frame = code, message, frame
        self.frames = frames if frames is not None else []
        self.severity, self.section = severity, section


class Check(NamedTuple):
    name: str
    func: Callable[..., Iterable[Hit]]
    codes: tuple[str, ...]
    phase: str  # "association" | "finish"
    # Reads what the rules remember across associations (CaptureState): a shard of the
    # connections sees only its part of that, so these run on the replay of the shards' logs
    # (dicomsniff/parallel/local.py); RuleConfig.scope chooses.
    cross: bool = False


CHECKS: list[Check] = []


def check(*codes: str, phase: str = "association",
          cross: bool = False) -> Callable[[Callable], Callable]:
    """Register a check for ``codes`` (each must be registered with :func:`code` first).
    ``cross``: it reads the capture-wide memory (every capture-end check does)."""

    def deco(func: Callable[..., Iterable[Hit]]) -> Callable[..., Iterable[Hit]]:
        for c in codes:
            if c not in CODES:
                raise KeyError(f"{func.__name__}: code {c} is not registered")
        CHECKS.append(Check(func.__name__, func, codes, phase, cross or phase == "finish"))
        return func

    return deco


class RuleConfig(NamedTuple):
    """Thresholds of the rules (the CLI exposes the ones a user tunes)."""

    slow_factor: float = 10.0  # a response this many times the median for its server is slow
    slow_min: float = 1.0  # ... and at least this many seconds
    slow_min_samples: int = 5  # responses of that command on that server needed for a median
    slow_over: float | None = None  # any response this slow (seconds), whatever the median
    idle_threshold: float = 30.0  # seconds with no DIMSE operation on an open association
    small_pdu: int = 16384  # a receiver max PDU below this is "small" for large data sets
    large_dataset: int = 256 * 1024  # average data set size that makes a small PDU matter
    throughput_min_bytes: int = 256 * 1024  # data set bytes before a throughput note is given
    max_tracked: int = 100_000  # entries per capture-wide memory (instances, MPPS, ...)
    disabled: frozenset[str] = frozenset()  # codes not to raise
    # "all"; "local" (a shard of the connections: the checks across associations, the C-MOVE
    # links and the study journey are left to the replay, dicomsniff/parallel/local.py);
    # "cross" (only those, replayed from the shards' records)
    scope: str = "all"


class AssocView:
    """One finished association and what the rules may know about it."""

    __slots__ = ("assoc", "config", "state", "ended_by", "transport", "datasets", "tcp")

    def __init__(self, assoc: Association, config: RuleConfig, state: CaptureState,
                 ended_by: str, transport: Any = None,
                 datasets: dict[tuple[int, int], Any] | None = None, tcp: Any = None) -> None:
        self.assoc, self.config, self.state = assoc, config, state
        self.ended_by = ended_by  # "fin" | "rst" | "eof" (how the TCP connection ended)
        self.transport = transport  # transport.ConnFacts; None for hand-fed associations
        self.datasets = datasets if datasets is not None else {}  # -> datasets.DatasetInfo
        self.tcp = tcp  # (TcpDirection, TcpDirection) or None

    @property
    def lost(self) -> bool:
        """Did the capture lose bytes of this association (TCP-GAP)? Then what was not
        seen may simply be among them: counts and absences prove nothing."""
        return any(f.code == "TCP-GAP" for f in self.assoc.findings)

    @property
    def rq_seen(self) -> bool:
        """Was the A-ASSOCIATE-RQ captured? If not (lost, or the capture began later),
        nothing can be said about what it proposed."""
        return self.assoc.request_frame is not None and not self.assoc.midstream

    def tracker_findings(self, code: str) -> Iterator[Finding]:
        """The findings the tracker already raised with ``code`` (to refine their message)."""
        return (f for f in self.assoc.findings if f.code == code)

    def dataset(self, t: Transaction) -> Any:
        """What was decoded of the request's data set, if it was collected."""
        if t.request_frame is None:
            return None
        return self.datasets.get((t.request_frame, t.command_field))


# -- wording helpers shared by the rules -----------------------------------------------------

def seconds(s: float | None) -> str:
    return duration(s, precise=False, missing="?")


def size(n: float) -> str:
    return units_size(n, precise=False)


def listing(items: list[str], most: int = 4) -> str:
    """'a, b, c and 5 more' - keeps a message on one screen."""
    if len(items) <= most:
        return ", ".join(items)
    return ", ".join(items[:most]) + f" and {len(items) - most} more"


def invoker(a: Association, t: Transaction) -> str:
    """The AE that sent the request ``t`` with its address."""
    if t.sent_by == "requestor":
        return f"{a.calling_ae or '?'} ({a.client})"
    return f"{a.called_ae or '?'} ({a.server})"


def performer(a: Association, t: Transaction) -> str:
    """The AE that performs ``t`` (the request went to it) with its address."""
    if t.sent_by == "requestor":
        return f"{a.called_ae or '?'} ({a.server})"
    return f"{a.calling_ae or '?'} ({a.client})"
