"""The engine's public seams (docs/architecture.md): protocol dispatch, hooks that carry
objects, one data set collection. Each is used here the way another module would use it."""

from __future__ import annotations

from pathlib import Path

from dicomsniff.analysis import dispatch
from dicomsniff.analysis.collect import CollectionPolicy
from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from tests import builders as b

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def run(frames: list[bytes], analyzer: Analyzer | None = None) -> Analyzer:
    a = analyzer or Analyzer()
    a.consume((i * 0.001, 1, f, len(f)) for i, f in enumerate(frames))
    a.finish()
    return a


# -- hooks carry objects ----------------------------------------------------------------------

def test_on_transaction_carries_its_association():
    a = Analyzer()
    seen = []
    a.on_transaction.append(lambda assoc, t: seen.append((assoc, t)))
    analyze_source(CAPTURES / "move.pcap", a)
    assert seen
    for assoc, t in seen:
        assert assoc.id == t.association and t in assoc.transactions


def test_on_association_start_once_per_association_also_mid_stream():
    """A capture that starts inside an association: its start is announced when its first
    DIMSE message proves it (before its transactions), exactly once, like a negotiated one."""
    a = Analyzer()
    events: list[tuple[str, int]] = []
    a.on_association_start.append(lambda assoc: events.append(("start", assoc.id)))
    a.on_transaction.append(lambda assoc, t: events.append(("txn", assoc.id)))
    a.on_association.append(lambda assoc: events.append(("end", assoc.id)))
    analyze_source(CAPTURES / "mid-association.pcap", a)
    mid = [x for x in a.associations if x.midstream]
    assert mid and any(x.transactions for x in mid)
    for x in a.associations:
        mine = [e for e, i in events if i == x.id]
        assert mine.count("start") == 1 and mine[0] == "start" and mine[-1] == "end", mine


def test_live_feed_needs_no_scan_of_open_connections():
    """report/live.py shows a mid-stream association's transactions with the association."""
    from dicomsniff.report.live import LiveFeed

    class Out:
        def __init__(self) -> None:
            self.lines: list[tuple] = []

        def association_start(self, assoc):
            self.lines.append(("start", assoc.id))

        def transaction(self, t, assoc):
            self.lines.append(("txn", assoc.id if assoc else None))

        def finding(self, f, assoc, clock):
            pass

        def association_end(self, assoc):
            self.lines.append(("end", assoc.id))

    a = Analyzer(keep=False)
    out = Out()
    feed = LiveFeed(a, out)
    analyze_source(CAPTURES / "mid-association.pcap", a)
    assert ("txn", None) not in out.lines
    assert feed.counts()["transactions"] == sum(1 for x in out.lines if x[0] == "txn") > 0


# -- one data set collection ------------------------------------------------------------------

