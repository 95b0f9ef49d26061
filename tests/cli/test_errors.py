"""Every bad input gets one clear line on stderr, exit code 2, no traceback, and nothing lost."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from t3d.cli import main
from tests.conftest import TINY_RUN
from tests.helpers.cli import assert_one_line_error, generate_in_subprocess, run_cli, snapshot


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(prompt, tmp_path, capsys):
    code, err = run_cli(["generate", prompt, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "prompt is empty")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (["--method", "magic"], "unknown method 'magic'"),
    (["--steps", "0"], "--steps"),
    (["--steps", "-5"], "--steps"),
    (["--mesh-format", "stl"], "unknown mesh format 'stl'"),
    (["--t-schedule", "random"], "unknown timestep schedule 'random'"),
    (["--score-clip", "a:b"], "--score-clip"),
    (["--device", "tpu"], "unknown device"),
    (["--encoding", "voxels"], "unknown encoding"),
    (["--set", "field.nope=3"], "unknown config key"),
    (["--set", "steps=many"], "'steps' must be a whole number"),
    (["--set", "analytic.uncond_pose=sideways"], "unknown analytic.uncond_pose 'sideways'"),
])
def test_bad_flag_values(args, needle, tmp_path, capsys):
    code, err = run_cli(["generate", "a smiling head", "--out", tmp_path / "r", *args], capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "r").exists()


def test_unknown_flag_is_a_usage_error(capsys):
    code, err = run_cli(["generate", "a smiling head", "--colour", "red"], capsys)
    assert_one_line_error(code, err, "--colour")


def test_unknown_object_for_the_analytic_prior(tmp_path, capsys):
    code, err = run_cli(["generate", "a spaceship", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "knows no object", "head")
    assert not (tmp_path / "r").exists()


def test_unavailable_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run_cli(["generate", "a cat", "--model", tmp_path / "no-such-model", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "--model analytic")
    assert not (tmp_path / "r").exists()


def test_missing_run_folder(tmp_path, capsys):
    for cmd in (["render-video"], ["export-mesh"], ["generate", "--resume"]):
        code, err = run_cli([*cmd, tmp_path / "nowhere"], capsys)
        assert_one_line_error(code, err, "nowhere")


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_cli(["generate", "a smiling head", "--out", blocker / "run", "--steps", "2"], capsys)
    assert_one_line_error(code, err, "a-file")
    assert blocker.read_text() == "not a folder"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "head"
    assert main(["generate", "a smiling head", "--steps", "4", "--out", str(run), *TINY_RUN]) == 0
    return run


def test_output_folder_with_another_run_is_refused(finished_run, capsys):
    before = snapshot(finished_run)
    code, err = run_cli(["generate", "a mug", "--steps", "2", "--out", finished_run], capsys)
    assert_one_line_error(code, err, "already holds a run", "--overwrite")
    assert snapshot(finished_run) == before


def test_folder_with_foreign_files_is_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    code, err = run_cli(["generate", "a mug", "--steps", "2", "--out", folder, "--overwrite"], capsys)
    assert_one_line_error(code, err, "not a t3d run")
    assert (folder / "thesis.txt").read_text() == "precious"


def test_resume_with_other_prompt_is_refused(finished_run, capsys):
    code, err = run_cli(["generate", "a mug", "--resume", finished_run, "--steps", "8"], capsys)
    assert_one_line_error(code, err, "not 'a mug'")


def test_unknown_export_format(finished_run, capsys):
    code, err = run_cli(["export-mesh", finished_run, "--format", "stl"], capsys)
    assert_one_line_error(code, err, "unknown mesh format 'stl'")


def test_run_folder_without_checkpoint(finished_run, tmp_path, capsys):
    copy = tmp_path / "nockpt"
    copy.mkdir()
    (copy / "config.yaml").write_bytes((finished_run / "config.yaml").read_bytes())
    code, err = run_cli(["render-video", copy], capsys)
    assert_one_line_error(code, err, "no checkpoint")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint(finished_run, tmp_path, capsys, damage):
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(finished_run, copy)
    # Every checkpoint: with one intact, the commands fall back to it (test_reliability_checkpoints.py).
    for checkpoint in (copy / "checkpoints").iterdir():
        data = checkpoint.read_bytes()
        damaged = {"truncate": data[: len(data) // 2], "garbage": b"\x00" * 64 + data[64:], "empty": b""}
        checkpoint.write_bytes(damaged[damage])
    for cmd in (["render-video", copy], ["export-mesh", copy], ["generate", "--resume", copy, "--steps", "8"]):
        code, err = run_cli(cmd, capsys)
        assert_one_line_error(code, err, "corrupt or truncated")
    assert not (copy / "mesh.ply").exists()


def test_console_script_reports_errors_without_traceback(tmp_path):
    exe = Path(sys.executable).parent / "t3d"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "t3d.cli"]
    proc = subprocess.run([*cmd, "generate", "  ", "--out", str(tmp_path / "r")], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["t3d: error: the prompt is empty; say what to make, e.g. t3d generate \"a smiling head\""]


def test_bad_noise_flag_is_one_line_exit_2(tmp_path, capsys):
    code = main(["generate", "a smiling head", "--noise", "pink", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown noise 'pink'" in err
    code = main(["generate", "a smiling head", "--grad-consistency", "-1", "--out", str(tmp_path / "y")])
    assert code == 2 and "--grad-consistency" in capsys.readouterr().err


def test_bad_noise_flag_is_one_line(tmp_path, capsys):
    code = main(["generate", "a smiling head", "--method", "sdi", "--noise", "psychic", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown noise 'psychic'" in err[0]


@pytest.mark.parametrize("flags, message", [
    (["--method", "esd", "--esd-lambda", "1.5"], "--esd-lambda must be between 0 and 1"),
    (["--method", "sds", "--esd-lambda", "0.5"], "--esd-lambda is an option of baseline 'score_model'"),
    (["--method", "vsd", "--uncond-prob", "-0.1"], "--uncond-prob must be between 0 and 1"),
    (["--method", "vsd", "--score-model", "lora"], "unknown score model 'lora'"),
    (["--t-max-milestone", "0.2"], "--t-max-milestone: a milestone is FRACTION:VALUE"),
    (["--resolution-milestone", "0.2:12.5"], "--resolution-milestone: a resolution milestone is FRACTION:PIXELS"),
])
def test_bad_score_model_flags_exit_2_with_one_line(flags, message, tmp_path, capsys):
    code = main(["generate", "a smiling head", "--steps", "2", "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_bad_rectifier_mode_is_one_line_error(tmp_path):
    done = generate_in_subprocess(["a head", "--method", "usd", "--rectifier-mode", "fast", "-o", str(tmp_path / "r")])
    assert done.returncode == 2 and "rectifier mode" in done.stderr and "Traceback" not in done.stderr


def test_unknown_pose_classifier_is_one_line_error(tmp_path):
    done = generate_in_subprocess(["a head", "--method", "usd", "--pose-classifier", "oracle",
                                   "-o", str(tmp_path / "r")])
    assert done.returncode == 2 and "pose classifier" in done.stderr and "Traceback" not in done.stderr
