"""Model-based metrics through the same loading path as `--clip-model DIR` / `--classifier-model DIR`,
with tiny random CLIP and ViT models saved to folders (offline; values are meaningless, the code
paths and the shapes and ranges of the results are what is checked)."""

import json
import math

import pytest
import torch

from t3d.cli import main
from t3d.evaluate.runner import Orbit
from tests.conftest import TINY_RUN
from tests.helpers.tolerances import sum_rounding


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel, ViTConfig, ViTForImageClassification

    from t3d.priors.tiny_sd import _write_tokenizer

    root = tmp_path_factory.mktemp("models")
    clip_dir = root / "clip"
    vocab = _write_tokenizer(clip_dir)
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab - 2,
                         eos_token_id=vocab - 1, pad_token_id=vocab - 1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                           num_hidden_layers=2, num_attention_heads=2), projection_dim=16))
    clip.save_pretrained(clip_dir)
    vit_dir = root / "vit"
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=37, num_labels=5)).save_pretrained(vit_dir)
    return clip_dir, vit_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mm") / "head"
    assert main(["generate", "a smiling head", "--steps", "2", "--out", str(run), "--no-video", "--no-mesh",
                 *TINY_RUN]) == 0
    return run


def test_every_model_metric_from_local_folders(run, tiny_models, capsys):
    clip_dir, vit_dir = tiny_models
    assert main(["evaluate", str(run), "--views", "8", "--clip-model", str(clip_dir), "--classifier-model",
                 str(vit_dir), "--fid-samples", "12", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)[0]
    clip = m["clip"]
    assert 0.0 <= clip["clip_distance"] <= 2.0
    # cEnt is an fp64 entropy (rounding ~1e-16) of at most log 3; its maximum is an fp32 log (6e-8).
    assert 0.0 <= clip["c_ent"] <= math.log(3) + 1e-12
    assert clip["c_ent_max"] == pytest.approx(math.log(3), rel=sum_rounding(1.0, 1))
    assert set(clip["per_azimuth_similarity"]) == {"front", "side", "back", "overhead"}
    assert all(len(v) == 8 and all(-1 <= x <= 1 for x in v) for v in clip["per_azimuth_similarity"].values())
    inc = m["inception"]
    assert 0 <= inc["iq"] <= inc["iv"] + 1e-9 <= math.log(5) + 1e-9  # Jensen: IV >= IQ
    assert inc["ig"] == (inc["iv"] - inc["iq"]) / inc["iq"]  # the same fp64 expression (JSON keeps every bit)
    assert m["a_lpips"]["a_lpips"] > 0 and "no LPIPS weights" in m["a_lpips"]["distance"]
    assert m["fid"]["samples"] == 12 and math.isfinite(m["fid"]["fid"]) and m["fid"]["fid"] >= -1e-6
    assert (run / "eval" / "clip_azimuth.png").is_file()
    assert any("pEnt skipped" in n for n in m["notes"]) and not any("--clip-model" in n for n in m["notes"])


def test_a_model_that_cannot_load_is_skipped_with_a_note(run, tmp_path, capsys):
    assert main(["evaluate", str(run), "--views", "4", "--clip-model", str(tmp_path / "none"), "--json",
                 "--no-write"]) == 0
    m = json.loads(capsys.readouterr().out)[0]
    assert "clip" not in m and any(n.startswith("CLIP metrics skipped: cannot load") for n in m["notes"])


def test_pose_classifier_hook(monkeypatch):
    from t3d.evaluate import pose_entropy

    class Uniform:
        def probs(self, rgb):
            return torch.eye(4)[torch.arange(rgb.shape[0]) % 4]  # every pose class equally often

    monkeypatch.setattr(pose_entropy, "load_pose_classifier", lambda path: Uniform())
    orbit = Orbit(torch.zeros(8, 3, 4, 4), torch.zeros(8), 10.0)
    # An fp64 entropy of four exact quarters: log 4 up to ~1e-16.
    assert pose_entropy.pose_metrics(orbit, "x", [])["pose"]["p_ent"] == pytest.approx(math.log(4), rel=1e-12)
    monkeypatch.undo()
    monkeypatch.setattr(pose_entropy, "POSE_CLASSIFIER_MODULE", "t3d.no_such_module")
    notes = []
    assert pose_entropy.pose_metrics(orbit, "x", notes) == {} and "no USD pose classifier" in notes[0]
