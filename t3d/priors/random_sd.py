"""Stable Diffusion architectures with random weights: the tiny test model and the real sizes.

An `SDArchitecture` holds the constructor arguments of the three networks, the tokenizer and the
scheduler config; `random_sd_parts` builds the networks in memory (benchmarks), `save_sd_folder`
writes them in the diffusers layout of a real SD repo (unet/, vae/, text_encoder/, tokenizer/,
scheduler/, model_index.json), so `StableDiffusionPrior(folder)` runs exactly the loading code a
real `--model /path/to/diffusers-folder` does. Outputs are meaningless noise: speed and memory only.

The real-size entries copy the public configs of the SD 1.5 and SD 2.1(-base) repos: the same
shapes, hence the same FLOPs and memory as the real checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from t3d.priors import clip_vocab

TINY_LATENT_SIZE = 16
TINY_HIDDEN = 32  # text width == UNet cross-attention width
_TINY_MERGES = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "n</w>")]


@dataclass(frozen=True)
class SDArchitecture:
    """Everything that fixes an SD model's shapes, plus its tokenizer and noise schedule."""

    unet: dict
    vae: dict
    text: dict  # CLIPTextConfig arguments (vocabulary size and special ids come from the tokenizer)
    prediction_type: str = "epsilon"
    tokenizer: str = "clip"  # clip: the real-size synthetic vocabulary | tiny: 517 tokens
    pad_token: str = clip_vocab.EOS  # SD 1.x pads with <|endoftext|>, SD 2.x with "!"
    # The real text encoders' configs keep CLIP's original special ids (bos 0, eos 2, pad 1), which
    # transformers reads as "pool at the highest id"; the tiny model uses its own vocabulary's ids.
    legacy_special_ids: bool = True
    scheduler_class: str = "PNDMScheduler"
    extra_scheduler: dict = field(default_factory=dict)


_SCALED_LINEAR = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "trained_betas": None, "clip_sample": False}
# The real SD schedulers are PNDM with these settings; t3d reads any of them as DDIM (betas matter).
_SD_PNDM = {"set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1}

# The SD VAE (identical in 1.x and 2.x): factor 8, 512 px <-> 64x64x4 latents.
_SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               layers_per_block=2, norm_num_groups=32, act_fn="silu", sample_size=512, scaling_factor=0.18215)
_SD_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
# CLIP ViT-L/14's text tower (SD 1.x).
_CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    projection_dim=768, hidden_act="quick_gelu")
# OpenCLIP ViT-H/14's text tower as SD 2.x ships it: 24 layers less the last (SD 2 conditions on
# the penultimate layer, so the repo stores 23).
_OPENCLIP_H_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                        projection_dim=512, hidden_act="gelu")
_SD2_UNET = dict(_SD_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)

ARCHITECTURES: dict[str, SDArchitecture] = {
    # latent 16x16, VAE factor 2 -> native image 32 px; everything fits in a few MB.
    # Norm groups of 32 need channel counts divisible by 32.
    "tiny": SDArchitecture(
        unet=dict(sample_size=TINY_LATENT_SIZE, in_channels=4, out_channels=4, layers_per_block=1,
                  block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TINY_HIDDEN,
                  attention_head_dim=8),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32),
                 down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                 layers_per_block=1, sample_size=2 * TINY_LATENT_SIZE, scaling_factor=0.18215),
        text=dict(hidden_size=TINY_HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  projection_dim=TINY_HIDDEN),
        tokenizer="tiny", legacy_special_ids=False, scheduler_class="DDPMScheduler"),
    # SD 1.5: CLIP ViT-L/14 text encoder (768 wide), 8 heads of width 40/80/160 in the UNet.
    "sd15": SDArchitecture(unet=dict(_SD_UNET, cross_attention_dim=768, attention_head_dim=8), vae=_SD_VAE,
                           text=_CLIP_L_TEXT, extra_scheduler=_SD_PNDM),
    # SD 2.1-base: OpenCLIP ViT-H/14 text encoder (1024 wide), heads of width 64, linear projections.
    "sd21-base": SDArchitecture(unet=_SD2_UNET, vae=_SD_VAE, text=_OPENCLIP_H_TEXT, pad_token="!",
                                extra_scheduler=_SD_PNDM),
    # SD 2.1 (768 px, v-prediction): the 2.1-base networks at 96x96 latents.
    "sd21": SDArchitecture(unet=dict(_SD2_UNET, sample_size=96), vae=dict(_SD_VAE, sample_size=768),
                           text=_OPENCLIP_H_TEXT, pad_token="!", prediction_type="v_prediction",
                           extra_scheduler=_SD_PNDM),
}


def architecture(arch: str) -> SDArchitecture:
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    return ARCHITECTURES[arch]


