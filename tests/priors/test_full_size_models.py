"""Full-size random models: the architectures match the published models, the CLIP tokenizer is
real-sized and valid, and the cache never takes a half-written folder as complete.

Nothing here allocates a full-size network: parameters are counted on the meta device.
"""

import json

import pytest
import torch

from t3d.errors import T3dError
from t3d.priors import clip_vocab
from t3d.priors.cached_folder import MANIFEST, cached_folder, is_complete
from t3d.priors.full_size import DINOV2, dinov2_small_reg_config, full_size_folder, parameter_counts
from t3d.priors.random_sd import architecture, scheduler_config, text_config, write_tokenizer

# Parameter counts of the released checkpoints (their model cards / the diffusers and transformers
# classes loading them): SD 1.5 UNet 859.52M, SD 2.x UNet 865.91M, the SD VAE 83.65M, CLIP ViT-L/14
# text 123.06M, OpenCLIP ViT-H/14 text as SD 2.x stores it (23 layers) 340.39M, DINOv2 ViT-S/14 with
# registers 22.06M.
PUBLISHED_MILLIONS = {
    "sd15": {"unet": 859.52, "vae": 83.65, "text_encoder": 123.06},
    "sd21-base": {"unet": 865.91, "vae": 83.65, "text_encoder": 340.39},
    "sd21": {"unet": 865.91, "vae": 83.65, "text_encoder": 340.39},
    DINOV2: {"dinov2": 22.06},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_parameter_counts_match_the_published_models(name):
    counts = parameter_counts(name)
    assert {k: round(v / 1e6, 2) for k, v in counts.items()} == PUBLISHED_MILLIONS[name]


def test_architectures_have_the_real_widths_and_prediction_types():
    assert architecture("sd15").text["hidden_size"] == 768 and architecture("sd15").unet["cross_attention_dim"] == 768
    sd2 = architecture("sd21-base")
    assert sd2.text["hidden_size"] == 1024 and sd2.text["num_hidden_layers"] == 23
    assert sd2.unet["cross_attention_dim"] == 1024 and sd2.unet["use_linear_projection"]
    assert scheduler_config("sd15")["prediction_type"] == "epsilon"
    assert scheduler_config("sd21-base")["prediction_type"] == "epsilon"
    assert scheduler_config("sd21")["prediction_type"] == "v_prediction"
    dino = dinov2_small_reg_config()
    assert (dino.hidden_size, dino.num_hidden_layers, dino.num_attention_heads, dino.patch_size,
            dino.num_register_tokens) == (384, 12, 6, 14, 4)


def test_scheduler_config_reads_as_ddim_with_sd_betas_and_no_clipping(tmp_path):
    from diffusers import DDIMScheduler

    for arch in ("sd15", "sd21"):
        (tmp_path / arch).mkdir()
        (tmp_path / arch / "scheduler_config.json").write_text(json.dumps(scheduler_config(arch)))
        ddim = DDIMScheduler.from_pretrained(tmp_path / arch)
        assert ddim.config.prediction_type == scheduler_config(arch)["prediction_type"]
        assert not ddim.config.clip_sample  # DDIM's default would clip x0 to [-1, 1]; SD's configs do not
        # scaled_linear: beta_t = (linspace(sqrt(0.00085), sqrt(0.012), 1000))^2; the endpoints are
        # exact up to the float32 square of a float32 root (relative error ~1e-7).
        assert torch.allclose(ddim.betas[[0, -1]], torch.tensor([0.00085, 0.012]), rtol=1e-6)


def test_synthetic_merges_are_valid_bpe_of_the_real_count():
    merges = clip_vocab.synthetic_merges()
    assert len(merges) == clip_vocab.CLIP_MERGES == 48894
    known = set(clip_vocab.clip_byte_symbols()) | {s + "</w>" for s in clip_vocab.clip_byte_symbols()}
    for a, b in merges:
        assert a in known and b in known  # both halves exist before the merge
        assert a + b not in known  # and the merge makes a new token
        known.add(a + b)


@pytest.mark.parametrize("arch, pad", [("sd15", "<|endoftext|>"), ("sd21-base", "!")])
def test_tokenizer_has_clip_size_ids_and_the_repo_padding(tmp_path, arch, pad):
    from transformers import CLIPTokenizer

    ids = write_tokenizer(tmp_path, arch)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path))
    assert len(tok) == ids.vocab_size == 49408
    assert (tok.bos_token_id, tok.eos_token_id) == (49406, 49407)  # CLIP's ids for its special tokens
    assert tok.pad_token == pad and tok.pad_token_id == (0 if pad == "!" else 49407)
    out = tok(["a smiling head, from the back view"], padding="max_length", max_length=77, truncation=True)
    row = out.input_ids[0]
    assert len(row) == 77 and row[0] == 49406 and max(row) < 49408
    end = row.index(49407)
    assert all(i == tok.pad_token_id for i in row[end + 1:])
    assert all(i < 49406 for i in row[1:end])  # the words are vocabulary tokens, not unknowns


