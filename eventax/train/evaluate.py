"""`eventax eval RUN_DIR`: the metrics of a run's best network on one split."""

from __future__ import annotations

from pathlib import Path

from ..config import load_config
from ..io import load_evnn
from ..data import load_dataset
from .build import build_loss
from .metrics import evaluate


def evaluate_run(run_dir, split: str = "test") -> dict:
    """Load `run_dir/best.evnn` and its `config.toml`; return the metrics on `split`."""
    run_dir = Path(run_dir)
    for f in ("config.toml", "best.evnn"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir / f} does not exist: is {run_dir} a finished run directory?")
    if split not in ("train", "validation", "test"):
        raise ValueError(f"`split` must be 'train', 'validation' or 'test'; got {split!r}.")
    cfg = load_config(run_dir / "config.toml")
    data = load_dataset(cfg.data)
    net, _ = load_evnn(run_dir / "best.evnn")
    loss, regs = build_loss(cfg.loss, cfg.model, data.start_channels, net)
    part = getattr(data, split)
    return {"run_dir": str(run_dir), "split": split,
            **evaluate(net, loss, regs, part.x, part.y, cfg.train.eval_batch_size)}
