"""Real processes: one writer per run folder, and runs that survive `kill -9`."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.conftest import TINY_RUN
from tests.helpers.runs import final_tensors, run, same_tensors, start, wait_for

PROMPT = "a smiling head"


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_two_writers_on_one_folder_one_wins_and_its_run_is_complete(tmp_path):
    out = tmp_path / "run"
    first = start(["generate", PROMPT, "--steps", "40", "--out", out, "--no-video", "--no-mesh", *TINY_RUN])
    lock = out / ".t3d.lock"
    wait_for(lambda: lock.is_file() and lock.read_text().startswith(f"{first.pid} "), what="the first lock")
    second = run(["generate", "a coffee mug", "--steps", "40", "--out", out, "--overwrite", "--no-video",
                  "--no-mesh", *TINY_RUN])
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"in use by process {first.pid}" in lines[0], second.stderr
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert (out / "checkpoints" / "step_000040.safetensors").is_file()
    assert "a smiling head" in (out / "config.yaml").read_text()  # the survivor's run, not the second's


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_a_killed_holder_does_not_block_its_folder(tmp_path):
    out = tmp_path / "run"
    holder = start(["generate", PROMPT, "--steps", "200", "--out", out, "--no-video", "--no-mesh", *TINY_RUN])
    wait_for(lambda: (out / "checkpoints" / "step_000002.safetensors").is_file(), what="a checkpoint")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    resumed = run(["generate", "--resume", out, "--steps", "6", "--no-video", "--no-mesh"])
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "checkpoints" / "step_000006.safetensors").is_file()


def _logged_steps(out) -> list[int]:
    return [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if not r.get("skipped")]


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_kill_9_at_several_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = [*TINY_RUN, "--steps", "24", "--checkpoint-every", "4", "--no-video", "--no-mesh"]
    reference = tmp_path / "reference"
    assert run(["generate", PROMPT, "--out", reference, *args]).returncode == 0
    out = tmp_path / "run"
    proc = start(["generate", PROMPT, "--out", out, *args])
    for kill_after in (4, 12, 20):  # one kill per point; each resume continues from the newest checkpoint
        wait_for(lambda: (out / "checkpoints" / f"step_{kill_after:06d}.safetensors").is_file(),
                 what=f"checkpoint {kill_after}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc = start(["generate", "--resume", out, "--steps", "24", "--no-video", "--no-mesh"])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert _logged_steps(out) == [10, 20, 24] == _logged_steps(reference)
    assert same_tensors(final_tensors(out), final_tensors(reference))
    assert not [p for p in out.rglob(".*.tmp*")]  # no temporary file survives the kills
