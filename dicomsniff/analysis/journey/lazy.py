"""The study journey's stand-in: the engine attaches it on every run, and it makes the real
:class:`~.core.Journey` (importing the journey's modules) only when the capture needs one.

Most captures carry no study traffic (echo, queries, retrieves), and every start used to pay
for importing and setting up the journey. :class:`LazyJourney` takes the journey's places on
the engine's hooks at once, so the order the subscribers run in is the one an eager journey
has, and wakes the real journey at the first event it would act on:

* a negotiation answered with a storage, worklist, MPPS, Storage Commitment, IAN, UPS or
  print context (:func:`.kinds.kind`), or an association picked up mid-stream (its collection
  policy's ``contexts``, ``observes`` and ``dataset``);
* a transaction the journey files (:func:`.kinds.files`: a C-STORE, a worklist, MPPS,
  commitment, IAN, UPS or print one);
* a STOW-RS request or response on an HTTP connection (the DICOMweb session's hooks);
* the ``-j`` merge handing it a data set or a cut C-STORE (``on_data``, ``on_cut``), any
  other attribute read (``studies``, ``printing``, ``ups``, counters: what the ``studies``
  command and the tests read) or set (``max_studies``).

Before it wakes, every event the stand-in lets pass is one the real journey would have left
without a trace (no state, no finding), so a journey made later is the journey an eager one
would be at that moment: the records are the same, byte for byte
(tests/test_lazy_journey.py). ``on_study`` is one list, shared with the real journey.
"""

from __future__ import annotations

from typing import Any

from ..collect import CollectionPolicy
from .kinds import files, kind

# attributes of the stand-in itself; any other is the real journey's (made if need be)
_OWN = frozenset({"on_study", "finish", "on_data", "on_cut", "attach", "real",
                  "on_transaction", "on_association"})


class LazyJourney:
    """A :class:`~.core.Journey` made on first need; see the module doc."""

    def __init__(self, **options: Any) -> None:
        d = self.__dict__  # plain writes: __setattr__ hands unknown names to the real one
        d["_options"] = options  # Journey(**options) when made
        d["_analyzer"] = None
        d["_journey"] = None
        d["_stores"] = None  # the real journey's WebStores, made with it when attached
        d["on_study"] = []
        d["_policy"] = StandInPolicy(self)
        d["_web"] = StandInStores(self)

    # -- the real journey -------------------------------------------------------------------
    @property
    def awake(self) -> bool:
        """Whether the real journey has been made."""
        return self._journey is not None

    def real(self) -> Any:
        """The real :class:`~.core.Journey`, made now if need be (following the analyzer the
        stand-in was attached to, through the stand-in's places on its hooks)."""
        j = self._journey
        if j is None:
            from .core import Journey

            j = Journey(**self._options)
            j.on_study = self.on_study
            if self._analyzer is not None:
                j.follow(self._analyzer)
                from .web import WebStores

                self.__dict__["_stores"] = WebStores(j)
            self.__dict__["_journey"] = j
        return j

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            self.__dict__[name] = value
        else:
            setattr(self.real(), name, value)

    # -- wiring: the places an eager journey takes --------------------------------------------
    def attach(self, analyzer: Any) -> LazyJourney:
        """Take the journey's places on ``analyzer``'s hooks, its collection policies and its
        DICOMweb session's hooks (see :meth:`.core.Journey.attach`)."""
        self.__dict__["_analyzer"] = analyzer
        analyzer.on_transaction.append(self.on_transaction)
        analyzer.on_association.append(self.on_association)
        analyzer.collect(self._policy)
        from ..http import session

        web, stores = session(analyzer), self._web
        web.instance_policies.append(stores)
        web.on_transaction.append(stores.transaction)
        web.on_connection.append(stores.connection)
        return self

    def on_transaction(self, a: Any, t: Any) -> None:
        j = self._journey
        if j is None:
            if not files(t.command, t.sop_class):
                return  # the real journey would take nothing and file nothing
            j = self.real()
        j.on_transaction(a, t)

    def on_association(self, a: Any) -> None:
        j = self._journey
        if j is not None:  # asleep: no study, no pending data set, nothing to end
            j.on_association(a)

    def on_data(self, *args: Any) -> None:
        self.real().on_data(*args)

    def on_cut(self, *args: Any) -> None:
        self.real().on_cut(*args)

    def finish(self) -> None:
        j = self._journey
        if j is not None:
            j.finish()


class StandInPolicy(CollectionPolicy):
    """The journey's place among the collection policies: wakes it for an association it
    reads, then hands every question to its :class:`~.collect.JourneyPolicy`."""

    __slots__ = ("lazy",)

    def __init__(self, lazy: LazyJourney) -> None:
        self.lazy = lazy

    def _real(self) -> Any:
        j = self.lazy._journey
        return (j if j is not None else self.lazy.real()).policy

    def contexts(self, association: Any, side: int) -> Any:
        if self.lazy._journey is None:
            if not association.midstream and not any(
                    c.accepted and kind(c.abstract_syntax) is not None
                    for c in association.contexts.values()):
                return ()
        return self._real().contexts(association, side)

    def observes(self, association: Any) -> bool:
        if self.lazy._journey is None and not association.midstream:
            return False
        return self._real().observes(association)

    def command(self, association: Any, side: int, message: Any) -> None:
        if self.lazy._journey is not None:  # observed associations woke it
            self.lazy._journey.policy.command(association, side, message)

    def dataset(self, association: Any, side: int, message: Any) -> Any:
        if self.lazy._journey is None and not association.midstream:
            c = association.contexts.get(message.context_id)
            if c is None or kind(c.abstract_syntax) is None:
                return None
        return self._real().dataset(association, side, message)


class StandInStores:
    """The journey's place on the DICOMweb session (an instance policy and two hooks): wakes
    it at the first STOW-RS, then hands everything to its :class:`~.web.WebStores`."""

    __slots__ = ("lazy",)

    def __init__(self, lazy: LazyJourney) -> None:
        self.lazy = lazy

    def _real(self) -> Any:
        if self.lazy._stores is None:
            self.lazy.real()
        return self.lazy._stores

    @property
    def heads(self) -> dict:
        """The real :class:`~.web.WebStores`' headers waiting for their response (the -j
        merge fills them)."""
        return self._real().heads

    def instance(self, connection: Any, transaction: Any, side: int, part: int | None) -> Any:
        if self.lazy._stores is None and (side != 0 or transaction.command != "STOW-RS"):
            return None
        return self._real().instance(connection, transaction, side, part)

    def transaction(self, connection: Any, txn: Any) -> None:
        if self.lazy._stores is None and txn.command != "STOW-RS":
            return
        self._real().transaction(connection, txn)

    def connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        s = self.lazy._stores
        if s is not None:  # asleep: no study carried by this connection
            s.connection(connection, transactions, findings)

