"""NIR exchange (`eventax.nir`): round trips through a NIR file give the same network
and spike times, a graph written by hand with the `nir` API (as another library writes
it) simulates to a SciPy reference of NIR's own equations, and what NIR cannot express
is refused by name."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest
from helpers import EXACT, event_driven, input_rows, spike_error, spike_list

import eventax as ex
from eventax.nir import from_nir, to_nir

X = jnp.array([[1.0, 12.0], [4.0, np.inf], [9.0, 15.0], [2.0, np.inf]])  # (4 inputs, 2 slots)
T_END = 30.0


def _written_and_read(graph, tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return path


def test_lif_network_round_trip_through_a_file_gives_the_same_spikes(tmp_path):
    """Per-neuron time constants, biases, axonal delays and per-neuron synaptic delays:
    the network read back has the same weights and parameters, so the same spike
    times, bit for bit (weights pass as `tsyn * w` and back in float64)."""
    n, n_in = 9, 4
    delays = np.zeros((n + n_in, n))
    delays[:, :6] = np.linspace(0.0, 1.5, 6)  # the same for all synapses onto a neuron
    delays[:, 6:] = [0.3, 0.0, 2.0]
    net = ex.FFEvNN(
        [6, 3], n_in, ex.LIF, T_END, key=jax.random.PRNGKey(0), wmean=2.0, wlim=3.0,
        tsyn=np.linspace(3.0, 6.0, n), tmem=12.0, init_bias=np.linspace(-0.1, 0.3, n), vreset=-0.2,
        init_delays=delays, init_axonal_delays=np.linspace(0.0, 1.0, n + n_in), layer_capacity=200,
    )
    graph = to_nir(net)
    assert [type(graph.nodes[k]).__name__ for k in ("input", "axonal_delay_0", "linear_0", "delay_0", "cubalif_0")] \
        == ["Input", "Delay", "Linear", "Delay", "CubaLIF"]
    back = from_nir(_written_and_read(graph, tmp_path), T_END, layer_capacity=200)
    for name in ("weights", "ic"):
        np.testing.assert_array_equal(getattr(back.neuron_model, name), getattr(net.neuron_model, name))
    a, b = net.record(X, 200), back.record(X, 200)
    assert 10 < int(a.n_spikes) < 200
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neurons, b.neurons)


def test_lif_hidden_li_readout_round_trip_gives_the_same_states(tmp_path):
    net = ex.FFEvNN(
        [6, 3], 4, ex.MultiNeuronModel, T_END, key=jax.random.PRNGKey(1), neuron_models=[ex.LIF, ex.LI],
        neuron_model_kwargs=[dict(wmean=2.0, wlim=3.0, tsyn=4.0), dict(tmem=8.0)],
    )
    graph = to_nir(net)
    assert isinstance(graph.nodes["cubali_1"], nir.CubaLI)
    back = from_nir(_written_and_read(graph, tmp_path), T_END)
    times = jnp.array([5.0, 12.5, 29.0])
    states = np.asarray(net.state_at_t(X, times))
    assert np.abs(states[..., 0]).max() > 0.1  # the readout is driven
    np.testing.assert_array_equal(back.state_at_t(X, times), states)


def test_delta_synapse_neurons_are_nir_s_lif_and_li(tmp_path):
    """DeltaLIF hidden, DeltaLI readout <-> NIR LIF, LI: same states after a round trip;
    a hand-written NIR LI jumps by `r W / tau` and decays with `tau` (closed form, 1e-6)."""
    net = ex.FFEvNN(
        [6, 2], 4, ex.MultiNeuronModel, T_END, key=jax.random.PRNGKey(2), neuron_models=[ex.DeltaLIF, ex.DeltaLI],
        neuron_model_kwargs=[dict(tmem=np.linspace(5.0, 10.0, 6), bmean=0.3), dict(tmem=7.0)],
    )
    graph = to_nir(net)
    assert isinstance(graph.nodes["lif_0"], nir.LIF) and isinstance(graph.nodes["li_1"], nir.LI)
    back = from_nir(_written_and_read(graph, tmp_path), T_END)
    times = jnp.array([5.0, 12.5, 29.0])
    states = np.asarray(net.state_at_t(X, times))
    assert np.abs(states[..., 0]).max() > 0.1
    np.testing.assert_array_equal(back.state_at_t(X, times), states)

    li = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([1])}), "fc": nir.Linear(weight=np.array([[0.6]])),
               "li": nir.LI(tau=np.array([4.0]), r=np.array([2.0]), v_leak=np.array([0.0])),
               "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "fc"), ("fc", "li"), ("li", "out")],
    )
    v = np.asarray(from_nir(li, T_END).state_at_t(jnp.array([[1.0]]), jnp.array([3.0, 9.0])))[0, :, 0]
    np.testing.assert_allclose(v, 2.0 * 0.6 / 4.0 * np.exp(-np.array([2.0, 8.0]) / 4.0), atol=1e-6)


# ---------------------------------------------------------------- a graph written by hand

W0 = 4 * np.array([[3.0, 1.0, 0.0, 2.0], [1.5, 2.5, 1.0, -1.0], [0.5, 0.0, 4.0, 1.0]])  # (3 hidden, 4 inputs)
W1 = 4 * np.array([[2.0, 1.5, 0.5], [-1.0, 2.5, 3.0]])  # (2 outputs, 3 hidden)
HIDDEN = dict(tau_syn=np.array([2.0, 3.0, 2.5]), tau_mem=np.array([5.0, 6.0, 4.0]), r=np.array([1.0, 2.0, 0.5]),
              v_leak=np.array([0.0, 0.1, -0.2]), v_threshold=np.array([1.0, 1.2, 0.8]),
              v_reset=np.array([0.0, -0.3, 0.1]), w_in=np.array([1.0, 0.5, 2.0]))
OUTPUT = dict(tau_syn=np.array([3.0, 2.0]), tau_mem=np.array([5.0, 8.0]), r=np.array([1.5, 1.0]),
              v_leak=np.array([0.2, 0.0]), v_threshold=np.array([0.9, 1.0]), v_reset=np.array([0.0, 0.0]),
              w_in=np.array([1.0, 1.0]))


def hand_written_graph():
    """Input -> Affine (zero bias) -> CubaLIF -> Delay -> Affine -> CubaLIF -> Output,
    every parameter per neuron and away from 1 / 0, as a NIR exporter writes it."""
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([4])}),
            "fc1": nir.Affine(weight=W0, bias=np.zeros(3)),
            "lif1": nir.CubaLIF(**HIDDEN),
            "d1": nir.Delay(delay=np.array([0.5, 0.0, 1.0])),
            "fc2": nir.Affine(weight=W1, bias=np.zeros(2)),
            "lif2": nir.CubaLIF(**OUTPUT),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "d1"), ("d1", "fc2"), ("fc2", "lif2"), ("lif2", "out")],
    )


DELAYED = 1000  # reference rows of delayed hidden spikes


def nir_reference(x, t_end):
    """NIR's CubaLIF equations, simulated with SciPy: `tau_syn dI/dt = -I + w_in S`
    (an impulse `W[j, k]` raises `I_j` by `w_in_j W[j, k] / tau_syn_j`) and
    `tau_mem dv/dt = v_leak - v + r I`; the Delay node delays the hidden spikes."""
    p = {k: np.concatenate([HIDDEN[k], OUTPUT[k]]) for k in HIDDEN}
    n = 5
    jumps = np.zeros((n + 4, n))  # rows: neurons then inputs, as `input_rows`
    jumps[n:, :3] = W0.T * (p["w_in"][:3] / p["tau_syn"][:3])
    jumps[:3, 3:] = W1.T * (p["w_in"][3:] / p["tau_syn"][3:])
    delay = {0: 0.5, 1: 0.0, 2: 1.0}

    def rhs(y):
        v, i = y[:, 0], y[:, 1]
        return np.stack([(p["v_leak"] - v + p["r"] * i) / p["tau_mem"], -i / p["tau_syn"]], axis=1)

    def reset(y, j):
        y[j, 0] = p["v_reset"][j]

    def deliver(y, row):  # a neuron's own spike (row < n) arrives later, as row DELAYED + j
        if row >= n:
            y[:, 1] += jumps[row - DELAYED if row >= DELAYED else row]

    # Delayed hidden spikes are simulated as extra inputs: run, add each hidden spike's
    # delayed delivery, run again until nothing changes.
    inputs = input_rows(x, n)
    extra = []
    for _ in range(20):
        spikes = event_driven(rhs, lambda y: y[:, 0] - p["v_threshold"], reset, deliver,
                              np.zeros((n, 2)), inputs + extra, t_end)
        new = sorted((t + delay[j], DELAYED + j) for t, j in spikes if j < 3 and t + delay[j] < t_end)
        if new == extra:
            return spikes
        extra = new
    raise AssertionError("the delayed-spike iteration did not settle")


def test_a_hand_written_graph_simulates_to_nir_s_equations(x64):
    """Imported with near-exact float64 settings, the spike times of every neuron are
    within 1e-6 of the SciPy reference (rtol 1e-10: measured ~1e-9)."""
    net = from_nir(hand_written_graph(), T_END, **EXACT)
    x = np.asarray(X, np.float64)
    got = spike_list(net.record(jnp.asarray(x), 100))
    ref = nir_reference(x, T_END)
    assert {j for _, j in ref} == set(range(5)), "every neuron should spike"
    err = spike_error(got, ref)
    print(f"\n[NIR hand-written] {len(got)} spikes, max |t - t_scipy| = {err:.2e}")
    assert err < 1e-6


# ---------------------------------------------------------------- what does not map


def test_models_and_structures_nir_cannot_express_are_refused_by_name():
    with pytest.raises(ValueError, match="QIF has no NIR node"):
        to_nir(ex.FFEvNN([3], 2, ex.QIF, 10.0))
    with pytest.raises(ValueError, match="Refractory"):
        to_nir(ex.FFEvNN([3], 2, ex.Refractory(ex.LIF), 10.0, t_refrac=1.0))
    with pytest.raises(ValueError, match="layered feed-forward"):
        to_nir(ex.EvNN(ex.LIF, 4, 10.0, 2))
    with pytest.raises(ValueError, match="per-synapse delays"):
        to_nir(ex.FFEvNN([3], 2, ex.LIF, 10.0, dlim=2.0))


def test_nodes_without_an_eventax_form_are_refused_by_name():
    graph = hand_written_graph()
    graph.nodes["fc1"] = nir.Affine(weight=W0, bias=np.ones(3))
    with pytest.raises(ValueError, match="'fc1' has a non-zero bias"):
        from_nir(graph, T_END)
    graph = hand_written_graph()
    graph.nodes["lif1"] = nir.IF(r=np.ones(3), v_threshold=np.ones(3))
    with pytest.raises(ValueError, match=r"'lif1' \(IF\) has no eventax counterpart"):
        from_nir(graph, T_END)
    graph = hand_written_graph()
    graph.edges.append(("lif1", "out"))
    with pytest.raises(ValueError, match="only chains"):
        from_nir(graph, T_END)
