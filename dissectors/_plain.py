"""A base for plain slotted record classes: ``__init__``, ``__repr__`` and ``__eq__`` as a
dataclass has, each field written once.

The event and model classes are not ``@dataclass``: creating some 35 dataclasses (and
importing ``dataclasses``, which imports ``inspect``) cost about 20 ms of every start, a tenth
of the time dicomsniff needs for a small capture. A :class:`Record` subclass declares its
fields as annotations, with defaults where it wants them::

    class RoleSelection(Record):
        sop_class: str
        scu_role: int = 0
        roles: list[str] = Factory(list)  # a fresh list per instance

and gets ``__slots__``, ``_fields`` and an ``__init__`` taking the fields in that order (a
default of ``Factory(f)`` makes the parameter default None and calls ``f()`` for it). A class
that writes its own ``__init__`` keeps it; one that sets ``_fields`` itself is left alone.
"""

from __future__ import annotations

from typing import Any


class Factory:
    """A field default made fresh for each instance (``Factory(list)``, ``Factory(dict)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Any) -> None:
        self.make = make


# Compiled __init__ code by shape, the fields named f0, f1, ...: classes of one shape (the
# PDUs' and PDVs' events, most of them) share one compile and get their names by
# ``code.replace``; a compile costs ~80 us, a third of a start's Record classes share a shape.
_SHAPES: dict[str, Any] = {}


def _make_init(cls_name: str, fields: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    params, body, env, argdefs, names = [], [], {}, [], {}
    for i, name in enumerate(fields):
        f = f"f{i}"
        names[f] = name
        if name in defaults:
            d = defaults[name]
            if isinstance(d, Factory):
                # list and dict as literals: a call per instance costs more (events, messages)
                make = {list: "[]", dict: "{}"}.get(d.make)
                if make is None:
                    make = f"_m{i}()"
                    names[f"_m{i}"] = f"_make_{name}"
                    env[f"_make_{name}"] = d.make
                argdefs.append(None)
                params.append(f)
                body.append(f"    self.{f} = {make} if {f} is None else {f}")
                continue
            argdefs.append(d)
        elif argdefs:
            raise TypeError(f"{cls_name}: field {name} without a default follows one with")
        params.append(f)
        body.append(f"    self.{f} = {f}")
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    code = _SHAPES.get(src)
    if code is None:
        shape: dict[str, Any] = {}
        exec(src, shape)  # noqa: S102 - placeholders; the names are checked to be identifiers
        code = _SHAPES[src] = shape["__init__"].__code__
    code = code.replace(co_varnames=("self", *fields),
                        co_names=tuple(names[n] for n in code.co_names))
    if hasattr(code, "co_qualname"):  # Python 3.11: the name in a TypeError's message
        code = code.replace(co_qualname=f"{cls_name}.__init__")
    init = type(_first_init)(code, env, "__init__", tuple(argdefs) or None)
    init.__qualname__ = f"{cls_name}.__init__"
    return init


class _RecordMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any):
        if "_fields" in ns or not bases:  # the base, or a class that lists its fields itself
            return super().__new__(mcs, name, bases, ns, **kw)
        inherited: tuple[str, ...] = ()
        defaults: dict[str, Any] = {}
        for b in reversed(bases):
            inherited += tuple(f for f in getattr(b, "_fields", ()) if f not in inherited)
            defaults.update(getattr(b, "_defaults", {}))
        own = tuple(n for n in ns.get("__annotations__", {})
                    if not n.startswith("_") and n not in inherited)
        for n in own:
            if not n.isidentifier():
                raise TypeError(f"{name}: bad field name {n!r}")
            if n in ns:
                defaults[n] = ns.pop(n)
        ns["__slots__"] = own
        ns["_fields"] = inherited + own
        ns["_defaults"] = defaults
        cls = super().__new__(mcs, name, bases, ns, **kw)
        if "__init__" not in ns:
            cls.__init__ = _first_init  # type: ignore[misc]
        return cls


def _first_init(self: Any, *args: Any, **kw: Any) -> None:
    """Compile the class's ``__init__`` when it is first used (start-up pays only for the
    classes a run makes), then become it."""
    cls = type(self)
    owner = next(c for c in cls.__mro__ if c.__dict__.get("__init__") is _first_init)
    owner.__init__ = _make_init(owner.__name__, owner._fields, owner._defaults)
    owner.__init__(self, *args, **kw)


class Record(metaclass=_RecordMeta):
    """Field-wise repr and equality over ``_fields``; unhashable, like a mutable dataclass."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self._fields
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]
