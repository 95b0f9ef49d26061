"""Running `t3d` in real processes for the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict:
    # One thread: the same kernels in every process, so resumed and uninterrupted runs agree bit for bit.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "t3d.cli", *map(str, args)], env=env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "t3d.cli", *map(str, args)], env=env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def wait_for(condition, timeout: float = 240, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def final_tensors(run_dir: Path) -> dict:
    (last,) = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[-1:]
    return load_file(str(last))


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and (a[k] == b[k]).all() for k in a)
