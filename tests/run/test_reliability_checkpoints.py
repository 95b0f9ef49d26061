"""Checkpoints that prove themselves: damage is detected on load, and every command falls back to
the newest checkpoint that verifies, says so, and stops with one line when none does."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save as st_save

from t3d.cli import main
from t3d.run.checkpoint import CorruptCheckpoint, read_checkpoint
from tests.conftest import TINY_RUN
from tests.helpers.runs import final_tensors, same_tensors

PROMPT = "a smiling head"
ARGS = [*TINY_RUN, "--checkpoint-every", "4", "--no-video", "--no-mesh"]


def flip_middle(path, count: int = 4096) -> None:
    """Invert `count` bytes in the middle of the file, keeping its length (what a bad disk does)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + count] = bytes(b ^ 0xFF for b in data[mid:mid + count])
    path.write_bytes(bytes(data))


@pytest.fixture
def trained(tmp_path):
    out = tmp_path / "run"
    assert main(["generate", PROMPT, "--steps", "8", "--out", str(out), *ARGS]) == 0
    return out


def test_flipped_bytes_are_detected(trained):
    path = trained / "checkpoints" / "step_000008.safetensors"
    read_checkpoint(path)
    flip_middle(path)
    with pytest.raises(CorruptCheckpoint, match="checksum mismatch"):
        read_checkpoint(path)


def test_resume_falls_back_to_the_last_good_checkpoint_and_matches_an_uninterrupted_run(trained, tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main(["generate", PROMPT, "--steps", "12", "--out", str(reference), *ARGS]) == 0
    flip_middle(trained / "checkpoints" / "step_000008.safetensors")
    capsys.readouterr()
    assert main(["generate", "--resume", str(trained), "--steps", "12", "--no-video", "--no-mesh"]) == 0
    err = capsys.readouterr().err
    assert "step_000008.safetensors is corrupt" in err and "using step_000004.safetensors instead" in err
    assert (trained / "checkpoints" / "step_000008.safetensors.corrupt").is_file()  # kept, never deleted
    assert same_tensors(final_tensors(trained), final_tensors(reference))


@pytest.mark.parametrize("command", ["render-video", "export-mesh"])
def test_outputs_use_the_newest_good_checkpoint_and_say_so(trained, tmp_path, capsys, command):
    (trained / "checkpoints" / "step_000008.safetensors").write_bytes(b"\0" * 100)  # truncated
    out = tmp_path / ("video.mp4" if command == "render-video" else "mesh.glb")
    extra = ["--frames", "2", "--resolution", "16"] if command == "render-video" else ["--resolution", "16"]
    assert main([command, str(trained), "--out", str(out), *extra]) == 0
    err = capsys.readouterr().err
    assert "step_000008.safetensors is corrupt or truncated" in err and "using step_000004.safetensors instead" in err
    assert "of step 4" in err and out.is_file()


def test_no_good_checkpoint_is_one_line(trained, tmp_path, capsys):
    for path in (trained / "checkpoints").glob("step_*.safetensors"):
        flip_middle(path)
    assert main(["export-mesh", str(trained), "--out", str(tmp_path / "m.glb")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "verifies" in lines[0]


def test_a_checkpoint_without_checksums_still_loads(tmp_path):
    """Older checkpoints carried no checksums: they load (nothing to verify against)."""
    path = tmp_path / "old.safetensors"
    path.write_bytes(st_save({"field/x": torch.ones(3)}, metadata={"t3d": '{"step": 3, "param_groups": []}'}))
    tensors, meta = read_checkpoint(path)
    assert meta["step"] == 3 and torch.equal(tensors["field/x"], torch.ones(3))