class _Grab(CollectionPolicy):
    """Every data set of one context id of every association; counts bytes per message."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.got: dict[tuple[int, int], int] = {}
        self.ctx: dict[int, set[int]] = {}

    def contexts(self, association, side):
        return {c.id for c in association.contexts.values()
                if c.accepted and self.command in (c.abstract_syntax or "")}

    def dataset(self, association, side, message):
        got, key = self.got, (association.id, message.frame)

        class Sink:
            def write(self, data: bytes) -> None:
                got[key] = got.get(key, 0) + len(data)

            def close(self, partial: bool) -> None:
                got.setdefault(key, 0)

        return Sink()


def test_collection_policies_are_independent_of_each_other_and_of_order():
    ct_image = "1.2.840.10008.5.1.4.1.1.2"
    results = []
    for order in ((0, 1), (1, 0)):
        a = Analyzer(keep=True)
        policies = [_Grab(ct_image), _Grab(ct_image)]
        for i in order:
            a.collect(policies[i])
        analyze_source(CAPTURES / "store-concurrent.pcap", a)
        results.append([p.got for p in policies])
        sizes = {(x.id, t.request_frame): t.dataset_bytes for x in a.associations
                 for t in x.transactions if t.command == "C-STORE"}
        for p in policies:
            assert p.got and all(p.got[k] == sizes[k] for k in p.got)
    assert results[0] == results[1] and results[0][0] == results[0][1]


def test_nothing_collected_means_no_bytes_copied():
    """Without a policy for them (the rules' only read MPPS, commitment and query data sets;
    the study journey reads each C-STORE's attributes before Pixel Data and then says
    ``enough``), the parsers copy no more of the CT images than one segment of each; with one,
    they copy them all."""
    from dissectors.ul.events import PdvBytes

    for policy in (None, _Grab("1.2.840.10008.5.1.4.1.1.2")):
        a = Analyzer()
        copied = [0]

        def count(assoc, side, evs, copied=copied) -> None:
            copied[0] += sum(len(e.data) for e in evs if type(e) is PdvBytes)

        a.on_ul_events.append(count)
        if policy is not None:
            a.collect(policy)
        analyze_source(CAPTURES / "store-concurrent.pcap", a)
        total = sum(t.dataset_bytes for x in a.associations for t in x.transactions)
        assert total > 0
        stores = sum(1 for x in a.associations for t in x.transactions
                     if t.command == "C-STORE")
        if policy is None:
            assert copied[0] <= stores * 1500 < total // 10
        else:
            assert copied[0] == total


# -- protocol dispatch ------------------------------------------------------------------------

class _Hello(dispatch.FlowAnalyzer):
    """A toy protocol: the client says HELO, each side's bytes are counted."""

    protocol = "hello"
    instances: list[_Hello] = []

    def __init__(self, host, conn, side, midstream, frame, ts) -> None:
        self.counts = [0, 0]
        self.closed: str | None = None
        self.sinks = (_Count(self, 0), _Count(self, 1))
        _Hello.instances.append(self)

    def close(self, how, frame, ts):
        self.closed = how
        return None


class _Count:
    def __init__(self, owner: _Hello, side: int) -> None:
        self.owner, self.side = owner, side

    def feed(self, data, frame, ts) -> None:
        self.owner.counts[self.side] += len(data)

    def gap(self, missing, frame, ts) -> None:
        pass


def _hello_detect(head: bytes, side: int) -> bool | None:
    if len(head) < 4:
        return None
    return side == 0 and head[:4] == b"HELO"


def test_a_registered_protocol_gets_its_flows_and_dicom_still_works():
    proto = dispatch.register(dispatch.AppProtocol("hello", _hello_detect, _Hello,
                                                   detect_bytes=4))
    try:
        _Hello.instances.clear()
        conv = b.TcpConversation(server=("192.0.2.2", 7000)).handshake()
        conv.send(0, b"HELO world").send(1, b"hi there, you").close()
        other = b.TcpConversation(client=("192.0.2.9", 40000)).handshake()
        rq_data = b.associate_rq()
        other.send(0, rq_data).send(1, b.associate_ac()).send(0, b.release_rq())
        other.send(1, b.release_rp()).close()
        a = run(conv.frames + other.frames)
        assert len(_Hello.instances) == 1
        h = _Hello.instances[0]
        assert h.counts == [10, 13] and h.closed == "fin"
        assert len(a.associations) == 1 and a.associations[0].outcome == "released"
        assert a.stats.ignored_connections == 0
    finally:
        dispatch.PROTOCOLS.remove(proto)
    # without it, the same connection is ignored after one look
    a = run(conv.frames)
    assert a.stats.ignored_connections == 1 and not a.associations


def test_dispatch_choose_is_the_same_table_for_inner_streams():
    """What a TLS analyzer does with the plaintext: ask the table, then feed the analyzer."""
    head = b.associate_rq()
    assert dispatch.choose(head, 0).name == "dicom"
    assert dispatch.choose(head[:5], 0) is None  # show me more
    assert dispatch.choose(b"\x00" * 32, 0, final=True) is False