def write_tokenizer(folder: str | Path, arch: str = "tiny") -> clip_vocab.TokenizerIds:
    """The architecture's tokenizer folder: 517 tokens for "tiny", CLIP's 49408 for the others."""
    spec = architecture(arch)
    if spec.tokenizer == "tiny":
        return clip_vocab.write_clip_tokenizer(folder, _TINY_MERGES, clip_vocab.byte_order_symbols())
    return clip_vocab.write_clip_tokenizer(folder, clip_vocab.synthetic_merges(), clip_vocab.clip_byte_symbols(),
                                           pad_token=spec.pad_token)


def text_config(arch: str, ids: clip_vocab.TokenizerIds):
    from transformers import CLIPTextConfig

    spec = architecture(arch)
    special = (dict(bos_token_id=0, eos_token_id=2, pad_token_id=1) if spec.legacy_special_ids
               else dict(bos_token_id=ids.bos_id, eos_token_id=ids.eos_id, pad_token_id=ids.pad_id))
    return CLIPTextConfig(vocab_size=ids.vocab_size, max_position_embeddings=clip_vocab.MAX_TOKENS,
                          **special, **spec.text)


def scheduler_config(arch: str, prediction_type: str | None = None) -> dict:
    """The scheduler_config.json of the real repo (class, betas, prediction type)."""
    import diffusers

    spec = architecture(arch)
    prediction_type = prediction_type or spec.prediction_type
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be epsilon or v_prediction, got {prediction_type!r}")
    return {"_class_name": spec.scheduler_class, "_diffusers_version": diffusers.__version__,
            **_SCALED_LINEAR, **spec.extra_scheduler, "prediction_type": prediction_type}


_PART_SEED_OFFSET = {"text_encoder": 0, "unet": 1, "vae": 2}


def build_network(arch: str, part: str, ids: clip_vocab.TokenizerIds | None = None, seed: int | None = None,
                  device: torch.device | str = "cpu"):
    """One randomly initialised network ("unet", "vae" or "text_encoder"). With a `seed` it is
    seeded on its own, so any part can be rebuilt alone; None continues torch's global stream.
    On device "meta" nothing is allocated (parameter counts)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    spec = architecture(arch)
    if seed is not None:
        torch.manual_seed(seed * len(_PART_SEED_OFFSET) + _PART_SEED_OFFSET[part])
    with torch.device(device):
        if part == "unet":
            return UNet2DConditionModel(**spec.unet)
        if part == "vae":
            return AutoencoderKL(**spec.vae)
        if ids is None:
            ids = clip_vocab.TokenizerIds(clip_vocab.CLIP_VOCAB_SIZE, 0, 2, 1)
        return CLIPTextModel(text_config(arch, ids))


def random_sd_parts(tokenizer_dir: str | Path, arch: str = "tiny", prediction_type: str | None = None,
                    seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """Randomly initialised unet, vae, text_encoder, tokenizer, scheduler of an SD architecture.

    The tokenizer is written to `tokenizer_dir`; `prediction_type` None means the architecture's
    own. Modules are created on `device` (initialising a 0.9B-parameter UNet is faster on a GPU).
    """
    from diffusers import DDPMScheduler
    from transformers import CLIPTokenizer

    sched = scheduler_config(arch, prediction_type)  # validates arch and prediction type first
    ids = write_tokenizer(tokenizer_dir, arch)
    torch.manual_seed(seed)  # one stream for the three, in this order (the tiny test models' weights)
    parts = {name: build_network(arch, name, ids, None, device) for name in ("text_encoder", "unet", "vae")}
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    # SD's scaled-linear betas, so timesteps mean what they mean for the real model (the prior
    # turns any scheduler config into DDIM).
    parts["scheduler"] = DDPMScheduler(num_train_timesteps=sched["num_train_timesteps"], beta_start=sched["beta_start"],
                                       beta_end=sched["beta_end"], beta_schedule=sched["beta_schedule"],
                                       prediction_type=sched["prediction_type"], clip_sample=False)
    return parts


def model_index() -> dict:
    import diffusers
    import transformers

    return {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "safety_checker": [None, None], "feature_extractor": [None, None],
        "requires_safety_checker": False, "_transformers_version": transformers.__version__,
    }


def save_sd_folder(folder: str | Path, arch: str, prediction_type: str | None = None, seed: int = 0,
                   device: torch.device | str = "cpu", log=None) -> Path:
    """Write a random SD model of `arch` in the diffusers layout; one network in memory at a time
    (a full-size UNet alone is 3.4 GB in fp32). Weights are stored in fp32, as the default
    (non-variant) files of the real repos are."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sched = scheduler_config(arch, prediction_type)
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2))
    ids = write_tokenizer(folder / "tokenizer", arch)
    for part in ("text_encoder", "unet", "vae"):
        if log is not None:
            log(f"building {arch} {part} (random weights)")
        net = build_network(arch, part, ids, seed, device).float()
        net.save_pretrained(folder / part)
        del net
    index = model_index()
    index["scheduler"] = ["diffusers", sched["_class_name"]]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
