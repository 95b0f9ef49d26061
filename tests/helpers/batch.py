"""Shared by the t3d batch tests: run the batch as a user would (a real process), read its results."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors import safe_open

from t3d.batch.manifest import read_manifest
from tests.conftest import TINY_RUN

REPO = Path(__file__).resolve().parents[2]
# Tiny runs without the outputs the batch tests do not look at; previews off, checkpoints every 10.
FAST_RUN = ["--no-video", "--no-mesh", *TINY_RUN, "--preview-every", "0", "--checkpoint-every", "10"]
FOUR_PROMPTS = ("# four distinct prompts; 'a teapot' is not an object the analytic prior knows (generate exits 2)\n"
                "a smiling head\n\na mug | --seed 1\na teapot\na small bird\n"
                "a smiling head\n")  # the same prompt and options again: one run
TEAPOT_ERROR = "t3d: error: the analytic prior knows no object in 'a teapot'"
THREE_PROMPTS = "a smiling head\na mug\na small bird\n"


def batch_command(prompts: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "t3d.cli", "batch", str(prompts), "--out", str(out), *args]


def batch_env() -> dict:
    # One thread per run everywhere, so the numbers of a local and a Ray run are the same.
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def run_batch(prompts: Path, out: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(prompts, out, *args), capture_output=True, text=True, env=batch_env(),
                          timeout=timeout, stdin=subprocess.DEVNULL)


# A shell's background job (nohup, `cmd &`) ignores SIGINT, and its children inherit that: the
# batch under test must take Ctrl-C as a terminal user's does, so it starts with SIGINT restored.
WITH_SIGINT = [sys.executable, "-c",
               "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"]


def start_batch(prompts: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(WITH_SIGINT + batch_command(prompts, out, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=batch_env(), stdin=subprocess.DEVNULL)


def last_invocation(out: Path) -> dict[str, dict]:
    """folder -> record, for the records the latest batch invocation wrote to batch.jsonl."""
    records = read_manifest(out / "batch.jsonl")
    latest = records[-1]["batch"]
    return {r["folder"]: r for r in records if r["batch"] == latest}


def wait_for_checkpoint(out: Path, step: int, proc: subprocess.Popen, timeout: float = 300) -> Path:
    """The first run folder whose checkpoint for `step` exists (the batch is then mid-run)."""
    deadline = time.monotonic() + timeout
    pattern = str(out / "*" / "checkpoints" / f"step_{step:06d}.safetensors")
    while time.monotonic() < deadline:
        found = glob.glob(pattern)
        if found:
            return Path(found[0]).parent.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no run reached step {step} in {timeout}s")


def generate_pid(run_dir: Path) -> int:
    """The process id of the `t3d generate` child writing `run_dir`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"generate" in argv and str(run_dir).encode() in argv:
            return int(pid)
    raise AssertionError(f"no generate process for {run_dir}")


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def newest_checkpoint(run_dir: Path) -> Path:
    return sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[-1]


def checkpoint_fingerprints(run_dir: Path) -> dict[str, tuple[int, str]]:
    """Checkpoint file -> (mtime in ns, SHA-256): any rewrite of a checkpoint changes it."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted((run_dir / "checkpoints").glob("*.safetensors"))}


def same_checkpoint(a: Path, b: Path) -> bool:
    try:
        assert_same_checkpoint(a, b)
    except AssertionError:
        return False
    return True


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """Tensor for tensor (dtype, shape and values exactly), same metadata, same bytes."""
    with safe_open(a, "pt") as fa, safe_open(b, "pt") as fb:
        assert sorted(fa.keys()) == sorted(fb.keys())
        assert fa.metadata() == fb.metadata()
        for key in fa.keys():
            ta, tb = fa.get_tensor(key), fb.get_tensor(key)
            assert ta.dtype == tb.dtype and ta.shape == tb.shape and bool((ta == tb).all()), key
    assert a.read_bytes() == b.read_bytes()
