"""One prompt, start to finish: the task that both executors run (a pool thread or a Ray task).

Steps: look at the run folder; skip a finished run; otherwise `generate` (a new run) or
`generate --resume` (a partial one), then render the outputs a trained run lacks; retry a crash
with exponential backoff; evaluate when asked. Exit codes of `t3d generate` decide what happens:
0 ok, 2 bad input (or another process holds the run folder: "busy"), 1 a reported failure such
as diverged training, 130 interrupted; anything else (killed by a signal, a traceback) is a
crash and is retried up to `retries` times, resuming from the last checkpoint.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from t3d.batch import options as opt
from t3d.batch.child import Outcome, Stop, run_child
from t3d.batch.naming import Job
from t3d.batch.state import RunState, inspect_run, metrics_step

# The one line `generate` prints when another live process holds the run folder's lock: it names
# the holder by process id ("... locked by process 1234", "in use by pid 1234", ...).
BUSY_LINE = re.compile(r"\b(lock|locked|in use|held|holds|busy)\b.*\b(pid|process)\b\D{0,3}\d+"
                       r"|\b(pid|process)\b\D{0,3}\d+.*\b(lock|locked|in use|holds?|busy)\b", re.IGNORECASE)
REPORTED_ERROR = "t3d: error:"
MAX_BACKOFF_SECONDS = 300.0


@dataclass
class JobResult:
    name: str
    prompt: str
    lines: tuple[int, ...]
    status: str  # done | skipped | failed | busy | interrupted
    seconds: float
    steps: int
    error: Optional[str] = None
    exit_code: Optional[int] = None
    attempts: int = 0
    metrics: Optional[dict] = None
    notes: list[str] = field(default_factory=list)


def run_job(job: Job, stop: Optional[Stop] = None) -> Optional[JobResult]:
    """Bring `job`'s run folder to finished (and evaluated); None if stopped before it began."""
    if stop is not None and stop.interrupt.is_set():
        return None
    started = time.perf_counter()
    result = advance_run(job, stop)
    if result.status in ("done", "skipped") and job.evaluate:
        evaluate(job, result, stop)
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def advance_run(job: Job, stop: Optional[Stop]) -> JobResult:
    """The generate / resume / finish-outputs attempts, with retries for crashes."""
    state = current_state(job)
    if state.other_prompt is not None:
        return result_of(job, state, "failed", error=f"{job.run_dir} holds a run for '{state.other_prompt}'")
    if state.finished:
        return result_of(job, state, "skipped")
    attempts = 0
    notes = [f"resumed from step {state.step}"] if state.has_config and not state.trained else []
    while True:
        attempts += 1
        outcome, state = attempt(job, state, stop)
        verdict = judge(outcome, state)
        if verdict == "mesh-skipped":  # generate itself treats an empty field's mesh this way
            notes.append(f"mesh skipped: {outcome.last_line}")
            verdict = "done"
        if verdict != "retry" or attempts > job.retries:
            result = result_of(job, state, "failed" if verdict == "retry" else verdict, outcome, attempts)
            result.notes += notes
            return result
        notes.append(f"attempt {attempts} crashed (exit {outcome.code}: {outcome.last_line}); retrying")
        if pause(job.retry_backoff * 2 ** (attempts - 1), stop):
            return result_of(job, state, "interrupted", outcome, attempts)


def attempt(job: Job, state: RunState, stop: Optional[Stop]) -> tuple[Outcome, RunState]:
    """Train (new run or resume), then render what a trained run lacks; stop at the first failure."""
    outcome = None
    for _ in range(2):
        for args in next_commands(job, state):
            outcome = run_child(args, Path(job.log_path), child_env(job), stop, job.cwd)
            if outcome.code != 0 or outcome.interrupted:
                return outcome, current_state(job)
        state = current_state(job)
        if state.finished:
            break
    return outcome, state


