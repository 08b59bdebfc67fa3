"""A one-line progress bar on stderr (redrawn in place on a terminal, else printed per epoch)."""

from __future__ import annotations

import sys
import time


class Progress:
    """`update(i, samples, **figures)` after batch `i` of `total`; `close()` ends the line.

    `compiles`: the first batch compiles the step. Then "compiling" is printed before
    it, its time is reported as the compile time, and the rate counts the later
    batches only (with a single batch, the whole epoch).
    """

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None, width: int = 24,
                 compiles: bool = False):
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.compiles = compiles
        self.first: tuple[float, int] | None = None  # (elapsed, samples) after the compiling batch
        self.start = time.perf_counter()
        self.line = ""
        if enabled and compiles:
            self.stream.write(f"{label}: compiling the training step (first batch)...\n")
            self.stream.flush()

    def update(self, done: int, samples: int, **figures) -> None:
        elapsed = time.perf_counter() - self.start
        filled = round(self.width * done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        figs = "  ".join(f"{k} {v:.4f}" for k, v in figures.items())
        if self.compiles and self.first is None:
            self.first = (elapsed, samples)
        t0, s0 = self.first if self.compiles and samples > self.first[1] else (0.0, 0)
        rate = (samples - s0) / (elapsed - t0) if elapsed > t0 else 0.0
        compiled = f"  (compiled in {self.first[0]:.0f} s)" if self.compiles else ""
        self.line = f"{self.label} [{bar}] {done}/{self.total}  {figs}  {rate:.0f} samples/s{compiled}"
        if self.live:
            self.stream.write("\r" + self.line)
            self.stream.flush()

    def close(self, suffix: str = "") -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.live else "") + self.line + suffix + "\n")
        self.stream.flush()
