"""Training progress: a rich bar on a terminal; elsewhere (logs, CI, batch) a plain line every 10%
of the run and at least every 30 seconds, so a long run never goes quiet."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


QUIET_LIMIT_S = 30.0


class TrainingProgress:
    def __init__(self, total: int, start: int, console: Console | None = None, quiet_limit: float = QUIET_LIMIT_S):
        self.console = console or Console(stderr=True)
        self.total, self.start = total, start
        self.interactive = self.console.is_terminal
        self.bar = Progress(
            TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(),
            TextColumn("loss {task.fields[loss]:.4g}"), TextColumn("{task.fields[rate]:.1f} it/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, disable=not self.interactive)
        self.task = None
        self.t0 = time.perf_counter()
        self.next_report = start + max(total // 10, 1)
        self.quiet_limit = quiet_limit
        self.last_line = self.t0
        self.current = start

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.total, completed=self.start, loss=float("nan"), rate=0.0)
        self.t0 = self.last_line = time.perf_counter()
        if not self.interactive:  # a step longer than the limit still gets its line
            self._stop = threading.Event()
            threading.Thread(target=self._heartbeat, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if not self.interactive:
            self._stop.set()
        return self.bar.__exit__(*exc)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            now = time.perf_counter()
            if now - self.last_line >= self.quiet_limit:
                self.last_line = now
                self.console.print(f"step {self.current + 1}/{self.total} in progress "
                                   f"({now - self.t0:.0f}s since the start)", highlight=False)

    def advance(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        self.current = step
        rate = (step - self.start) / max(now - self.t0, 1e-9)
        self.bar.update(self.task, completed=step, loss=loss, rate=rate)
        due = step >= self.next_report or step == self.total or now - self.last_line >= self.quiet_limit
        if not self.interactive and due:
            eta = (self.total - step) / max(rate, 1e-9)
            self.console.print(f"step {step}/{self.total}  loss {loss:.4g}  {rate:.1f} it/s  ETA {eta:.0f}s",
                               highlight=False)
            if step >= self.next_report:
                self.next_report = step + max(self.total // 10, 1)
            self.last_line = now
