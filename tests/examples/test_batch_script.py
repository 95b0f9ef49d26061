"""examples/batch.sh: one run per prompt, failures recorded, the batch goes on."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import TINY_RUN

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "batch.sh"


def test_batch_script_runs_each_prompt_and_reports_failures(tmp_path):
    wrapper = tmp_path / "t3d"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m t3d.cli \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\na smiling head\n\na teapot\n")
    env = {**os.environ, "T3D": str(wrapper), "OUT": str(tmp_path / "runs"), "EVALUATE": "1",
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", str(SCRIPT), str(prompts), "--steps", "1", "--no-video", "--no-mesh",
                             *TINY_RUN], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (tmp_path / "runs" / "a-smiling-head-sds" / "checkpoints" / "step_000001.safetensors").exists()
    assert "FAILED (2): a teapot" in result.stdout and "done: 1 failed" in result.stdout
    assert not (tmp_path / "runs" / "a-teapot-sds").exists()
    # EVALUATE=1: the runs that finished are evaluated and compared.
    assert (tmp_path / "runs" / "a-smiling-head-sds" / "metrics.json").exists()
    assert (tmp_path / "runs" / "compare-sds.png").exists()
