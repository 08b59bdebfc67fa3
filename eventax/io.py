"""Save a network (architecture and parameters) to one file and load it back, without pickle."""

from __future__ import annotations

import json
import pickle
import zipfile
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _structure
from .evnn import EvNN
from .fixed_step import FixedStepNN

_FORMAT = "eventax-network/2"
_PICKLED = "eventax-network/1"  # (until 2026-12: the structure pickled in `tree.pkl`)


def save_evnn(path, model: EvNN | FixedStepNN, config: dict[str, Any] | None = None) -> None:
    """Write `model` (structure and every array) and an optional JSON `config` to `path`.

    The file is a zip archive of `meta.json` (the format, `config`, and the network's
    structure as JSON: each module's class as an import path `package.module:Class`,
    its hyperparameters by value, its arrays by shape and dtype) and `leaves.eqx`
    (the arrays, written by `equinox.tree_serialise_leaves`). A model class defined
    in a script is saved as `__main__:Class`: the loading script must define it too.
    """
    if not isinstance(model, (EvNN, FixedStepNN)):
        raise ValueError(f"`model` must be an EvNN or FixedStepNN; got {type(model).__name__}.")
    meta = {"format": _FORMAT, "config": config or {}, "network": _structure.describe(model)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", json.dumps(meta))
        with zf.open("leaves.eqx", "w") as f:
            eqx.tree_serialise_leaves(f, model)


def load_evnn(path, key=None, *, trust_pickle: bool = False) -> tuple[EvNN | FixedStepNN, dict[str, Any]]:
    """Load a network written by `save_evnn`; returns `(model, config)`.

    The classes and functions the file names are imported (`ImportError` naming any
    that cannot be); nothing is unpickled. Files of the older format, whose structure
    was pickled, load only with `trust_pickle=True`: do that for files you trust, and
    save them again to convert them. `key` is accepted for compatibility and unused.
    """
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        if meta.get("format") == _PICKLED:
            like = _pickled_skeleton(path, zf, trust_pickle)
        elif meta.get("format") == _FORMAT:
            like = _structure.rebuild(meta["network"])
        else:
            raise ValueError(f"{path!s} is not an eventax network file (format {meta.get('format')!r}).")
        if not isinstance(like, (EvNN, FixedStepNN)):
            raise ValueError(f"{path!s} holds a {type(like).__name__}, not an EvNN or FixedStepNN.")
        with zf.open("leaves.eqx") as f:
            model = eqx.tree_deserialise_leaves(f, like)
    return model, meta["config"]


def _pickled_skeleton(path, zf: zipfile.ZipFile, trust_pickle: bool):
    if not trust_pickle:
        raise ValueError(
            f"{path!s} is in the older network format ({_PICKLED}), whose structure is "
            "pickled: unpickling runs code from the file. If you trust it, load it with "
            "`load_evnn(path, trust_pickle=True)` and `save_evnn` it again to convert it."
        )
    skeleton = pickle.loads(zf.read("tree.pkl"))
    return jax.tree_util.tree_map(
        lambda s: jnp.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s,
        skeleton,
        is_leaf=lambda s: isinstance(s, jax.ShapeDtypeStruct),
    )