def test_text_config_keeps_the_real_repos_special_ids():
    ids = clip_vocab.TokenizerIds(49408, 49406, 49407, 0)
    cfg = text_config("sd21-base", ids)
    assert (cfg.vocab_size, cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (49408, 0, 2, 1)


def _write_two_files(folder):
    (folder / "a.txt").write_text("hello")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.bin").write_bytes(b"\0" * 10)


def test_cached_folder_is_built_once_and_reused(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        _write_two_files(folder)

    target = tmp_path / "cache" / "model"
    path, built = cached_folder(target, {"model": "x", "format": 1}, build)
    assert built and path == target and (target / "sub" / "b.bin").read_bytes() == b"\0" * 10
    assert cached_folder(target, {"model": "x", "format": 1}, build) == (target, False)
    assert len(calls) == 1 and calls[0] != target  # built under another name, then moved in
    assert sorted(p.name for p in target.parent.iterdir()) == [".model.lock", "model"]  # nothing partial left


def test_a_failed_build_leaves_no_folder_that_counts_as_complete(tmp_path):
    def dies_halfway(folder):
        (folder / "a.txt").write_text("hello")
        raise KeyboardInterrupt

    target = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        cached_folder(target, {"model": "x"}, dies_halfway)
    assert not target.exists() and not list(tmp_path.glob(".model.partial-*"))


def test_a_damaged_or_outdated_folder_is_rebuilt(tmp_path):
    target = tmp_path / "model"
    cached_folder(target, {"model": "x", "format": 1}, _write_two_files)
    (target / "sub" / "b.bin").write_bytes(b"\0" * 3)  # truncated after the build
    assert not is_complete(target, {"model": "x", "format": 1})
    assert cached_folder(target, {"model": "x", "format": 1}, _write_two_files)[1]
    assert (target / "sub" / "b.bin").stat().st_size == 10
    assert cached_folder(target, {"model": "x", "format": 2}, _write_two_files)[1]  # new format version
    assert json.loads((target / MANIFEST).read_text())["format"] == 2


def test_a_stale_partial_folder_is_never_used_and_is_cleaned_up(tmp_path):
    stale = tmp_path / ".model.partial-999999"
    stale.mkdir()
    (stale / "a.txt").write_text("half")
    target = tmp_path / "model"
    assert not is_complete(stale, {"model": "x"})  # no manifest
    cached_folder(target, {"model": "x"}, _write_two_files)
    assert not stale.exists() and is_complete(target, {"model": "x"})


@pytest.mark.slow  # a real-size network (22M parameters, 88 MB written): small, but full size
def test_full_size_dinov2_folder_loads_as_pose_features(tmp_path):
    from t3d.guidance.pose.features import Dinov2PoseFeatures

    folder = full_size_folder(DINOV2, cache=tmp_path)
    features = Dinov2PoseFeatures(str(folder))
    assert sum(p.numel() for p in features.model.parameters()) == parameter_counts(DINOV2)["dinov2"]
    cls, patches = features(torch.rand(1, 3, 64, 64))
    assert cls.shape == (1, 384) and patches.shape == (1, 16, 16, 384)  # 224 px / patch 14 = 16
    assert full_size_folder(DINOV2, cache=tmp_path) == folder  # reused, not rebuilt


def test_unknown_full_size_name_is_a_one_line_error(tmp_path):
    with pytest.raises(T3dError, match="unknown full-size model 'sd3'"):
        full_size_folder("sd3", cache=tmp_path)


@pytest.mark.slow  # builds (once per $T3D_CACHE) and loads the 5.2 GB SD 2.1-base folder: ~2 min, ~6 GB RAM
def test_full_size_sd21_base_folder_loads_through_the_real_loader():
    from t3d.priors.stable_diffusion import StableDiffusionPrior

    prior = StableDiffusionPrior(str(full_size_folder("sd21-base")), "cpu")
    assert prior.prediction_type == "epsilon" and prior.native_image_size == 512 and prior.max_tokens == 77
    cond = prior.embed(["a smiling head"])
    assert cond.shape == (1, 77, 1024)  # OpenCLIP ViT-H width == the UNet's cross-attention width
    with torch.no_grad():
        eps = prior.eps(torch.randn(1, 4, 64, 64), torch.tensor([500]), cond)
    assert eps.shape == (1, 4, 64, 64) and torch.isfinite(eps).all()
