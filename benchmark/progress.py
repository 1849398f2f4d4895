"""What a run writes while it works: progress bars on a terminal, plain lines everywhere else.

On a terminal the launcher draws a bar of finished cells and each worker a bar of its cell's
updates. Where stderr is not a terminal (CI, ``nohup``, a log file) bars would write hundreds of
partial lines per cell, so there each cell event is one line instead (start, evaluation,
checkpoint from the worker; done, paused, failed from the launcher), plus a summary of the
cells every ``--summary-every`` and at the end, and from each worker a line of its cell's updates
and pace every ``UPDATE_LINE_EVERY_S`` (:class:`UpdateLines`). Workers inherit the launcher's stderr; each line
is written whole in one call, so lines of two workers never interleave within a line.
Dataset builds report the same way (:func:`bar_or_lines`): a bar on a terminal, else a line per
tenth of the frames.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

SUMMARY_EVERY_S = 60.0  # --summary-every's default
TICK_S = 1.0  # how often a waiting launcher looks whether a summary is due
# A cell's own progress line between its events, off a terminal: a pixel cell evaluates every
# 2,500 updates, about an hour apart on a CPU core, and a log that says nothing for an hour
# cannot tell a slow cell from a stuck one.
UPDATE_LINE_EVERY_S = 300.0


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


class UpdateLines:
    """Off a terminal, a training cell's progress between its events: every ``every_s`` seconds
    one line with the update reached, the pace since the previous line and the time left at
    that pace (the bar on a terminal shows the same)."""

    def __init__(self, label: str, total: int, start: int, every_s: float, enabled: bool) -> None:
        self.label, self.total, self.every_s, self.enabled = label, total, every_s, enabled
        self.last_time, self.last_updates = time.monotonic(), start

    def update(self, updates: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last_time < self.every_s or updates <= self.last_updates:
            return
        pace = (now - self.last_time) / (updates - self.last_updates)
        left_min = (self.total - updates) * pace / 60
        cell_event(
            self.label,
            f"update {updates:,} of {self.total:,} ({100 * updates / self.total:.0f}%), "
            f"{pace:.3g} s an update since the last line, ~{left_min:.0f} min to go at that pace",
        )
        self.last_time, self.last_updates = now, updates


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


class Progress(Protocol):
    """What a build reports its progress to: a tqdm bar or :class:`LineProgress`."""

    def update(self, n: int = 1) -> Any: ...


class LineProgress:
    """A progress bar's ``update`` and ``close`` as plain lines, for where a bar would write
    hundreds of partial lines (a log file, CI): a line each time another tenth of ``total`` is
    done (every ``every`` units while the total is unknown), and a last one at the end."""

    STEPS = 10  # lines over a known total

    def __init__(self, total: int | None, desc: str, unit: str, every: int = 10_000) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every = max(1, total // self.STEPS) if total else every
        self.done = self.next_line = 0
        self.started = time.monotonic()
        line(f"[{desc}] started" + (f": {total:,} {unit}s to go" if total else ""))

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.next_line + self.every:
            self.next_line = self.done - self.done % self.every
            line(f"[{self.desc}] {self._count()}, {self._elapsed()}")

    def _count(self) -> str:
        if not self.total:
            return f"{self.done:,} {self.unit}s"
        return f"{self.done:,} of {self.total:,} {self.unit}s ({100 * self.done / self.total:.0f}%)"

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s elapsed"

    def close(self) -> None:
        line(f"[{self.desc}] finished: {self._count()}, {self._elapsed()}")

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:  # an error speaks for itself: no "finished" line under it
            self.close()


def bar_or_lines(total: int | None, desc: str, unit: str, enabled: bool = True) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` elsewhere, nothing when not ``enabled``
    (both have ``update``, ``close`` and ``with``)."""
    from tqdm import tqdm

    if enabled and not interactive():
        return LineProgress(total, desc, unit)
    return tqdm(total=total, unit=unit, desc=desc, disable=not enabled)


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
