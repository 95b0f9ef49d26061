"""t3d batch on the local process pool: failures recorded by name, finished runs skipped on a rerun."""

import imageio.v3 as iio
import pytest

from t3d.batch.naming import run_name
from tests.helpers.batch import (FAST_RUN, FOUR_PROMPTS, TEAPOT_ERROR, checkpoint_fingerprints, last_invocation,
                                 run_batch)


def expected_statuses(options=("--steps", "2", *FAST_RUN)) -> dict[str, str]:
    """The manifest FOUR_PROMPTS must give, folder -> status (shared with the Ray test)."""
    return {run_name("a smiling head", options): "done", run_name("a mug", (*options, "--seed", "1")): "done",
            run_name("a teapot", options): "failed", run_name("a small bird", options): "done"}


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_local_pool_records_failures_evaluates_and_skips_finished_runs(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(FOUR_PROMPTS)
    out = tmp_path / "batch"
    args = ("--jobs", "2", "--evaluate", "--steps", "2", *FAST_RUN)
    first = run_batch(prompts, out, *args)
    assert first.returncode == 1, first.stderr
    assert first.stderr.strip().splitlines()[-1].startswith("t3d: error: batch incomplete: 4 prompt(s): 3 done, 1 failed")
    records = last_invocation(out)
    assert {name: r["status"] for name, r in records.items()} == expected_statuses()
    teapot = next(r for r in records.values() if r["prompt"] == "a teapot")
    assert teapot["error"].startswith(TEAPOT_ERROR) and teapot["exit_code"] == 2 and teapot["attempts"] == 1
    head = next(r for r in records.values() if r["prompt"] == "a smiling head")
    assert head["lines"] == [2, 7] and "run once" in head["note"]
    done = [out / name for name, r in records.items() if r["status"] == "done"]
    for r in records.values():
        if r["status"] == "done":
            assert r["steps"] == 2 and r["metrics"]["step"] == 2 and "pose_accuracy" in r["metrics"]["janus"]
    # One plain line per finished prompt, and a table naming the failed one with its error.
    assert "failed" in first.stderr and teapot["folder"] in first.stderr and TEAPOT_ERROR in first.stderr
    summary = (out / "summary.md").read_text()
    assert f"| failed | 5 | a teapot | {teapot['folder']} | 0 |" in summary and TEAPOT_ERROR in summary
    assert "## Comparison" in summary and summary.count("| sds |") == 3
    assert iio.imread(out / "compare.png").shape[0] == 3 * (64 + 4)  # one row per evaluated run

    before = {run: checkpoint_fingerprints(run) for run in done}
    logs = {run: (out / "logs" / f"{run.name}.log").read_bytes() for run in done}
    second = run_batch(prompts, out, *args)
    assert second.returncode == 1, second.stderr
    records = last_invocation(out)
    assert {name: r["status"] for name, r in records.items()} == {
        name: "skipped" if status == "done" else status for name, status in expected_statuses().items()}
    for run in done:
        assert checkpoint_fingerprints(run) == before[run]  # nothing retrained or rewritten
        assert (out / "logs" / f"{run.name}.log").read_bytes() == logs[run]  # no process was started for it
        assert records[run.name]["metrics"]["step"] == 2  # the metrics come from the run's metrics.json
