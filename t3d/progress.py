"""Training progress: a rich bar on a terminal, a plain line every 10% elsewhere (logs, CI, batch)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    def __init__(self, total: int, start: int, console: Console | None = None):
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

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.total, completed=self.start, loss=float("nan"), rate=0.0)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def advance(self, step: int, loss: float) -> None:
        rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.task, completed=step, loss=loss, rate=rate)
        if not self.interactive and (step >= self.next_report or step == self.total):
            eta = (self.total - step) / max(rate, 1e-9)
            self.console.print(f"step {step}/{self.total}  loss {loss:.4g}  {rate:.1f} it/s  ETA {eta:.0f}s",
                               highlight=False)
            self.next_report = step + max(self.total // 10, 1)
