"""From config sections to networks and losses."""

import jax
import numpy as np
import pytest

import eventax as ex
from eventax.config import ConfigError, from_dict
from eventax.train.build import build_loss, build_network, neuron_class


def test_neuron_names_and_wrappers():
    assert neuron_class("LIF") is ex.LIF
    assert neuron_class("AMOS(Refractory(QIF))") is ex.AMOS(ex.Refractory(ex.QIF))
    with pytest.raises(ConfigError, match="model.neuron.*LIFF"):
        neuron_class("LIFF")
    with pytest.raises(ConfigError, match="wrapper"):
        neuron_class("Slow(LIF)")


def test_neuron_import_paths():
    """A user's model by its import path `module:Class`, wrapped or not; a path that does
    not import, or names no `NeuronModel`, is a config error naming the key and the path."""
    assert neuron_class("eventax.neuron_models.lif:LIF") is ex.LIF
    assert neuron_class("AMOS( eventax.neuron_models:QIF )") is ex.AMOS(ex.QIF)
    with pytest.raises(ConfigError, match=r"model.output_neuron.*'no_such_module:AdEx'.*importable"):
        neuron_class("no_such_module:AdEx", "model.output_neuron")
    with pytest.raises(ConfigError, match=r"model.neuron.*'eventax:NoSuchModel'"):
        neuron_class("eventax:NoSuchModel")
    with pytest.raises(ConfigError, match=r"'eventax:EvNN'.*not a subclass of eventax.NeuronModel"):
        neuron_class("eventax:EvNN")


def test_recurrent_network_without_self_connections_and_li_outputs():
    cfg = from_dict({"model": {"neuron": "EGRU", "hidden": [4], "recurrent": True, "self_connections": False,
                               "output_neuron": "LI"}})
    net = build_network(cfg.model, 9, 2, jax.random.PRNGKey(0))
    w = np.asarray(net.wmask.value)
    assert w.shape == (6 + 9, 6)
    assert not w[np.arange(4), np.arange(4)].any() and w[:4, :4].sum() == 12  # recurrent, no diagonal
    assert w[:4, 4:].all() and not w[4:6].any() and w[6:, :4].all() and not w[6:, 4:].any()
    assert net.output_indices == (4, 5)
    assert [type(m).__name__ for m in net.neuron_model.submodels] == ["EGRU", "LI"]


def test_loss_params_are_checked_and_regularisers_bound_to_the_network():
    model = from_dict({"model": {"hidden": [3]}}).model
    with pytest.raises(ConfigError, match="loss.params.*TTFSLoss"):
        build_loss(from_dict({"loss": {"params": {"tau": 1.0}}}).loss, model)
    with pytest.raises(ConfigError, match="loss.kind"):
        build_loss(from_dict({"loss": {"kind": "mse"}}).loss, model)
    net = build_network(model, 5, 3, jax.random.PRNGKey(0))
    cfg = from_dict({"loss": {"kind": "max", "regularisers": [{"strength": 1.0, "upper": 0.5}]}})
    loss, (reg,) = build_loss(cfg.loss, model, net=net)
    x = np.asarray([[3.0], [10.0], [27.0], [20.0], [0.0]], np.float32)
    sim = loss.simulate(net, x, max_spikes=net.max_event_steps)
    assert np.isfinite(float(reg(sim)))
    assert isinstance(loss, ex.StateLoss) and loss.t_end == model.max_solver_time


