"""A full disk at each place a run writes: one line, the documented exit code, the last good
checkpoint intact, and no temporary file left behind."""

from __future__ import annotations

import errno
import os

import pytest

import t3d.run.log
from t3d.cli import main
from t3d.run.checkpoint import read_checkpoint
from tests.conftest import TINY_RUN

PROMPT = "a smiling head"
ARGS = [*TINY_RUN, "--steps", "12", "--checkpoint-every", "4", "--preview-every", "4"]
FULL = "No space left on device"


def _enospc(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def fail_replace_of(monkeypatch, predicate) -> None:
    """Atomic writes publish by os.replace: make the publication of matching files fail."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if predicate(str(dst)):
            raise _enospc(dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def fail_log_after(monkeypatch, records: int) -> None:
    """The log's file object runs out of space after `records` records."""
    real_init = t3d.run.log.RunLog.__init__

    class FullFile:
        def __init__(self, file):
            self.file, self.left = file, records

        def write(self, text):
            if self.left == 0:
                raise _enospc(self.file.name)
            self.left -= 1
            return self.file.write(text)

        def __getattr__(self, name):
            return getattr(self.file, name)

    def init(self, run_dir):
        real_init(self, run_dir)
        self.file = FullFile(self.file)

    monkeypatch.setattr(t3d.run.log.RunLog, "__init__", init)


SITES = {
    "config": lambda mp: fail_replace_of(mp, lambda p: p.endswith("config.yaml")),
    "log": lambda mp: fail_log_after(mp, 0),
    "first-checkpoint": lambda mp: fail_replace_of(mp, lambda p: p.endswith("step_000004.safetensors")),
    "later-checkpoint": lambda mp: fail_replace_of(mp, lambda p: p.endswith("step_000008.safetensors")),
    "preview": lambda mp: fail_replace_of(mp, lambda p: "previews" in p),
    "video": lambda mp: fail_replace_of(mp, lambda p: p.endswith(".mp4")),
    "mesh": lambda mp: fail_replace_of(mp, lambda p: p.endswith(".glb")),
}


def assert_disk_full_handled(code: int, err: str, run) -> None:
    lines = [line for line in err.splitlines() if line.startswith("t3d: error:")]
    assert code == 2 and len(lines) == 1 and FULL in lines[0], err
    assert "Traceback" not in err
    assert not list(run.rglob(".*.tmp*")), list(run.rglob(".*.tmp*"))
    for path in sorted((run / "checkpoints").glob("step_*.safetensors")):
        read_checkpoint(path)  # every checkpoint on disk is a complete, verified one


@pytest.mark.parametrize("site", SITES)
def test_disk_full_while_generating(site, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    SITES[site](monkeypatch)
    code = main(["generate", PROMPT, "--out", str(run), *ARGS])
    err = capsys.readouterr().err
    assert_disk_full_handled(code, err, run)
    if site == "later-checkpoint":
        assert "last good checkpoint" in err and "step_000004" in err


def test_disk_full_while_writing_metrics(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["generate", PROMPT, "--out", str(run), *ARGS, "--no-video", "--no-mesh"]) == 0
    fail_replace_of(monkeypatch, lambda p: p.endswith("metrics.json"))
    code = main(["evaluate", str(run), "--views", "4"])
    assert_disk_full_handled(code, capsys.readouterr().err, run)
    assert not (run / "metrics.json").exists()
