"""Atomic training checkpoints: parameters, optimiser state and the run's history.

One zip file: `meta.json` (epoch, best epoch, history, format) and
`state.eqx` (the arrays of `(params, opt_state)` via
`equinox.tree_serialise_leaves`). It is written to a temporary file in the
same directory and moved over the old one with `os.replace`, so a run killed
at any moment leaves either the previous or the new checkpoint, never half a
file. Loading needs a pytree of the same structure (a freshly built network and
optimiser state from the same config).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import equinox as eqx

_FORMAT = "eventax-checkpoint/1"


def save_checkpoint(path, state, meta: dict[str, Any]) -> None:
    """Write `state` (any pytree of arrays) and JSON-able `meta` to `path` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
            zf.writestr("meta.json", json.dumps({"format": _FORMAT, **meta}))
            with zf.open("state.eqx", "w") as f:
                eqx.tree_serialise_leaves(f, state)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path, like) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint into the structure of `like`; returns `(state, meta)`."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        if meta.pop("format", None) != _FORMAT:
            raise ValueError(f"{path!s} is not an eventax checkpoint.")
        with zf.open("state.eqx") as f:
            state = eqx.tree_deserialise_leaves(f, like)
    return state, meta
