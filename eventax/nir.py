"""Exchange networks with the Neuromorphic Intermediate Representation (NIR, `nir` on PyPI).

NIR is continuous-time, like eventax, and its spikes are Dirac impulses. A current-based
NIR neuron (`CubaLIF`, `CubaLI`) reads

    tau_syn dI/dt = -I + w_in S(t),      tau_mem dv/dt = (v_leak - v) + r I,

where `S` is what the preceding `Affine`/`Linear` node puts out, `W s(t)` for incoming
spike trains `s`. An incoming spike of weight `W[j, k]` thus raises `I_j` by
`w_in_j W[j, k] / tau_syn_j`. eventax's `LIF` / `LI` (`tmem dv/dt = -v + i + ic`,
`tsyn di/dt = -i`, a spike adds `weights[k, j]` to `i_j`) are the same neuron with

    i = r I,   tsyn = tau_syn,   tmem = tau_mem,   ic = v_leak,
    weights[k, j] = r_j w_in_j W[j, k] / tau_syn_j,
    thresh = v_threshold,   vreset = v_reset,

so `to_nir` writes `Linear` weights `W[j, k] = tsyn_j weights[k, j]` with `r = w_in = 1`.
NIR's synapse-less `LIF` / `LI` (`tau dv/dt = (v_leak - v) + r I`: a spike raises `v` by
`r W / tau`) are `DeltaLIF` / `DeltaLI` with `tmem = tau`, `weights[k, j] = r_j W[j, k] / tau_j`.
(Discrete-time readers of NIR that add `W` to `I` per spike see currents `tau_syn`
times larger: that is their reading of the impulse, not NIR's.) A `Delay` before an
`Affine`/`Linear` delays each presynaptic row (eventax's `axonal_delays`); one after it
delays each postsynaptic neuron (eventax's `delays`, the same for all of its synapses).

Supported: layered feed-forward networks (`FFEvNN`, or an `EvNN` with that structure)
of `LIF`, `LI`, `DeltaLIF` and `DeltaLI` neurons, one model per layer (`MultiNeuronModel`
for mixed layers).
Anything else (other neuron models, recurrent connections, per-synapse delays, an
`Affine` bias, other NIR nodes) raises a `ValueError` naming it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:
    import nir
except ImportError as e:  # (an optional dependency)
    raise ImportError("eventax.nir needs the `nir` package: pip install 'eventax[nir]' (or nir>=1.0.8).") from e

from .evnn import EvNN, FFEvNN
from .neuron_models import LI, LIF, DeltaLI, DeltaLIF, MultiNeuronModel


class _Kind(NamedTuple):
    """How one eventax model and one NIR node correspond: eventax parameter -> NIR
    field, and the field holding the time constant that scales the weights."""

    model: type
    node: type
    fields: dict[str, str]
    tau: str


_KINDS = [
    _Kind(LIF, nir.CubaLIF, dict(tsyn="tau_syn", tmem="tau_mem", ic="v_leak", thresh="v_threshold",
                                 vreset="v_reset"), "tau_syn"),
    _Kind(LI, nir.CubaLI, dict(tsyn="tau_syn", tmem="tau_mem", ic="v_leak"), "tau_syn"),
    _Kind(DeltaLIF, nir.LIF, dict(tmem="tau", ic="v_leak", thresh="v_threshold", vreset="v_reset"), "tau"),
    _Kind(DeltaLI, nir.LI, dict(tmem="tau", ic="v_leak"), "tau"),
]
_NODES = {kind.node: kind for kind in _KINDS}
_METHODS = ("init_state", "dynamics", "spike_condition", "input_spike", "input_spikes", "reset_spiked", "observe")


# ---------------------------------------------------------------------- eventax -> NIR


def to_nir(net: EvNN) -> nir.NIRGraph:
    """The NIR graph of a layered feed-forward network of `LIF`, `LI`, `DeltaLIF`,
    `DeltaLI` neurons: `input -> [axonal_delay] -> linear -> [delay] -> cubalif -> ...
    -> output` (node names: the NIR type in lower case and the layer number). Write it
    with `nir.write(path, graph)`."""
    layers = _layers(net)
    n = net.n_neurons
    w = np.asarray(_global_weights(net.neuron_model, n), np.float64)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([net.in_size])})}
    edges: list[tuple[str, str]] = []

    def append(name: str, node: nir.NIRNode) -> None:  # (after the node appended last)
        edges.append((list(nodes)[-1], name))
        nodes[name] = node

    pre = np.arange(n, n + net.in_size)
    for number, (a, b) in enumerate(layers):
        post = np.arange(a, b)
        kind, p = _population(net.neuron_model, post)
        if net.axonal_delays is not None and np.any(np.asarray(net.axonal_delays)[pre] != 0):
            append(f"axonal_delay_{number}", nir.Delay(np.asarray(net.axonal_delays, np.float64)[pre]))
        append(f"linear_{number}", nir.Linear(weight=w[np.ix_(pre, post)].T * p[kind.tau][:, None]))
        delay = _synaptic_delay(net, pre, post)
        if delay is not None:
            append(f"delay_{number}", nir.Delay(delay))
        append(f"{kind.node.__name__.lower()}_{number}", kind.node(**p, r=np.ones_like(p["v_leak"])))
        pre = post
    append("output", nir.Output(output_type={"output": np.array([len(pre)])}))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _layers(net: EvNN) -> list[tuple[int, int]]:
    """`[(first, stop)]` neuron ranges of the layers, if `net` is layered feed-forward."""
    mask = np.asarray(net.wmask.value, bool)
    n = net.n_neurons
    bounds, senders = [0], mask[n:]  # each layer: the neurons that the previous one reaches
    while bounds[-1] < n:
        start, receivers = bounds[-1], np.flatnonzero(senders.any(axis=0))
        if not np.array_equal(receivers, np.arange(start, start + max(len(receivers), 1))):
            break
        bounds.append(start + len(receivers))
        senders = mask[start : bounds[-1]]
    expected = np.zeros_like(mask)
    if len(bounds) > 1:
        expected[n:, : bounds[1]] = True
    for a, b, c in zip(bounds[:-2], bounds[1:-1], bounds[2:]):
        expected[a:b, b:c] = True
    last = tuple(range(bounds[-2], bounds[-1])) if len(bounds) > 1 else ()
    if bounds[-1] != n or not np.array_equal(mask, expected) or tuple(net.output_indices) != last:
        raise ValueError(
            "to_nir: the network must be layered feed-forward (as FFEvNN builds it: every input "
            "to every first-layer neuron, each layer to the next, the last layer the outputs); "
            "recurrent or sparse connectivity has no NIR form here."
        )
    return list(zip(bounds[:-1], bounds[1:]))


def _global_weights(model, n: int) -> np.ndarray:
    if isinstance(model, MultiNeuronModel):
        w = np.zeros((model.submodels[0].weights.shape[0], n))
        for sub, idx in zip(model.submodels, model.members):
            w[:, list(idx)] = np.asarray(_checked(sub).weights)
        return w
    return np.asarray(_checked(model).weights)


def _checked(model):
    """`model`, if it behaves as one of `_KINDS`' models (no method of theirs replaced)."""
    if _kind_of(model) is None:
        raise ValueError(
            f"to_nir: {type(model).__name__} has no NIR node; only LIF (-> CubaLIF), LI (-> CubaLI), "
            f"DeltaLIF (-> LIF) and DeltaLI (-> LI) neurons map (NIR cannot express QIF, EIF, "
            f"Izhikevich, adaptive, dendritic or wrapped models)."
        )
    return model


