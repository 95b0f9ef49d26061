"""The batch from start to end: check everything, run every prompt, record, summarise.

All input is checked before the first run starts (prompt file, every line's options, the output
folder, Ray's reachability and resources): a problem there is one line and exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.batch.manifest import MANIFEST_FILE, Manifest
from t3d.batch.naming import Job, plan_jobs
from t3d.batch.prompts import read_prompt_file
from t3d.batch.report import BatchProgress, counts_line, exit_code, problems_table, summary_markdown
from t3d.batch.runner import JobResult
from t3d.errors import T3dError

SUMMARY_FILE = "summary.md"
COMPARE_FILE = "compare.png"


@dataclass
class BatchRequest:
    prompts_file: Path
    out: Path
    generate_options: tuple[str, ...] = ()
    jobs: int = 1
    ray: Optional[str] = None
    cpus_per_run: Optional[float] = None
    gpus_per_run: float = 0.0
    retries: int = 2
    retry_backoff: float = 2.0
    evaluate: bool = False
    notes: list[str] = field(default_factory=list)


def check_numbers(req: BatchRequest) -> None:
    if req.jobs < 1:
        raise T3dError(f"--jobs must be at least 1, got {req.jobs}")
    if req.retries < 0:
        raise T3dError(f"--retries must be 0 or more, got {req.retries}")
    if not req.retry_backoff >= 0:
        raise T3dError(f"--retry-backoff must be 0 or more seconds, got {req.retry_backoff}")
    if not req.gpus_per_run >= 0:
        raise T3dError(f"--gpus-per-run must be 0 or more, got {req.gpus_per_run}")
    if req.cpus_per_run is not None and not req.cpus_per_run > 0:
        raise T3dError(f"--cpus-per-run must be positive, got {req.cpus_per_run}")


def make_executor(req: BatchRequest):
    from t3d.batch.local import LocalExecutor, usable_cores

    cores = usable_cores()
    if req.ray is None:
        if req.gpus_per_run:
            req.notes.append("--gpus-per-run applies to --ray only; the local pool leaves GPUs to each run")
        threads = int(req.cpus_per_run) if req.cpus_per_run else max(1, cores // req.jobs)
        return LocalExecutor(req.jobs, max(1, threads)), max(1, threads)
    from t3d.batch.ray_exec import RayExecutor

    if req.jobs != 1:
        req.notes.append("--jobs is ignored with --ray: Ray runs as many prompts at once as the resources allow "
                         "(--cpus-per-run, --gpus-per-run)")
    cpus = req.cpus_per_run or 1.0
    return RayExecutor(req.ray, cpus, req.gpus_per_run, req.retries, cores), max(1, int(cpus))


class BatchIncomplete(T3dError):
    """Not every prompt succeeded: one line for the CLI, and the batch's exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def run_batch(req: BatchRequest, console: Console) -> None:
    """Run the batch. Raises BatchIncomplete (exit 1 failures, 3 busy, 130 Ctrl-C) unless every
    prompt succeeded, T3dError (exit 2) for bad input before any run starts."""
    from t3d.io import check_writable_dir

    check_numbers(req)
    lines = read_prompt_file(req.prompts_file)
    executor, threads = make_executor(req)
    out = Path(os.path.abspath(req.out))
    jobs, repeats = plan_jobs(lines, tuple(req.generate_options), out, str(req.prompts_file), threads=threads,
                              retries=req.retries, retry_backoff=req.retry_backoff, evaluate=req.evaluate,
                              cwd=os.getcwd())
    check_writable_dir(out / "logs")
    executor.connect()  # Ray: started or joined, resources checked; still before any run
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    invocation = f"{started}/{socket.gethostname()}/{os.getpid()}"
    results: dict[str, JobResult] = {}
    with Manifest(out / MANIFEST_FILE) as manifest, BatchProgress(len(jobs), console) as progress:
        for note in ([f"{manifest.path}: cut off a torn last line (a crash interrupted its write)"]
                     if manifest.repaired else []) + repeats + req.notes:
            progress.say(note)
        progress.say(f"t3d batch: {len(jobs)} prompt(s) from {req.prompts_file} -> {out} on {executor.describe()}")

        def on_result(result: JobResult) -> None:
            manifest.append(manifest_record(result, jobs_by_name[result.name], invocation, out))
            results[result.name] = result
            progress.report(result)

        jobs_by_name = {job.name: job for job in jobs}
        with sigterm_as_interrupt():
            interrupted = executor.run(jobs, on_result, progress.say)
    compare = compare_sheet(out, jobs, results, req, console) if req.evaluate and not interrupted else None
    header = [f"- started {started} on {socket.gethostname()}: {executor.describe()}",
              f"- generate options: `{' '.join(req.generate_options) or '(none)'}`",
              f"- manifest: `{MANIFEST_FILE}` (one line per result, every invocation); logs: `logs/<folder>.log`"]
    from t3d.io import atomic_write_text

    atomic_write_text(out / SUMMARY_FILE, summary_markdown(str(req.prompts_file), header, jobs, results, compare))
    print_summary(console, jobs, results, out, interrupted)
    code = exit_code(jobs, results, interrupted)
    if code:
        raise BatchIncomplete(incomplete_message(code, jobs, results, out), code)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's time limit, `kill`) stops the batch like Ctrl-C: runs save checkpoints."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def incomplete_message(code: int, jobs: list[Job], results: dict[str, JobResult], out: Path) -> str:
    if code == 130:
        return f"batch interrupted ({counts_line(jobs, results)}); run the same command again to finish the rest"
    return f"batch incomplete: {counts_line(jobs, results)}; see {out / SUMMARY_FILE}"


