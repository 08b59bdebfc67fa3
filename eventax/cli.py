"""The `eventax` command line: `train`, `eval` and `sweep` runs of a config file.

    eventax train CONFIG [--set KEY=VALUE ...] [--out RUN_DIR] [--resume]
    eventax eval RUN_DIR [--split test|validation|train]
    eventax sweep CONFIG --seeds 0 1 2 3 4 [--set ...] [--out SWEEP_DIR] [--resume]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .config import ConfigError, dumps, load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eventax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one config")
    p.add_argument("config")
    p.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys (repeatable: every --set counts)")
    p.add_argument("--out", help="run directory (default runs/<name>/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("eval", help="evaluate the best network of a run directory")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])

    p = sub.add_parser("sweep", help="train one config for several seeds and tabulate")
    p.add_argument("config")
    p.add_argument("--seeds", nargs="+", type=int, required=True)
    p.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="sweep directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true")

    args = parser.parse_args(argv)
    # (a config's `model.neuron = "my_neurons:AdEx"` names a module beside it, as `python -m` finds it)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return {"train": _train, "eval": _eval, "sweep": _sweep}[args.command](args)
    except (ConfigError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"eventax {args.command}: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # (a check inside a compiled simulation: its message alone)
        from ._network import check_message

        message = check_message(e)
        if message is None:
            raise
        print(f"eventax {args.command}: {message}", file=sys.stderr)
        return 2


def _train(args) -> int:
    from .train import initialize_distributed, train

    initialize_distributed()
    cfg = load_config(args.config, args.set)
    out = Path(args.out or f"runs/{cfg.name}/seed{cfg.train.seed}")
    if args.resume:
        cfg = _resumed(cfg, out, out, args)
    results = train(cfg, out, resume=args.resume, progress=not args.quiet)
    print(json.dumps({"run_dir": str(out), **results}, indent=2))
    plots = f", {out / 'plots'}/" if cfg.train.plots else ""
    print(f"wrote {out}/: metrics.csv, best.evnn, results.json{plots}", file=sys.stderr)
    return 0


def _resumed(given, out: Path, seed_dir: Path, args):
    """The config a run in `out` started with (`seed_dir/config.toml`), with the
    overrides; says so where the given config file differs from it."""
    if not (out / "checkpoint.zip").is_file():
        raise ConfigError(f"nothing to resume in {out} (no checkpoint.zip there); start the run without --resume.")
    cfg = load_config(seed_dir / "config.toml", args.set)
    same_seed = dataclasses.replace(given, train=dataclasses.replace(given.train, seed=cfg.train.seed))
    if dumps(same_seed) != dumps(cfg):
        print(f"eventax {args.command}: {args.config} differs from the run's own config; "
              f"resuming with {seed_dir / 'config.toml'} (and the --set overrides).", file=sys.stderr)
    return cfg


def _eval(args) -> int:
    from .train import evaluate_run

    metrics = evaluate_run(args.run_dir, args.split)
    print(json.dumps(metrics, indent=2))
    return 0


def _sweep(args) -> int:
    from .train import initialize_distributed, sweep

    initialize_distributed()
    cfg = load_config(args.config, args.set)
    out = Path(args.out or f"runs/{cfg.name}")
    if args.resume:  # (the config the sweep started with; each seed's differs only in its seed)
        cfg = _resumed(cfg, out, out / f"seed{args.seeds[0]}", args)
    table = sweep(cfg, args.seeds, out, resume=args.resume, progress=not args.quiet)
    print(table)
    return 0