def _kind_of(model) -> _Kind | None:
    for kind in _KINDS:
        if isinstance(model, kind.model) and all(
            inspect.getattr_static(type(model), m, None) is inspect.getattr_static(kind.model, m, None)
            for m in _METHODS
        ):
            return kind
    return None


def _population(model, neurons: np.ndarray) -> tuple[_Kind, dict[str, np.ndarray]]:
    """The kind and the NIR node's per-neuron parameters of `neurons` (one model's)."""
    if isinstance(model, MultiNeuronModel):
        for sub, idx in zip(model.submodels, model.members):
            if set(neurons.tolist()) <= set(idx):
                local = np.searchsorted(np.asarray(idx), neurons)
                return _population(sub, local)
        raise ValueError("to_nir: a layer must consist of neurons of one model of the MultiNeuronModel.")
    model = _checked(model)
    size = model.ic.shape[0]

    def per_neuron(value):
        return np.broadcast_to(np.asarray(model.param(value), np.float64), (size,))[neurons]

    kind = _kind_of(model)
    p = {field: per_neuron(getattr(model, name)) for name, field in kind.fields.items() if name != "ic"}
    p["v_leak"] = np.asarray(model.ic, np.float64)[neurons]
    if kind.node in (nir.CubaLIF, nir.CubaLI):
        p["w_in"] = np.ones_like(p["v_leak"])
    return kind, p


