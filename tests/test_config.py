"""The strict config loader and the shipped configs."""

import functools
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from eventax.config import Config, ConfigError, dumps, from_dict, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.toml"))


@functools.cache
def _schema(path: Path) -> type[Config]:
    """The config class a shipped config is read with: the learning-rule study's own
    (`experiments/rules.py`, with its `[rules]` section) for `configs/rules/`."""
    if path.parent.name != "rules":
        return Config
    if str(REPO / "experiments") not in sys.path:
        sys.path.insert(0, str(REPO / "experiments"))  # (as when the script runs: its folder first)
    spec = importlib.util.spec_from_file_location("rules_study", REPO / "experiments" / "rules.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module.RulesStudy


def test_defaults_and_nested_values():
    cfg = from_dict({"name": "x", "model": {"hidden": [10, 5], "params": {"tmem": 20}}})
    assert cfg.model.hidden == (10, 5)
    assert cfg.model.params == {"tmem": 20}
    assert cfg.optim == Config().optim


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"model": {"hiden": [1]}}, ["model.hiden", "model.hidden"]),
        ({"optimizer": {}}, ["optimizer", "optim"]),
        ({"optim": {"lr": "fast"}}, ["optim.lr", "a number"]),
        ({"optim": {"epochs": 1.5}}, ["optim.epochs", "an integer"]),
        ({"optim": {"epochs": True}}, ["optim.epochs", "an integer"]),
        ({"model": {"hidden": [1, "a"]}}, ["model.hidden[1]"]),
        ({"model": "LIF"}, ["model", "table"]),
        ({"train": {"plots": 1}}, ["train.plots", "true or false"]),
        ({"optim": {"batch_size": -5}}, ["optim.batch_size", ">= 1", "-5"]),
        ({"optim": {"lr": 0.0}}, ["optim.lr", "> 0"]),
        ({"model": {"rtol": -1e-6}}, ["model.rtol", "> 0"]),
        ({"data": {"train_size": -1}}, ["data.train_size", ">= 0"]),
    ],
)
def test_rejects_unknown_keys_and_wrong_types(raw, words):
    with pytest.raises(ConfigError) as e:
        from_dict(raw)
    for w in words:
        assert w in str(e.value)


def test_values_at_their_bounds_load():
    cfg = from_dict({"optim": {"batch_size": 1, "epochs": 0, "weight_decay": 0.0, "clip_norm": 0.0}})
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.weight_decay, cfg.optim.clip_norm) == (1, 0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="clip_norm"):  # (0 turns clipping off; below is an error)
        from_dict({"optim": {"clip_norm": -1.0}})


def test_a_model_keyword_the_model_refuses_is_a_config_error_with_its_closest_match():
    import jax

    from eventax.train import build_network

    cfg = from_dict({"model": {"neuron": "QIF", "params": {"tmen": 5.0}}})
    with pytest.raises(ConfigError, match=r"model.*QIF.*`tmen` \(did you mean `tmem`\?\)"):
        build_network(cfg.model, 5, 3, jax.random.PRNGKey(0))


def test_overrides_are_toml_values(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "a"\n[model]\nneuron = "LIF"\n')
    cfg = load_config(p, ["model.hidden=[7]", "optim.lr=0.01", "model.neuron=QIF", "loss.params={tau0 = 1.0}"])
    assert cfg.model.hidden == (7,) and cfg.optim.lr == 0.01 and cfg.model.neuron == "QIF"
    assert cfg.loss.params == {"tau0": 1.0}
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(p, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(p, ["optim.lr"])


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_dumps_round_trips():
    cfg = from_dict({"name": "r", "loss": {"kind": "max", "regularisers": [{"upper": float("inf"), "strength": 1.0}]}})
    assert from_dict(tomllib.loads(dumps(cfg))) == cfg  # optional keys unset (None) included
    cfg = from_dict({"name": "r", "model": {"rtol": 1e-5, "atol": 1e-7, "solver_stepsize": 0.5}})
    assert from_dict(tomllib.loads(dumps(cfg))) == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load_and_build(path):
    """Every shipped config passes the strict loader and names models and losses that exist."""
    from eventax.train.build import build_loss, build_optimiser, neuron_class

    cfg = load_config(path, schema=_schema(path))
    assert cfg.name and cfg.name != Config().name
    neuron_class(cfg.model.neuron)
    if cfg.model.output_neuron:
        neuron_class(cfg.model.output_neuron)
    build_loss(cfg.loss, cfg.model, (6, 7, 8) if cfg.data.name == "xor" else None)
    build_optimiser(cfg.optim)


def test_a_section_only_an_experiment_knows_needs_its_schema():
    path = REPO / "configs" / "rules" / "randman.toml"
    with pytest.raises(ConfigError, match="unknown key `rules`"):
        load_config(path)
    assert load_config(path, schema=_schema(path)).rules.names


def test_expected_experiments_have_configs():
    names = {f"{p.parent.name}/{p.stem}" for p in CONFIGS}
    for model in ("lif", "qif", "eif", "izhikevich"):
        for loss in ("ttfs", "max", "integral", "exp_integral"):
            assert f"yinyang/{model}_{loss}" in names
    assert {"yinyang/dendritic_7_ttfs", "yinyang/dendritic_14_ttfs", "mnist/lif_exp_integral",
            "xor/egru_exp_integral"} <= names
