"""A pytree of Equinox modules as JSON: classes by import path, arrays by shape.

`describe(tree)` gives a JSON-able description of `tree`'s structure: every
`eqx.Module` as its class's import path (`"package.module:Class"`) and its fields,
every array leaf as its shape and dtype, every static value (numbers, strings,
dtypes, `Constant`s, classes, functions) by value or by import path. `rebuild(spec)`
gives back a tree of the same structure whose array leaves are placeholders, ready
for `equinox.tree_deserialise_leaves`. Nothing is unpickled: loading imports the
named classes and functions, and instantiates only `eqx.Module` subclasses (the way
JAX's own unflattening does, field by field, so a module's state is what was saved
even where it was edited after construction).

A class without an import path that a class builder made (`Refractory(LIF)`,
`with_trainable(AdEx, ("tau",))`) is described as that call; see `neuron_models._built`.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import types
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .neuron_models._built import built_by, is_class_builder
from .neuron_models.base import Constant

Spec = Any  # a JSON value


def describe(tree, where: str = "net", static: bool = False) -> Spec:
    """The JSON description of `tree` (module docstring); `where` names it in errors.
    `static`: arrays by value (as a module's static fields), not as placeholders."""
    return _Describe().value(tree, where, static=static)


def rebuild(spec: Spec) -> Any:
    """A tree with the structure `spec` describes; array leaves are zero placeholders."""
    return _rebuild(spec)


class _Describe:
    def value(self, x, where: str, static: bool) -> Spec:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, eqx.Module):
            return self.module(x, where)
        if isinstance(x, np.generic) and static:
            return {"number": x.item(), "dtype": str(x.dtype)}
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            return _inline(x) if static else {"leaf": _leaf_kind(x), "shape": list(np.shape(x)), "dtype": str(x.dtype)}
        if isinstance(x, Constant):
            return {"constant": _inline(x.value)}
        if isinstance(x, np.dtype) or _is_scalar_type(x):
            return {"numpy_dtype": str(np.dtype(x))}
        if isinstance(x, tuple) and hasattr(type(x), "_fields"):
            items = [self.value(v, f"{where}.{k}", static) for k, v in zip(type(x)._fields, x)]
            return {"namedtuple": _class_path(type(x), where), "items": items}
        if isinstance(x, (list, tuple)):
            items = [self.value(v, f"{where}[{i}]", static) for i, v in enumerate(x)]
            return items if isinstance(x, list) else {"tuple": items}
        if isinstance(x, dict):
            return {"dict": [[self.value(k, f"{where} key", True), self.value(v, f"{where}[{k!r}]", static)]
                             for k, v in x.items()]}
        if isinstance(x, type):
            return {"class": _class_path(x, where)}
        if isinstance(x, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or _is_jax_function(x):
            return {"function": _path(x, where, "function")}
        raise ValueError(
            f"Cannot save `{where}`: a {type(x).__module__}.{type(x).__qualname__} is neither an "
            "array, an Equinox module, a number, a string, a dtype, a class nor a function."
        )

    def module(self, m: eqx.Module, where: str) -> Spec:
        # (as Equinox flattens: the fields set on the instance, not those the class supplies:
        # a property, or a default that `__init__` left in place)
        fields = {}
        for f in dataclasses.fields(m):
            if f.name in m.__dict__:
                fields[f.name] = self.value(m.__dict__[f.name], f"{where}.{f.name}", f.metadata.get("static", False))
        return {"module": _class_path(type(m), where), "fields": fields}


def _is_scalar_type(x) -> bool:
    """`jnp.float32` and its kind: not a class, but a dtype by another name."""
    return type(x).__name__ == "_ScalarMeta" and hasattr(x, "dtype")


def _is_jax_function(x) -> bool:
    # (jax.numpy functions are plain functions, or jit-wrapped ones)
    return callable(x) and hasattr(x, "__wrapped__") and hasattr(x, "__qualname__")


def _leaf_kind(x) -> str:
    return "jax" if isinstance(x, jax.Array) else "numpy" if isinstance(x, np.ndarray) else "scalar"


def _inline(x) -> Spec:
    x = np.asarray(x)
    return {"array": base64.b64encode(np.ascontiguousarray(x).tobytes()).decode(),
            "shape": list(x.shape), "dtype": str(x.dtype)}


def _class_path(cls: type, where: str) -> Spec:
    built = built_by(cls)
    if built is None:
        return _path(cls, where, "class")
    try:
        return _path(cls, where, "class")  # (`PLIF`: built, and importable by name)
    except ValueError:
        builder, args = built
        return {"builder": _path(builder, where, "function"), "args": _Describe().value(args, where, True)}


def _path(obj, where: str, kind: str) -> str:
    """The shortest import path of `obj` (`diffrax:Tsit5`, not `diffrax._solver.tsit5:Tsit5`)."""
    parts = obj.__module__.split(".")
    for n in range(1, len(parts) + 1):
        path = f"{'.'.join(parts[:n])}:{obj.__qualname__}"
        try:
            if import_path(path) is obj:
                return path
        except ImportError:
            pass
    raise ValueError(
        f"Cannot save `{where}`: its {kind} {obj.__qualname__!r} is not importable as "
        f"{obj.__module__}:{obj.__qualname__}; define it at the top level of a module."
    )


def import_path(path: str):
    """The object at `"package.module:Qual.Name"`; `ImportError` naming it if missing."""
    module_name, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ImportError(
            f"{path!r} cannot be imported ({err}); make its module importable (the `eventax` "
            "command also looks in the current directory) or import it first (a class defined "
            "in a script is found under '__main__' when that script runs)."
        ) from None
    return obj


def _rebuild_class(spec: Spec) -> type:
    if isinstance(spec, dict):
        builder = import_path(spec["builder"])
        if not is_class_builder(builder):
            raise ValueError(f"{spec['builder']!r} is not a class builder; the file cannot name it.")
        return builder(*_rebuild(spec["args"]))
    cls = import_path(spec)
    if not isinstance(cls, type):
        raise ValueError(f"{spec!r} is not a class.")
    return cls


def _rebuild(spec: Spec):
    if spec is None or isinstance(spec, (bool, int, float, str)):
        return spec
    if isinstance(spec, list):
        return [_rebuild(v) for v in spec]
    tags = set(spec) & _TAGS.keys()
    if len(tags) != 1:
        raise ValueError(f"Not a network description: {str(spec)[:80]}")
    return _TAGS[tags.pop()](spec)


def _module(spec):
    cls = _rebuild_class(spec["module"])
    if not (isinstance(cls, type) and issubclass(cls, eqx.Module)):
        raise ValueError(f"{spec['module']!r} is not an Equinox module.")
    names = {f.name for f in dataclasses.fields(cls)}
    # (a property, or a default an `__init__` left in place, lives on the class)
    supplied = {name for name in names if hasattr(cls, name)}
    if not (set(spec["fields"]) <= names and names - supplied <= set(spec["fields"])):
        raise ValueError(
            f"{cls.__module__}:{cls.__qualname__} has the fields {sorted(names - supplied)}, the file "
            f"{sorted(spec['fields'])}: it was saved with another version of that class."
        )
    obj = object.__new__(cls)
    for name, value in spec["fields"].items():
        object.__setattr__(obj, name, _rebuild(value))
    return obj


def _leaf(spec):
    if spec["leaf"] == "scalar":
        return np.dtype(spec["dtype"]).type(0)
    zeros = np.zeros(spec["shape"], spec["dtype"])
    return jax.numpy.asarray(zeros) if spec["leaf"] == "jax" else zeros


def _array(spec) -> np.ndarray:
    data = base64.b64decode(spec["array"])
    return np.frombuffer(data, spec["dtype"]).reshape(spec["shape"]).copy()


def _namedtuple(spec):
    cls = _rebuild_class(spec["namedtuple"])
    if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise ValueError(f"{spec['namedtuple']!r} is not a NamedTuple.")
    return cls(*(_rebuild(v) for v in spec["items"]))


def _function(spec):
    fn = import_path(spec["function"])
    if not callable(fn) or isinstance(fn, type):
        raise ValueError(f"{spec['function']!r} is not a function.")
    return fn


_TAGS = {
    "module": _module,
    "leaf": _leaf,
    "array": _array,
    "constant": lambda s: Constant(_array(s["constant"])),
    "numpy_dtype": lambda s: np.dtype(s["numpy_dtype"]),
    "number": lambda s: np.dtype(s["dtype"]).type(s["number"]),
    "namedtuple": _namedtuple,
    "tuple": lambda s: tuple(_rebuild(v) for v in s["tuple"]),
    "dict": lambda s: {_rebuild(k): _rebuild(v) for k, v in s["dict"]},
    "class": lambda s: _rebuild_class(s["class"]),
    "function": _function,
}
