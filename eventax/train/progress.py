"""A one-line progress bar on stderr (redrawn in place on a terminal, else printed per epoch)."""

from __future__ import annotations

import sys
import time


class Progress:
    """`update(i, **figures)` after batch `i` of `total`; `close()` ends the line."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None, width: int = 24):
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.start = time.perf_counter()
        self.line = ""

    def update(self, done: int, samples: int, **figures) -> None:
        elapsed = time.perf_counter() - self.start
        filled = round(self.width * done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        figs = "  ".join(f"{k} {v:.4f}" for k, v in figures.items())
        rate = samples / elapsed if elapsed > 0 else 0.0
        self.line = f"{self.label} [{bar}] {done}/{self.total}  {figs}  {rate:.0f} samples/s"
        if self.live:
            self.stream.write("\r" + self.line)
            self.stream.flush()

    def close(self, suffix: str = "") -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.live else "") + self.line + suffix + "\n")
        self.stream.flush()
