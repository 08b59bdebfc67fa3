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
    A `config` that is not plain JSON (arrays, PRNG keys, dtypes, classes, as eventax
    0.1.0's scripts pass the constructor's keywords) is described the same way.
    """
    if not isinstance(model, (EvNN, FixedStepNN)):
        raise ValueError(f"`model` must be an EvNN or FixedStepNN; got {type(model).__name__}.")
    meta = {"format": _FORMAT, "network": _structure.describe(model), **_config_entry(config or {})}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", json.dumps(meta))
        with zf.open("leaves.eqx", "w") as f:
            eqx.tree_serialise_leaves(f, model)


def load_evnn(
    path, key=None, *, neuron_model: type | None = None, trust_pickle: bool = False
) -> tuple[EvNN | FixedStepNN, dict[str, Any]]:
    """Load a network written by `save_evnn`; returns `(model, config)`.

    The classes and functions the file names are imported (`ImportError` naming any
    that cannot be); nothing is unpickled. Files of the older format, whose structure
    was pickled, load only with `trust_pickle=True`: do that for files you trust, and
    save them again to convert them. `key` is accepted for compatibility and unused;
    `neuron_model` (eventax 0.1.0's argument), if given, must be the saved model's class.
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
    saved = type(getattr(model, "neuron_model", None))
    if neuron_model is not None and saved is not neuron_model:
        raise ValueError(f"{path!s} holds a {saved.__name__} network, not the given `neuron_model` "
                         f"{getattr(neuron_model, '__name__', neuron_model)}.")
    config = _structure.rebuild(meta["config_spec"]) if "config_spec" in meta else meta["config"]
    return model, config


def _config_entry(config: dict[str, Any]) -> dict[str, Any]:
    """`{"config": config}` if it is plain JSON, else its description `{"config_spec": ...}`."""
    try:
        json.dumps(config, allow_nan=True)
        return {"config": config}
    except TypeError:
        return {"config_spec": _structure.describe(config, "config", static=True)}


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