def manifest_record(result: JobResult, job: Job, invocation: str, out: Path) -> dict:
    record = {"prompt": result.prompt, "folder": result.name, "status": result.status, "seconds": result.seconds,
              "steps": result.steps, "lines": list(result.lines), "options": list(job.options),
              "attempts": result.attempts, "exit_code": result.exit_code, "batch": invocation,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if result.error:
        record["error"] = result.error
    if result.notes:
        record["notes"] = result.notes
    if len(result.lines) > 1:
        record["note"] = f"lines {', '.join(map(str, result.lines))} are the same prompt and options: run once"
    if result.metrics is not None:
        record["metrics"] = result.metrics
    return record


def compare_sheet(out: Path, jobs: list[Job], results: dict[str, JobResult], req: BatchRequest,
                  console: Console) -> Optional[Path]:
    """`t3d evaluate` over the evaluated runs: its comparison sheet, one row per run."""
    from t3d.batch import options as opt
    from t3d.batch.child import run_child

    runs = [job.run_dir for job in jobs if job.name in results and results[job.name].metrics]
    if not runs:
        return None
    path = out / COMPARE_FILE
    device = opt.select_options(req.generate_options, ("device",))
    console.print(f"comparison sheet of {len(runs)} run(s) -> {path}", markup=False, highlight=False)
    outcome = run_child(["evaluate", *runs, *device, "--compare", str(path), "--no-write", "--json"],
                        out / "logs" / "compare.log", dict(os.environ), None, os.getcwd())
    if outcome.code != 0:
        console.print(f"comparison sheet failed: {outcome.last_line}", markup=False, highlight=False)
        return None
    return path


def print_summary(console: Console, jobs: list[Job], results: dict[str, JobResult], out: Path, interrupted: bool) -> None:
    table = problems_table(jobs, results)
    if table is not None:
        console.print(table)
    console.print(counts_line(jobs, results) + f"; summary: {out / SUMMARY_FILE}", markup=False, highlight=False)
    metrics = [results[j.name].metrics for j in jobs if j.name in results and results[j.name].metrics]
    if metrics:
        from t3d.evaluate.report import metrics_table

        console.print(metrics_table(metrics))
