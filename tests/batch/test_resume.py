"""t3d batch resumes: after Ctrl-C (SIGINT to the batch) and after a run's process is killed, the
finished runs equal uninterrupted ones checkpoint for checkpoint (resume is exact on CPU)."""

import signal

import pytest

from tests.helpers.batch import (FAST_RUN, THREE_PROMPTS, assert_same_checkpoint, generate_pid, kill,
                                 last_invocation, newest_checkpoint, run_batch, start_batch,
                                 wait_for_checkpoint)

STEPS = 300  # long enough that a SIGINT sent at step 20 lands mid-run; the runs take seconds
# One thread per run whatever the machine's cores, so every run here computes the same numbers.
ARGS = ("--steps", str(STEPS), "--cpus-per-run", "1", *FAST_RUN)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """prompt -> the same run never interrupted, with a checkpoint kept for every step."""
    root = tmp_path_factory.mktemp("reference")
    prompts = root / "prompts.txt"
    prompts.write_text(THREE_PROMPTS)
    out = root / "batch"
    result = run_batch(prompts, out, "--jobs", "2", *ARGS, "--checkpoint-every", "1",
                       "--set", f"output.keep_checkpoints={STEPS}")
    assert result.returncode == 0, result.stderr
    return {r["prompt"]: out / name for name, r in last_invocation(out).items()}


def at_step(run_dir, step):
    return run_dir / "checkpoints" / f"step_{step:06d}.safetensors"


@pytest.mark.slow
def test_sigint_stops_the_batch_and_the_same_command_finishes_it_exactly(tmp_path, reference):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(THREE_PROMPTS)
    out = tmp_path / "batch"
    batch = start_batch(prompts, out, "--jobs", "2", *ARGS)
    first = wait_for_checkpoint(out, 20, batch)
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=300)
    assert batch.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("t3d: error: batch interrupted")
    records = last_invocation(out)
    # A run that reached its end before the signal is done; the others were stopped. The third
    # prompt may not have started; the second may have been stopped before its first step (still
    # importing torch on a loaded machine: killed by the SIGINT, exit -2, nothing written).
    assert {r["status"] for r in records.values()} <= {"interrupted", "done"}, records
    stopped = {name: r for name, r in records.items() if r["status"] == "interrupted"}
    # The manifest's step is what is on disk once the child has exited: its newest checkpoint.
    for name, r in stopped.items():
        on_disk = sorted((out / name / "checkpoints").glob("step_*.safetensors"))
        assert (on_disk[-1] == at_step(out / name, r["steps"])) if on_disk else r["steps"] == 0, (name, r, on_disk)
    # The run that had reached step 20 was mid-run: it saved a checkpoint on SIGINT, short of the end.
    assert 20 <= records[first.name]["steps"] < STEPS and records[first.name]["status"] == "interrupted", records
    stopped = {name: r for name, r in stopped.items() if r["steps"] > 0}
    # The SIGINT checkpoint is the uninterrupted run's state at that step (generate stops between steps).
    for name, r in stopped.items():
        assert_same_checkpoint(at_step(out / name, r["steps"]), at_step(reference[r["prompt"]], r["steps"]))

    result = run_batch(prompts, out, "--jobs", "2", *ARGS)
    assert result.returncode == 0, result.stderr
    finished = last_invocation(out)
    assert sorted(r["status"] for r in finished.values()) == ["done"] * 3
    for name, r in stopped.items():
        assert f"resumed from step {r['steps']}" in finished[name]["notes"]
    for name, r in finished.items():
        assert_same_checkpoint(newest_checkpoint(out / name), newest_checkpoint(reference[r["prompt"]]))


@pytest.mark.slow
def test_a_killed_run_is_retried_from_its_checkpoint(tmp_path, reference):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a smiling head\n")
    out = tmp_path / "batch"
    batch = start_batch(prompts, out, "--retries", "1", "--retry-backoff", "0.1", *ARGS)
    run_dir = wait_for_checkpoint(out, 20, batch)
    kill(generate_pid(run_dir))
    _, err = batch.communicate(timeout=300)
    assert batch.returncode == 0, err
    (record,) = last_invocation(out).values()
    assert record["status"] == "done" and record["attempts"] == 2, record
    assert "attempt 1 crashed (exit -9" in record["notes"][0]
    assert_same_checkpoint(newest_checkpoint(run_dir), newest_checkpoint(reference["a smiling head"]))
