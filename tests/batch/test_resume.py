"""t3d batch resumes: after Ctrl-C (SIGINT to the batch) and after a run's process is killed, the
finished runs equal uninterrupted ones checkpoint for checkpoint (resume is exact on CPU)."""

import signal

import pytest

from tests.helpers.batch import (FAST_RUN, THREE_PROMPTS, assert_same_checkpoint, generate_pid, kill,
                                 last_invocation, newest_checkpoint, run_batch, same_checkpoint, start_batch,
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
@pytest.mark.xfail(strict=False, reason="known bug: on Ctrl-C the batch records an interrupted run's step before "
                   "its child has finished saving the SIGINT checkpoint, so the manifest can say step 0 or a stale "
                   "step (seen 2 times in 4 runs on a loaded 2-core machine)")
def test_sigint_stops_the_batch_and_the_same_command_finishes_it_exactly(tmp_path, reference):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(THREE_PROMPTS)
    out = tmp_path / "batch"
    batch = start_batch(prompts, out, "--jobs", "2", *ARGS)
    wait_for_checkpoint(out, 20, batch)
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=300)
    assert batch.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("t3d: error: batch interrupted")
    records = last_invocation(out)
    # A run that reached its end before the signal is done; the others were stopped, and the one
    # that had reached step 20 was still running then. The third prompt may not have started.
    assert {r["status"] for r in records.values()} <= {"interrupted", "done"}, records
    stopped = {name: r for name, r in records.items() if r["status"] == "interrupted"}
    assert stopped, records
    # Stopped mid-run: each run's newest checkpoint is the one saved on SIGINT, short of the end.
    assert all(0 < r["steps"] < STEPS for r in stopped.values())
    assert all(newest_checkpoint(out / name) == at_step(out / name, r["steps"]) for name, r in stopped.items())
    saved_mid_step = [r["prompt"] for name, r in stopped.items()
                      if not same_checkpoint(at_step(out / name, r["steps"]), at_step(reference[r["prompt"]], r["steps"]))]

    result = run_batch(prompts, out, "--jobs", "2", *ARGS)
    assert result.returncode == 0, result.stderr
    finished = last_invocation(out)
    assert sorted(r["status"] for r in finished.values()) == ["done"] * 3
    for name, r in stopped.items():
        assert f"resumed from step {r['steps']}" in finished[name]["notes"]
    for name, r in finished.items():
        if r["prompt"] not in saved_mid_step:
            assert_same_checkpoint(newest_checkpoint(out / name), newest_checkpoint(reference[r["prompt"]]))
    if saved_mid_step:
        # t3d generate's SIGINT handler can save between the optimiser update and the step
        # counter; that checkpoint differs from the uninterrupted state before the batch resumes it.
        pytest.xfail(f"generate saved a SIGINT checkpoint mid-step for {saved_mid_step} (engine, not batch)")


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
