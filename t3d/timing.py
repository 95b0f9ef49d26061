"""Wall time per part of a training step, for the benchmark; a no-op unless enabled.

The training loop and the guidance wrap their parts in `timer.part(name)`; `make bench` sets an
enabled StepTimer on a Trainer and reads the totals, so it times the real step, not a copy.
Parts may nest ("guidance" contains "encode", "prior", ...): each name accumulates its own time.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator


class StepTimer:
    def __init__(self, device=None, enabled: bool = True):
        self.device, self.enabled = device, enabled
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _sync(self) -> None:
        if self.device is not None and getattr(self.device, "type", str(self.device)) == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start
            self.counts[name] = self.counts.get(name, 0) + 1

    def reset(self) -> None:
        self.totals.clear()
        self.counts.clear()


NULL_TIMER = StepTimer(enabled=False)
