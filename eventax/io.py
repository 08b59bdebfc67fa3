"""Save a network (architecture and parameters) to one file and load it back."""

from __future__ import annotations

import json
import pickle
import zipfile
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .evnn import EvNN
from .fixed_step import FixedStepNN

_FORMAT = "eventax-network/1"


def save_evnn(path, model: EvNN, config: dict[str, Any] | None = None) -> None:
    """Write `model` (structure + every array) and an optional JSON `config` to `path`.

    The file is a zip archive: `meta.json` (format, JSON config), `tree.pkl`
    (the module structure with arrays replaced by placeholders) and `leaves.eqx`
    (the arrays, via `equinox.tree_serialise_leaves`). Model classes must be
    importable when loading.
    """
    if not isinstance(model, (EvNN, FixedStepNN)):
        raise ValueError(f"`model` must be an EvNN or FixedStepNN; got {type(model).__name__}.")
    skeleton = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype) if eqx.is_array(x) else x, model
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format": _FORMAT, "config": config or {}}))
        zf.writestr("tree.pkl", pickle.dumps(skeleton))
        with zf.open("leaves.eqx", "w") as f:
            eqx.tree_serialise_leaves(f, model)


def load_evnn(path, key=None) -> tuple[EvNN, dict[str, Any]]:
    """Load a network written by `save_evnn`; returns `(model, config)`.

    Only load files you trust: the structure is stored with `pickle`.
    `key` is accepted for compatibility and unused.
    """
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path!s} is not an eventax network file (format {meta.get('format')!r}).")
        skeleton = pickle.loads(zf.read("tree.pkl"))
        like = jax.tree_util.tree_map(
            lambda s: jnp.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s,
            skeleton,
            is_leaf=lambda s: isinstance(s, jax.ShapeDtypeStruct),
        )
        with zf.open("leaves.eqx") as f:
            model = eqx.tree_deserialise_leaves(f, like)
    return model, meta["config"]
