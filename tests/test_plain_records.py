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


def test_the_packages_record_shapes_come_compiled_and_up_to_date():
    """dissectors/_shapes.py holds every shape of the package's Record classes (regenerate it
    with tools/record_shapes.py), each the very code a compile of its shape gives; a class of
    such a shape is made without compiling anything."""
    import subprocess
    import sys
    from pathlib import Path

    from dissectors import _plain
    from dissectors._shapes import SHAPES

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, str(root / "tools" / "record_shapes.py"), "--check"],
                       cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "dissectors/_shapes.py is out of date: run tools/record_shapes.py"
    assert len(SHAPES) >= 10
    for src, code in SHAPES.items():
        made: dict = {}
        exec(src, made)  # noqa: S102 - the table's own keys
        fresh = made["__init__"].__code__
        assert (code.co_code, code.co_consts, code.co_names, code.co_varnames,
                code.co_argcount) == (fresh.co_code, fresh.co_consts, fresh.co_names,
                                      fresh.co_varnames, fresh.co_argcount)

    from dicomsniff.model import Side

    _plain._shape(next(iter(SHAPES)))  # the table loaded
    compiled: list = []
    real_exec = exec

    def counting(*args, **kw):
        compiled.append(args[0])
        return real_exec(*args, **kw)

    import builtins

    builtins.exec = counting  # type: ignore[assignment]
    try:
        src = _plain.init_source("Side", Side._fields, Side._defaults)[0]
        _plain._SHAPES.pop(src, None)
        _plain._SHAPES.update({src: SHAPES[src]})
        init = _plain._make_init("Side", Side._fields, Side._defaults)
    finally:
        builtins.exec = real_exec  # type: ignore[assignment]
    assert compiled == [] and init.__code__.co_name == "__init__"
    assert init.__code__.co_varnames[:3] == ("self", *Side._fields[:2])
