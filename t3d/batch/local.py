"""The local executor: a pool of N threads, each running one prompt's child process at a time.

The threads only wait on their children; the work happens in the `t3d generate` processes, each
with `threads` CPU threads (OMP_NUM_THREADS), so N jobs share the cores this process may use.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor, wait, FIRST_COMPLETED
from typing import Callable

from t3d.batch.child import Stop
from t3d.batch.naming import Job
from t3d.batch.runner import JobResult, crashed_result, run_job


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalExecutor:
    def __init__(self, workers: int, threads: int):
        self.workers, self.threads = workers, threads

    def describe(self) -> str:
        return f"local pool of {self.workers} job(s), {self.threads} thread(s) each"

    def connect(self) -> None:
        """Nothing to connect to (the Ray executor's counterpart)."""

    def run(self, jobs: list[Job], on_result: Callable[[JobResult], None], on_stopping: Callable[[str], None]) -> bool:
        """Run every job, reporting each result as it arrives; True if stopped by Ctrl-C."""
        stop = Stop()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="t3d-batch") as pool:
            pending = {pool.submit(run_job, job, stop): job for job in jobs}
            try:
                collect(pending, on_result)
                return False
            except KeyboardInterrupt:
                stop.interrupt.set()
                on_stopping("stopping: each running prompt saves a checkpoint (Ctrl-C again to kill them)")
            except BaseException:  # the batch itself cannot go on (e.g. its manifest is unwritable)
                stop.interrupt.set()
                raise
            try:
                collect(pending, on_result)
            except KeyboardInterrupt:
                stop.kill.set()
                collect(pending, on_result)
        return True


def collect(pending: dict[Future, Job], on_result: Callable[[JobResult], None]) -> None:
    """Report finished futures until none is left (removing them from `pending`)."""
    while pending:
        done, _ = wait(list(pending), timeout=1.0, return_when=FIRST_COMPLETED)
        for future in done:
            job = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a bug or an OS error in the task itself: this prompt fails
                result = crashed_result(job, f"{type(exc).__name__}: {exc}")
            if result is not None:
                on_result(result)
