"""dissectors._plain.Record: each class's ``__init__`` is compiled once per shape of fields and
renamed for the class (docs/performance.md, start-up), so classes sharing a shape must still
get their own field names, defaults and factories."""

from __future__ import annotations

import pytest

from dissectors._plain import Factory, Record


def _fresh() -> set[int]:
    return {1}


class _One(Record):
    a: int
    b: list = Factory(list)
    c: str = "one"
    d: set = Factory(_fresh)


class _Two(Record):  # the same shape as _One: one compiled code, other names
    w: int
    x: list = Factory(list)
    y: str = "two"
    z: set = Factory(set)


def test_same_shape_classes_keep_their_own_names_defaults_and_factories():
    one, two = _One(1), _Two(2)
    assert one == _One(a=1, b=[], c="one", d={1}) and one.d == {1}
    assert two == _Two(w=2, x=[], y="two", z=set())
    assert repr(two) == "_Two(w=2, x=[], y='two', z=set())"
    assert _One(1).b is not _One(1).b  # a fresh list per instance
    assert _Two(3, [7], "t", {9}).x == [7]
    assert type(_One.__init__).__name__ == "function"
    assert _One.__init__.__code__ is not _Two.__init__.__code__
    assert _One.__init__.__code__.co_varnames[:5] == ("self", "a", "b", "c", "d")
    assert _Two.__init__.__qualname__ == "_Two.__init__"


def test_missing_and_misordered_fields_are_refused():
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'w'"):
        _Two()
    with pytest.raises(TypeError, match="unexpected keyword argument 'a'"):
        _Two(a=1)

    class Bad(Record):
        a: int = 0
        b: int

    with pytest.raises(TypeError, match="field b without a default follows one with"):
        Bad(1, 2)