def _synaptic_delay(net: EvNN, pre, post) -> np.ndarray | None:
    if net.delays is None:
        return None
    block = np.asarray(net.delays, np.float64)[np.ix_(pre, post)]
    if not np.all(block == block[:1]):
        raise ValueError(
            "to_nir: synaptic `delays` must be the same for all synapses onto a neuron (a NIR Delay "
            "after a Linear delays each postsynaptic neuron); per-synapse delays have no NIR form."
        )
    return block[0] if np.any(block != 0) else None


# ---------------------------------------------------------------------- NIR -> eventax


def from_nir(graph: nir.NIRGraph | str | Path, max_solver_time: float, **network_kwargs: Any) -> FFEvNN:
    """An `FFEvNN` from a NIR graph (or a file written by `nir.write`) that is a chain
    `Input -> ([Delay] -> Affine|Linear -> [Delay] -> CubaLIF|CubaLI|LIF|LI)+ -> Output`.

    `max_solver_time` is the trial length (NIR graphs carry none); `network_kwargs`
    go to `FFEvNN` (solver settings, `dtype`, ...). Raises `ValueError` naming any node
    or parameter that has no eventax form."""
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    chain = _chain(graph)
    in_size = _size(graph.nodes[chain[0]].input_type["input"])
    layers, pending = [], {}
    for name in chain[1:-1]:
        node = graph.nodes[name]
        if isinstance(node, nir.Delay):
            pending["axonal" if "weight" not in pending else "synaptic"] = np.asarray(node.delay, np.float64)
        elif isinstance(node, (nir.Affine, nir.Linear)):
            if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
                raise ValueError(
                    f"from_nir: Affine node {name!r} has a non-zero bias: a constant input to the synapse "
                    f"(tau_syn dI/dt = -I + b) has no eventax form; give the neurons `v_leak` instead."
                )
            pending["weight"] = np.asarray(node.weight, np.float64)
        elif type(node) in _NODES:
            if "weight" not in pending:
                raise ValueError(f"from_nir: neuron node {name!r} must follow an Affine or Linear node.")
            layers.append((name, node, pending))
            pending = {}
        else:
            raise ValueError(
                f"from_nir: node {name!r} ({type(node).__name__}) has no eventax counterpart here; "
                f"supported: Input, Output, Affine, Linear, Delay, CubaLIF, CubaLI, LIF, LI."
            )
    if pending or not layers:
        raise ValueError("from_nir: the chain must end with a neuron node (CubaLIF, CubaLI, LIF, LI) before its Output.")
    return _build(layers, in_size, max_solver_time, network_kwargs)


