"""Several seeds of one config, trained at once, and their summary table."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Config
from .trainer import read_history, train_seeds


def sweep(cfg: Config, seeds, out_dir, *, resume: bool = False, progress: bool = True) -> str:
    """Train `cfg` for each seed (vmapped, one compilation) in `out_dir/seed<s>`;
    write `summary.md` / `summary.csv` (mean ± std and median over seeds) and
    return the Markdown table."""
    from .plots import summary_table, sweep_curves

    out_dir = Path(out_dir)
    results = train_seeds(
        cfg, seeds, out_dir, [out_dir / f"seed{s}" for s in seeds], resume=resume, progress=progress
    )
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    markdown, csv_text = summary_table(results)
    (out_dir / "summary.md").write_text(markdown)
    (out_dir / "summary.csv").write_text(csv_text)
    if cfg.train.plots:
        sweep_curves({s: read_history(out_dir / f"seed{s}") for s in seeds}, out_dir / "val_accuracy.png")
    return markdown
