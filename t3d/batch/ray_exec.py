"""The Ray executor: one Ray task per prompt; Ray does the placement and the fault tolerance.

Each task runs `runner.run_job`, the same code as the local pool, on whichever node Ray picks,
with `num_cpus` / `num_gpus` resources (Ray sets CUDA_VISIBLE_DEVICES for the task, so each run
sees only its own GPUs). A task whose worker dies is rescheduled by Ray (`max_retries`); the new
attempt finds the run folder and resumes it. A failed `generate` is retried inside the task,
with backoff. The run folders must be on a filesystem every node mounts at the same path.
"""

from __future__ import annotations

import socket
from typing import Callable

from t3d.batch.naming import Job
from t3d.batch.runner import JobResult, crashed_result, run_job
from t3d.errors import T3dError

WAIT_SECONDS = 1.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise T3dError("--ray needs Ray, which is not installed: pip install 't3d[ray]' "
                       "(or run without --ray to use a local pool of processes)") from None
    return ray


def parse_local(address: str) -> tuple[bool, int | None]:
    """'local' or 'local:N' -> (True, N or None); anything else -> (False, None)."""
    head, _, cpus = address.partition(":")
    if head != "local":
        return False, None
    if cpus and not (cpus.isdigit() and int(cpus) > 0):
        raise T3dError(f"--ray local:N expects a positive number of CPUs, got '{address}'")
    return True, int(cpus) if cpus else None


class RayExecutor:
    def __init__(self, address: str, cpus_per_run: float, gpus_per_run: float, retries: int, machine_cpus: int):
        self.address, self.cpus, self.gpus, self.retries = address, cpus_per_run, gpus_per_run, retries
        self.local, local_cpus = parse_local(address)
        self.local_cpus = local_cpus or machine_cpus
        self.ray = None

    def describe(self) -> str:
        where = f"a local Ray instance ({self.local_cpus} CPUs)" if self.local else f"the Ray cluster at {self.address}"
        return f"{where}, {self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) per prompt"

    def connect(self) -> None:
        """Start or join Ray and check one node can hold a task; one-line errors before any run."""
        ray = self.ray = import_ray()
        check_reachable(self.address)
        try:
            if self.local:
                ray.init(num_cpus=self.local_cpus, include_dashboard=False)
            else:
                ray.init(address=self.address)
        except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError, ... here
            raise T3dError(f"--ray {self.address}: cannot start or join Ray: {first_line(exc)}") from None
        try:
            check_fits(ray, self.cpus, self.gpus)
        except T3dError:
            ray.shutdown()
            raise

    def run(self, jobs: list[Job], on_result: Callable[[JobResult], None], on_stopping: Callable[[str], None]) -> bool:
        """Submit every job, report results as they arrive; True if stopped by Ctrl-C."""
        ray = self.ray
        task = ray.remote(run_job).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries,
                                           retry_exceptions=False, name="t3d-generate")
        try:
            pending = {task.remote(job): job for job in jobs}
            try:
                self.collect(pending, on_result)
                return False
            except KeyboardInterrupt:
                on_stopping("stopping: each running prompt saves a checkpoint (Ctrl-C again to kill them)")
                self.cancel(pending, force=False)
            except BaseException:  # the batch itself cannot go on (e.g. its manifest is unwritable)
                self.cancel(pending, force=False)
                raise
            try:
                self.collect(pending, on_result, stopping=True)
            except KeyboardInterrupt:
                self.cancel(pending, force=True)
                self.collect(pending, on_result, stopping=True, forced=True)
            return True
        finally:
            ray.shutdown()

    def collect(self, pending: dict, on_result: Callable[[JobResult], None], stopping: bool = False,
                forced: bool = False) -> None:
        """Report results as they arrive. A task cancelled before it began has no result; one
        cancelled gently returns its own ("interrupted"); one killed (forced) is "interrupted"."""
        ray = self.ray
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    result = crashed_result(job, "", status="interrupted") if forced else None
                except Exception as exc:  # the worker died more often than max_retries, or the task raised
                    status = "interrupted" if stopping else "failed"
                    result = crashed_result(job, f"ray: {type(exc).__name__}: {first_line(exc)}", status)
                if result is not None:
                    on_result(result)

    def cancel(self, pending: dict, force: bool) -> None:
        for ref in pending:
            try:
                self.ray.cancel(ref, force=force)
            except Exception:  # already finished or gone: nothing to stop
                pass


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that does not answer is an error now: ray.init would retry
    it for minutes. 'auto' and 'local' are left to Ray."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if address in ("auto", "local") or address.startswith("local:") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise T3dError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
                       f"`ray start --head` or check the address") from None


def check_fits(ray, cpus: float, gpus: float) -> None:
    """Refuse up front a task no node can hold (Ray would wait for it forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        most_gpus = max((r.get("GPU", 0) for r in nodes), default=0)
        most_cpus = max((r.get("CPU", 0) for r in nodes), default=0)
        raise T3dError(f"no Ray node has {cpus:g} CPU(s) and {gpus:g} GPU(s) for one prompt (largest node: "
                       f"{most_cpus:g} CPUs, {most_gpus:g} GPUs); lower --cpus-per-run / --gpus-per-run")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
