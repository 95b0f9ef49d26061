"""A tiny, randomly initialised Stable Diffusion folder, built offline, for tests and demos.

The folder has the diffusers layout of a real SD repo, so `StableDiffusionPrior("/path/to/it")`
exercises exactly the loading code a real `--model /path/to/diffusers-folder` does. Its outputs
are meaningless noise. Its tokenizer is a minimal CLIP byte-level BPE vocabulary (the 256 byte
symbols, each again with "</w>", five merges, the two special tokens): any text tokenises.

The architectures (this tiny one and the real SD sizes) live in `t3d.priors.random_sd`; the
full-size folders, cached once, in `t3d.priors.full_size`.
"""

from __future__ import annotations

import json
from pathlib import Path

from t3d.priors.clip_vocab import MAX_TOKENS  # noqa: F401  (re-exported: the real CLIP context length)
from t3d.priors.random_sd import ARCHITECTURES, TINY_HIDDEN, TINY_LATENT_SIZE, model_index, random_sd_parts, write_tokenizer

__all__ = ["ARCHITECTURES", "HIDDEN", "LATENT_SIZE", "MAX_TOKENS", "build_tiny_sd", "random_sd_parts"]

LATENT_SIZE = TINY_LATENT_SIZE
HIDDEN = TINY_HIDDEN


def _write_tokenizer(folder: Path) -> int:
    """The tiny tokenizer in `folder`; returns its vocabulary size."""
    return write_tokenizer(folder, "tiny").vocab_size


def build_tiny_sd(folder: str | Path, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """Create a tiny random SD model in `folder` (diffusers layout) and return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = random_sd_parts(folder / "tokenizer", "tiny", prediction_type, seed)
    for name in ("text_encoder", "unet", "vae", "scheduler"):
        parts[name].save_pretrained(folder / name)
    index = dict(model_index(), scheduler=["diffusers", "DDPMScheduler"])
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
