"""What a run writes while it works: progress bars on a terminal, plain lines everywhere else.

On a terminal the launcher draws a bar of finished cells and each worker a bar of its cell's
updates. Where stderr is not a terminal (CI, ``nohup``, a log file) bars would write hundreds of
partial lines per cell, so there each cell event is one line instead (start, evaluation,
checkpoint from the worker; done, paused, failed from the launcher), plus a summary of the
cells every ``--summary-every`` and at the end. Workers inherit the launcher's stderr; each line
is written whole in one call, so lines of two workers never interleave within a line.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

SUMMARY_EVERY_S = 60.0  # --summary-every's default
TICK_S = 1.0  # how often a waiting launcher looks whether a summary is due


def interactive(stream: TextIO | None = None) -> bool:
    """Bars only where a person watches: a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def line(text: str) -> None:
    """One plain, timestamped log line on stderr, written in one call and flushed."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


def cell_event(label: str, text: str) -> None:
    line(f"[cell] {label}: {text}")


class RunProgress:
    """The launcher's view of the cells: a bar on a terminal; elsewhere a line per finished
    cell and a summary line every ``summary_every_s`` seconds and at the end."""

    def __init__(self, total: int, bars: bool, summary_every_s: float = SUMMARY_EVERY_S) -> None:
        from tqdm import tqdm

        self.total, self.bars, self.summary_every_s = total, bars, summary_every_s
        self.counts: dict[str, int] = {}
        self.started = self.last_summary = time.monotonic()
        self.bar = tqdm(total=total, desc="cells", unit="cell", position=0, disable=not bars)

    def outcome(self, outcome: Any) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        self.bar.update(1)
        if self.bars:
            if outcome.status == "failed":
                self.bar.write(f"[run] FAILED {outcome.cell.label}: {outcome.error}")
            return
        cell_event(outcome.cell.label, describe_outcome(outcome))

    def tick(self) -> None:
        """Called while the launcher waits: a summary line when one is due."""
        if not self.bars and time.monotonic() - self.last_summary >= self.summary_every_s:
            self.summary()

    def summary(self) -> None:
        self.last_summary = time.monotonic()
        finished = sum(self.counts.values())
        parts = ", ".join(f"{status} {n}" for status, n in sorted(self.counts.items()))
        elapsed = time.monotonic() - self.started
        line(
            f"[run] {finished} of {self.total} cells finished ({parts or 'none yet'}), "
            f"{self.total - finished} to go, {elapsed:.0f} s elapsed"
        )

    def close(self) -> None:
        self.bar.close()
        if not self.bars:
            self.summary()


def describe_outcome(outcome: Any) -> str:
    """``done after 4 updates: final 1.2, best 3.4`` and the like, for one line."""
    if outcome.status == "failed":
        return f"failed: {outcome.error}"
    if outcome.status == "paused":
        return f"paused at update {outcome.updates} (the time budget; the next run resumes it)"
    if outcome.status == "busy":
        return f"busy: {outcome.error}"
    return (
        f"{outcome.status} after {outcome.updates} updates: final {outcome.final_score:.1f}, "
        f"best {outcome.best_score:.1f} normalised"
    )