def _chain(graph: nir.NIRGraph) -> list[str]:
    """The node names from the one `Input` to the one `Output`, if the graph is a chain."""
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"from_nir: the graph must have one Input node; it has {len(inputs)}.")
    successors: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        successors[a].append(b)
    chain = inputs
    while not isinstance(graph.nodes[chain[-1]], nir.Output):
        nxt = successors[chain[-1]]
        if len(nxt) != 1 or nxt[0] in chain:
            raise ValueError(
                f"from_nir: node {chain[-1]!r} has {len(nxt)} successors ({nxt}); only chains "
                f"(layered feed-forward networks without branches or recurrence) are supported."
            )
        chain.append(nxt[0])
    if len(chain) != len(graph.nodes):
        raise ValueError(f"from_nir: nodes outside the Input-Output chain: {sorted(set(graph.nodes) - set(chain))}.")
    return chain


def _size(shape) -> int:
    shape = np.atleast_1d(np.asarray(shape))
    if shape.size != 1:
        raise ValueError(f"from_nir: only flat (1-D) signals are supported; got shape {tuple(shape)}.")
    return int(shape[0])


def _build(layers, in_size: int, max_solver_time: float, network_kwargs: dict) -> FFEvNN:
    sizes = [np.asarray(node.v_leak).shape[0] for _, node, _ in layers]
    n = sum(sizes)
    starts = np.cumsum([0] + sizes)
    weights = np.zeros((n + in_size, n))
    axonal, synaptic = np.zeros(n + in_size), np.zeros((n + in_size, n))
    kinds, params = [], []
    for number, (name, node, p) in enumerate(layers):
        pre = np.arange(n, n + in_size) if number == 0 else np.arange(starts[number - 1], starts[number])
        post = np.arange(starts[number], starts[number + 1])
        w = p["weight"]
        if w.shape != (len(post), len(pre)):
            raise ValueError(
                f"from_nir: the weights before {name!r} have shape {w.shape}; expected {(len(post), len(pre))}."
            )
        kind = _NODES[type(node)]
        scale = np.asarray(node.r) * np.asarray(getattr(node, "w_in", 1.0)) / np.asarray(getattr(node, kind.tau))
        weights[np.ix_(pre, post)] = (w * scale[:, None]).T
        if "axonal" in p:
            axonal[pre] = p["axonal"]
        if "synaptic" in p:
            synaptic[np.ix_(pre, post)] = p["synaptic"][None, :]
        kinds.append(kind.model)
        params.append({name: np.asarray(getattr(node, field), np.float64) for name, field in kind.fields.items()})
    delays = {}
    if np.any(axonal != 0):
        delays["init_axonal_delays"] = axonal
    if np.any(synaptic != 0):
        delays["init_delays"] = synaptic
    return _network(kinds, params, sizes, weights, in_size, max_solver_time, {**delays, **network_kwargs})


def _network(kinds, params, sizes, weights, in_size, max_solver_time, kwargs) -> FFEvNN:
    if len(set(kinds)) == 1:
        merged = {k: np.concatenate([p[k] for p in params]) for k in params[0]}
        return FFEvNN(sizes, in_size, kinds[0], max_solver_time, init_weights=weights,
                      **_neuron_keywords(merged), **kwargs)
    starts = np.cumsum([0] + sizes)
    per_layer = [
        dict(init_weights=weights[:, a:b], **_neuron_keywords(p))
        for a, b, p in zip(starts[:-1], starts[1:], params)
    ]
    return FFEvNN(sizes, in_size, MultiNeuronModel, max_solver_time, neuron_models=kinds,
                  neuron_model_kwargs=per_layer, **kwargs)


def _neuron_keywords(p: dict[str, np.ndarray]) -> dict[str, Any]:
    """Model keywords: a parameter equal on all neurons as a scalar, else per neuron."""
    return {("init_bias" if k == "ic" else k): (float(v[0]) if np.all(v == v[0]) else v) for k, v in p.items()}
