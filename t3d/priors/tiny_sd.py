"""A tiny, randomly initialised Stable Diffusion folder, built offline, for tests and demos;
also random-weight SD 1.5 / 2.1-base architectures (same compute as the real ones) for benchmarks.

The folder has the diffusers layout of a real SD repo (unet/, vae/, text_encoder/, tokenizer/,
scheduler/, model_index.json), so `StableDiffusionPrior("/path/to/it")` exercises exactly the
loading code a real `--model /path/to/diffusers-folder` does. Its outputs are meaningless noise.

No tokenizer can be downloaded offline, so we write a minimal CLIP byte-level BPE vocabulary:
the 256 byte symbols, each again with CLIP's end-of-word marker "</w>", a handful of merges and
the two special tokens. Any text tokenises (bytes always fall back to single symbols).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

LATENT_SIZE = 16
HIDDEN = 32  # text width == UNet cross-attention width
MAX_TOKENS = 77  # the real CLIP context length, so shapes match real models
_MERGES = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "n</w>")]


def _byte_symbols() -> list[str]:
    """The printable stand-in character for each byte, as in GPT-2/CLIP byte-level BPE.

    Printable latin-1 bytes map to themselves; the others are shifted to code points 256+
    so that no symbol is whitespace or a control character.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    symbols, shifted = {}, 0
    for b in range(256):
        if b in keep:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + shifted)
            shifted += 1
    return [symbols[b] for b in range(256)]


def _write_tokenizer(folder: Path) -> int:
    """Write vocab.json / merges.txt / configs in the layout of SD's CLIP tokenizer; return vocab size."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in _MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in _MERGES)
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_TOKENS,
              "do_lower_case": True, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return len(tokens)


# Architectures as constructor arguments: (UNet2DConditionModel, AutoencoderKL, CLIPTextConfig).
# "tiny": latent 16x16, VAE factor 2 -> native image 32 px; everything fits in a few MB.
# Norm groups of 32 need channel counts divisible by 32.
_TINY = (
    dict(sample_size=LATENT_SIZE, in_channels=4, out_channels=4, layers_per_block=1,
         block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=HIDDEN,
         attention_head_dim=8),
    dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32),
         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
         layers_per_block=1, sample_size=2 * LATENT_SIZE, scaling_factor=0.18215),
    dict(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
         projection_dim=HIDDEN),
)
# The real SD VAE (identical in 1.x and 2.x): factor 8, 512 px <-> 64x64x4 latents.
_SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               layers_per_block=2, sample_size=512, scaling_factor=0.18215)
_SD_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
ARCHITECTURES = {
    "tiny": _TINY,
    # SD 1.5: CLIP ViT-L/14 text encoder (768 wide), 8 heads of width 40/80/160 in the UNet.
    "sd15": (dict(_SD_UNET, cross_attention_dim=768, attention_head_dim=8), _SD_VAE,
             dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  projection_dim=768, hidden_act="quick_gelu")),
    # SD 2.1-base: OpenCLIP ViT-H/14 text encoder (1024 wide, penultimate layer = 23 layers),
    # heads of width 64, linear projections in the transformer blocks.
    "sd21-base": (dict(_SD_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                       use_linear_projection=True), _SD_VAE,
                  dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                       projection_dim=512, hidden_act="gelu")),
}


def random_sd_parts(tokenizer_dir: str | Path, arch: str = "tiny", prediction_type: str = "epsilon",
                    seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """Randomly initialised unet, vae, text_encoder, tokenizer, scheduler of an SD architecture.

    Same shapes and compute as the real model for "sd15" / "sd21-base" (benchmarks); the
    tokenizer is the tiny offline one (written to `tokenizer_dir`) whatever the architecture,
    since its ids only need to be valid for the text encoder. Modules are created on `device`
    (initialising a 0.9B-parameter UNet is much faster on a GPU).
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be epsilon or v_prediction, got {prediction_type!r}")
    unet_args, vae_args, text_args = ARCHITECTURES[arch]
    torch.manual_seed(seed)

    vocab_size = _write_tokenizer(Path(tokenizer_dir))
    # Special ids follow from the vocabulary order in _write_tokenizer: bos, eos are the last two.
    bos_id, eos_id = vocab_size - 2, vocab_size - 1
    text_config = CLIPTextConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS,
                                 bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id, **text_args)
    with torch.device(device):
        parts = {"text_encoder": CLIPTextModel(text_config), "unet": UNet2DConditionModel(**unet_args),
                 "vae": AutoencoderKL(**vae_args)}
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    # SD's scaled-linear schedule, so timesteps mean what they mean for the real model.
    parts["scheduler"] = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", prediction_type=prediction_type,
                                       clip_sample=False)
    return parts


def build_tiny_sd(folder: str | Path, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """Create a tiny random SD model in `folder` (diffusers layout) and return the folder."""
    import diffusers
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = random_sd_parts(folder / "tokenizer", "tiny", prediction_type, seed)
    for name in ("text_encoder", "unet", "vae", "scheduler"):
        parts[name].save_pretrained(folder / name)

    index = {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "safety_checker": [None, None], "feature_extractor": [None, None],
        "requires_safety_checker": False, "_transformers_version": transformers.__version__,
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
