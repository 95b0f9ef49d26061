"""Every method family end to end through `t3d generate` on the analytic prior: the run's outputs,
its saved config (loaded back), its log, and a resume that continues the method's own state."""

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from t3d.cli import main
from tests.conftest import TINY_RUN
from tests.helpers.cli import generate_in_subprocess

PROMPT = "a smiling head"


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_generate_gsd_on_the_analytic_prior(tiny_run_args, tmp_path, capsys):
    out = tmp_path / "gsd"
    code = main(["generate", "a smiling head", "--method", "gsd", "--steps", "4", "--out", str(out),
                 *tiny_run_args])
    assert code == 0, capsys.readouterr().err
    guidance = yaml.safe_load((out / "config.yaml").read_text())["guidance"]
    assert guidance["noise"]["kind"] == "consistent" and guidance["terms"]["consistency"]["weight"] == 5.0
    last = _log(out)[-1]
    assert last["step"] == 4 and 0 < last["grad_consistency"] <= 10
    keys = load_file(str(out / "checkpoints" / "step_000004.safetensors")).keys()
    assert any("consistent_noise" in k and "surface_values" in k for k in keys)


def test_consistent_noise_composes_with_sds_and_score_clip(tiny_run_args, tmp_path, capsys):
    out = tmp_path / "sds-consistent"
    code = main(["generate", "a smiling head", "--method", "sds", "--noise", "consistent", "--score-clip", "0.5:2",
                 "--steps", "2", "--out", str(out), "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 0, capsys.readouterr().err
    guidance = yaml.safe_load((out / "config.yaml").read_text())["guidance"]
    assert guidance["noise"]["kind"] == "consistent" and guidance["terms"]["consistency"]["weight"] == 0.0
    assert guidance["post"]["score_clip"] == [0.5, 2.0]
    assert "grad_consistency" not in _log(out)[-1]


def test_generate_sdi_on_the_analytic_prior(tmp_path):
    run = tmp_path / "sdi"
    assert main(["generate", "a smiling head", "--method", "sdi", "--steps", "5", "--score-clip", "2:8",
                 "--out", str(run), "--no-video", "--no-mesh", *TINY_RUN]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 5
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["guidance"]["noise"]["kind"] == "inversion" and cfg["method"] == "sdi"
    assert cfg["guidance"]["post"]["score_clip"] == [2.0, 8.0]


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_generate_usd_on_analytic_and_resume_keeps_the_ema(tiny_run_args, tmp_path):
    out = tmp_path / "run"
    done = generate_in_subprocess(["a smiling head", "--method", "usd", "--steps", "2", "-o", str(out), "--no-video",
                      "--no-mesh", *tiny_run_args])
    assert done.returncode == 0, done.stderr[-2000:]
    first = load_file(str(out / "checkpoints" / "step_000002.safetensors"))["guidance/pose_marginals/pbar"]
    assert not torch.equal(first, torch.full((10, 4), 0.25))
    done = generate_in_subprocess(["--resume", str(out), "--steps", "4", "--no-video", "--no-mesh"])
    assert done.returncode == 0, done.stderr[-2000:]
    later = load_file(str(out / "checkpoints" / "step_000004.safetensors"))["guidance/pose_marginals/pbar"]
    changed = (later != first).any(dim=1)
    unchanged_rows = ~changed
    assert torch.equal(later[unchanged_rows], first[unchanged_rows])  # resumed, not re-initialised
    assert changed.any()


@pytest.mark.parametrize("method, kind", [("vsd", "network"), ("esd", "auto")])
def test_generate_vsd_and_esd_write_the_usual_outputs(method, kind, tmp_path):
    run = tmp_path / method
    assert main(["generate", PROMPT, "--method", method, "--steps", "4", "--out", str(run), *TINY_RUN,
                 "--score-model", kind]) == 0
    assert (run / "video.mp4").stat().st_size > 0 and (run / "mesh.glb").is_file()
    assert (run / "previews" / "step_000004.png").is_file()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and np.isfinite(records[-1]["loss"])
    baseline = yaml.safe_load((run / "config.yaml").read_text())["guidance"]["baseline"]
    assert baseline["kind"] == "score_model" and baseline["esd_lambda"] == (0.5 if method == "esd" else 0.0)
    assert baseline["backbone"] == kind
    ck = load_file(run / "checkpoints" / "step_000004.safetensors")
    if kind == "network":
        assert any(k.startswith("guidance/score_model/weights/net.") for k in ck)
        assert any(k.startswith("guidance/score_model/optim/") for k in ck)
    else:  # auto on the analytic prior: the render kernel, whose state is its memory of 4 steps x 1 render
        assert ck["guidance/score_model/memory/renders"].shape[0] == 4


def test_esd_resume_equals_an_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY_RUN, "--no-video", "--no-mesh", "--method", "esd", "--esd-lambda", "0.7", "--uncond-prob", "0.3"]
    assert main(["generate", "a mug", "--steps", "6", "--out", str(straight), *common]) == 0
    assert main(["generate", "a mug", "--steps", "4", "--out", str(split), *common]) == 0
    assert main(["generate", "--resume", str(split), "--steps", "6", "--no-video", "--no-mesh"]) == 0
    a = load_file(straight / "checkpoints" / "step_000006.safetensors")
    b = load_file(split / "checkpoints" / "step_000006.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("guidance/score_model/") for k in a)
    # Bit-exact: the same process and thread count run the same kernels, the checkpoint holds every
    # fp32 state exactly (weights, Adam moments and step counts), and each step draws from a
    # generator seeded by (seed, step).
    for key in a:  # field, score-model weights and their AdamW state alike
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


def test_generate_dsds_with_a_local_mlm_folder(tiny_bert, tiny_run_args, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["generate", "a smiling head", "--method", "dsds", "--steps", "2", "--out", str(out),
                 "--no-video", "--no-mesh", "--mlm", str(tiny_bert), "--prompt-debias", "on",
                 "--set", "prompts.debias.threshold=10.0", *tiny_run_args])
    assert code == 0
    err = capsys.readouterr().err
    # Threshold 10 drops every word it may; "head" names the analytic prior's object and stays.
    assert "front: 'head'" in err and "top: 'head'" in err


def test_generate_dsds_offline_without_mlm_runs_with_a_note(tiny_run_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["generate", "a smiling head", "--method", "dsds", "--steps", "2", "--out", str(tmp_path / "r"),
                 "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 0
    assert capsys.readouterr().err.count("prompt debiasing skipped") == 1
    code = main(["generate", "a smiling head", "--method", "dsds", "--prompt-debias", "on", "--steps", "2",
                 "--out", str(tmp_path / "r2"), "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 2 and not (tmp_path / "r2").exists()  # nothing written
    assert "bert-base-uncased" in capsys.readouterr().err
