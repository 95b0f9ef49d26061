"""t3d batch on a real local Ray instance: the same manifest as the local pool, and a Ray worker
killed mid-task is rescheduled and its run finishes exactly as an uninterrupted one.

CI installs the `ray` extra and sets T3D_REQUIRE_RAY=1, so these tests fail there without Ray
instead of skipping."""

import importlib.util
import os

import pytest

from tests.helpers.batch import (FAST_RUN, FOUR_PROMPTS, TEAPOT_ERROR, THREE_PROMPTS, assert_same_checkpoint,
                                 generate_pid, kill, last_invocation, newest_checkpoint, parent_pid, run_batch,
                                 start_batch, wait_for_checkpoint)
from tests.batch.test_local import expected_statuses

if importlib.util.find_spec("ray") is None:
    if os.environ.get("T3D_REQUIRE_RAY") == "1":
        raise ImportError("T3D_REQUIRE_RAY=1 but ray is not installed: pip install -e '.[ray]'")
    pytest.skip("ray is not installed (pip install -e '.[ray]'); CI sets T3D_REQUIRE_RAY=1", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.ray]
RAY = ("--ray", "local:2", "--cpus-per-run", "1")  # a local Ray instance with 2 CPUs, one per run


def test_ray_local_gives_the_same_manifest_as_the_local_pool(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(FOUR_PROMPTS)
    out = tmp_path / "batch"
    result = run_batch(prompts, out, *RAY, "--steps", "2", *FAST_RUN)
    assert result.returncode == 1, result.stderr
    records = last_invocation(out)
    assert {name: r["status"] for name, r in records.items()} == expected_statuses()
    teapot = next(r for r in records.values() if r["prompt"] == "a teapot")
    assert teapot["error"].startswith(TEAPOT_ERROR) and teapot["exit_code"] == 2
    assert all(r["steps"] == 2 for r in records.values() if r["status"] == "done")
    assert "on a local Ray instance (2 CPUs)" in result.stderr


def test_ray_worker_killed_mid_task_is_rescheduled_and_resumes(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(THREE_PROMPTS)
    out = tmp_path / "batch"
    args = ("--steps", "300", "--cpus-per-run", "1", *FAST_RUN)
    batch = start_batch(prompts, out, *RAY[:2], "--retries", "1", *args)
    run_dir = wait_for_checkpoint(out, 20, batch)
    worker = parent_pid(generate_pid(run_dir))
    assert worker_name(worker).startswith("ray::"), worker_name(worker)  # the Ray worker running the task
    kill(worker)
    _, err = batch.communicate(timeout=600)
    assert batch.returncode == 0, err
    records = last_invocation(out)
    assert sorted(r["status"] for r in records.values()) == ["done"] * 3, records
    killed = records[run_dir.name]
    assert any(note.startswith("resumed from step ") for note in killed["notes"]), killed  # Ray's second try

    reference = tmp_path / "reference"
    (tmp_path / "one.txt").write_text(f"{killed['prompt']}\n")
    result = run_batch(tmp_path / "one.txt", reference, *args)
    assert result.returncode == 0, result.stderr
    assert_same_checkpoint(newest_checkpoint(run_dir), newest_checkpoint(reference / run_dir.name))


def worker_name(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as fh:
        return fh.read().strip()


def test_an_address_where_no_cluster_answers_is_one_line_before_any_run(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a mug\n")
    result = run_batch(prompts, tmp_path / "batch", "--ray", "127.0.0.1:9", "--steps", "2")  # port 9: discard
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("t3d: error: --ray 127.0.0.1:9: no Ray cluster answers there")
    assert not any((tmp_path / "batch").glob("a-mug-*"))
