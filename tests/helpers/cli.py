"""Running the CLI in tests: in process (`main`) or in a real process, and checking its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from t3d.cli import main


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err

def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("t3d: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err

def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def generate_in_subprocess(args: list[str]) -> subprocess.CompletedProcess:
    """`t3d generate ARGS` in its own Python process (exit code and stderr as a user sees them)."""
    cmd = [sys.executable, "-m", "t3d.cli", "generate", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