def test_mode_switch_builds_the_same_network_in_the_surrogate_mode(tmp_path):
    """`model.mode = "surrogate"`: the same weights (same seed) wrapped in a FixedStepNN
    with the named surrogate; it saves and loads like an EvNN."""
    base = {"model": {"neuron": "AMOS(LIF)", "hidden": [6], "max_solver_time": 10.0}}
    event = build_network(from_dict(base).model, 5, 3, jax.random.PRNGKey(0))
    sg = dict(base["model"], mode="surrogate", dt=0.1, surrogate="Arctan",
              surrogate_params={"slope": 3.0}, reset="next_step")
    fixed = build_network(from_dict({"model": sg}).model, 5, 3, jax.random.PRNGKey(0))
    assert isinstance(fixed, ex.FixedStepNN) and isinstance(event, ex.EvNN)
    assert fixed.surrogate == ex.surrogates.Arctan(slope=3.0) and fixed.reset == "next_step"
    np.testing.assert_array_equal(fixed.neuron_model.weights, event.neuron_model.weights)
    ex.save_evnn(tmp_path / "n.evnn", fixed)
    loaded, _ = ex.load_evnn(tmp_path / "n.evnn")
    assert isinstance(loaded, ex.FixedStepNN) and loaded.dt == 0.1
    x = jax.numpy.asarray([[1.0], [2.0], [3.0], [0.5], [0.0]])
    np.testing.assert_array_equal(loaded.ttfs(x), fixed.ttfs(x))
    for bad, match in [({"mode": "surrogat"}, "model.mode"), ({"mode": "surrogate", "surrogate": "Nope"}, "model.surrogate"),
                       ({"mode": "surrogate", "dt": -1.0}, "dt")]:
        with pytest.raises(ConfigError, match=match):
            build_network(from_dict({"model": dict(base["model"], **bad)}).model, 5, 3, jax.random.PRNGKey(0))


def test_solver_settings_left_out_are_the_models_defaults():
    """A config without solver keys gets the model's `network_defaults` (mixed EIF/LI:
    the adaptive bundle); given keys replace the whole bundle; `rtol` needs `atol`."""
    import diffrax as dfx

    def net(**model):
        return build_network(from_dict({"model": dict(hidden=[4], **model)}).model, 5, 3, jax.random.PRNGKey(0))

    lif = net(neuron="LIF")
    assert isinstance(lif.solver, dfx.Tsit5) and lif.solver_stepsize == 1.0 and lif.engine == "auto"
    mixed = net(neuron="EIF", output_neuron="LI")
    assert mixed.stepsize_controller == dfx.PIDController(rtol=1e-6, atol=1e-6)
    assert isinstance(mixed.solver, dfx.Tsit5) and mixed.engine == "auto"
    given = net(neuron="EIF", solver="Dopri5", rtol=1e-4, atol=1e-7, solver_stepsize=0.2, engine="loop")
    assert isinstance(given.solver, dfx.Dopri5) and given.solver_stepsize == 0.2 and given.engine == "loop"
    assert given.stepsize_controller == dfx.PIDController(rtol=1e-4, atol=1e-7)
    euler = net(neuron="EIF", solver="Euler")
    assert isinstance(euler.stepsize_controller, dfx.ConstantStepSize) and euler.solver_stepsize == 0.01
    with pytest.raises(ConfigError, match="model.rtol"):
        net(neuron="LIF", rtol=1e-5)
    with pytest.raises(ConfigError, match="model.solver_stepsize.*a number"):
        from_dict({"model": {"solver_stepsize": "big"}})


def test_the_manhattan_rule_from_a_config_keeps_only_the_weights_in_range():
    """`optim.rule = "manhattan"`: every parameter steps by `lr` along its gradient's
    sign; with `weight_range` the weights stop at ±range, the bias does not."""
    import equinox as eqx

    from eventax.train.build import build_optimiser

    cfg = from_dict({"optim": {"rule": "manhattan", "lr": 0.3, "weight_range": 0.5}})
    net = ex.FFEvNN([4, 2], 3, ex.LIF, 20.0, key=jax.random.PRNGKey(0), wmean=3.0, wlim=2.0, init_bias=0.9)
    params = eqx.filter(net, eqx.is_inexact_array)
    grads = jax.tree.map(lambda p: -np.ones_like(p), params)  # every entry moves up by 0.3
    opt = build_optimiser(cfg.optim)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = eqx.apply_updates(net, updates)
    w, w0 = np.asarray(new.neuron_model.weights), np.asarray(net.neuron_model.weights)
    real = np.asarray(net.wmask.value)
    np.testing.assert_allclose(w[real], np.minimum(w0[real] + 0.3, 0.5), rtol=1e-6)
    np.testing.assert_allclose(new.neuron_model.ic, 1.2, rtol=1e-6)
    with pytest.raises(ConfigError, match="optim.rule"):
        build_optimiser(from_dict({"optim": {"rule": "sgd"}}).optim)
