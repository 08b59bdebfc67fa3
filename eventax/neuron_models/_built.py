"""Classes made by a call (`Refractory(LIF)`, `with_trainable(LIF, ("tmem",))`), cached.

A *class builder* is a function, marked with `@class_builder`, that returns
`built_class(builder, args, base, name, namespace)`: a subclass of `base` made once per
`args` (so `Refractory(LIF) is Refractory(LIF)`, and jit caches and `isinstance` stay
valid). `built_by(cls)` gives back `(builder, args)`: `save_evnn` stores a class that
has no import path as that call, and `load_evnn` calls it again, after checking that
the function it names is a class builder.
"""

from __future__ import annotations

from collections.abc import Callable

_BUILDERS: set[Callable] = set()
_BUILT: dict[tuple, type] = {}
_BUILT_BY: dict[type, tuple[Callable, tuple]] = {}


def class_builder(fn: Callable[..., type]) -> Callable[..., type]:
    """Mark `fn` as a class builder (module docstring)."""
    _BUILDERS.add(fn)
    return fn


def is_class_builder(fn) -> bool:
    return fn in _BUILDERS


def built_class(builder: Callable, args: tuple, base: type, name: str, namespace: Callable[[], dict]) -> type:
    """The subclass `name` of `base` with the namespace `namespace()`, made once per
    `(builder, args)`."""
    key = (builder, args)
    if key not in _BUILT:
        body = namespace()
        body.setdefault("__module__", builder.__module__)
        body["__qualname__"] = name
        cls = type(base)(name, (base,), body)
        _BUILT_BY[cls] = key
        _BUILT[key] = cls
    return _BUILT[key]


def built_by(cls: type) -> tuple[Callable, tuple] | None:
    """`(builder, args)` if `builder(*args)` made `cls`, else `None` (a subclass of a
    built class is a class of its own)."""
    return _BUILT_BY.get(cls)