def next_commands(job: Job, state: RunState) -> list[list[str]]:
    """What brings the folder forward: a new run, a resume, or the outputs a trained run lacks."""
    threads = () if opt.option_value(job.options, "threads") or not opt.has_option("threads") \
        else ("--threads", str(job.threads))
    if not state.has_config:
        return [["generate", job.prompt, *job.options, *threads, "--out", job.run_dir]]
    if not state.trained:
        return [["generate", "--resume", job.run_dir, *opt.select_options(job.options, opt.RESUME_OPTIONS), *threads]]
    device = opt.select_options(job.options, ("device",))
    return [[command, job.run_dir, *device] for output, command in (("video", "render-video"), ("mesh", "export-mesh"))
            if output in state.missing]


def judge(outcome: Outcome, state: RunState) -> str:
    """done | interrupted | busy | failed | retry | mesh-skipped, from the last child's outcome."""
    if outcome.interrupted:
        # A folder already finished when the stop came (Ctrl-C while the child was exiting) is done.
        return "done" if state.finished else "interrupted"
    if outcome.code == 0:
        return "done" if state.finished else "retry"
    if outcome.code == 2 and BUSY_LINE.search(outcome.last_line):
        return "busy"
    if outcome.code == 2 and state.trained and state.missing == ("mesh",):
        return "mesh-skipped"
    if outcome.code == 2 or (outcome.code == 1 and outcome.last_line.startswith(REPORTED_ERROR)):
        return "failed"  # bad input or a reported failure: the same command would fail again
    return "retry"


def evaluate(job: Job, result: JobResult, stop: Optional[Stop]) -> None:
    """`t3d evaluate RUN` unless metrics.json already scores the final step; metrics into `result`."""
    run_dir = Path(job.run_dir)
    if metrics_step(run_dir) != result.steps:
        device = opt.select_options(job.options, ("device",))
        outcome = run_child(["evaluate", job.run_dir, *device], Path(job.log_path), child_env(job), stop, job.cwd)
        if outcome.code != 0:
            result.status = "interrupted" if outcome.interrupted else "failed"
            result.error, result.exit_code = f"evaluate: {outcome.last_line}", outcome.code
            return
    result.metrics = compact_metrics(run_dir / "metrics.json")


def compact_metrics(path: Path) -> Optional[dict]:
    """metrics.json without its per-view lists (they stay in the file)."""
    import json

    def scalars(value):
        if isinstance(value, dict):
            return {k: scalars(v) for k, v in value.items() if not isinstance(v, list)}
        return value

    try:
        return scalars(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def current_state(job: Job) -> RunState:
    return inspect_run(Path(job.run_dir), job.prompt, job.steps, job.want_video, job.want_mesh)


def result_of(job: Job, state: RunState, status: str, outcome: Optional[Outcome] = None, attempts: int = 0,
              error: Optional[str] = None) -> JobResult:
    if error is None and outcome is not None and status in ("failed", "busy"):
        error = outcome.last_line
        if outcome.code == 0:  # exited cleanly yet the folder is not finished: say what is missing
            error = (f"the run exited 0 but is not finished (step {state.step} of {state.target}, "
                     f"missing: {', '.join(state.missing) or 'none'})")
    return JobResult(job.name, job.prompt, job.lines, status, 0.0, state.step, error,
                     outcome.code if outcome is not None else None, attempts)


def child_env(job: Job) -> dict:
    """This worker's environment with the run's thread count; output unbuffered for the log."""
    threads = opt.option_value(job.options, "threads") or str(job.threads)
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}


def pause(seconds: float, stop: Optional[Stop]) -> bool:
    """Sleep before a retry; True if the batch was stopped meanwhile."""
    deadline = time.monotonic() + min(seconds, MAX_BACKOFF_SECONDS)
    try:
        while time.monotonic() < deadline:
            if stop is not None and stop.interrupt.wait(timeout=min(0.2, deadline - time.monotonic())):
                return True
            if stop is None:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return False
    except KeyboardInterrupt:
        return True


def crashed_result(job: Job, error: str, status: str = "failed") -> JobResult:
    """A result for a task that did not return one (it raised, or its worker died for good)."""
    state = current_state(job)
    first_line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    return JobResult(job.name, job.prompt, job.lines, status, 0.0, state.step,
                     first_line if status == "failed" else None)
