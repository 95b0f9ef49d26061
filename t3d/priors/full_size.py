"""Full-size models with random weights, built offline and cached once: speed and memory checks.

- "sd15", "sd21-base", "sd21": diffusers folders with the exact SD 1.5 / SD 2.1-base / SD 2.1
  (768 px, v-prediction) architectures (t3d.priors.random_sd), CLIP tokenizers of the real
  vocabulary size and padding, the real schedulers; for `t3d generate --model FOLDER`;
- "dinov2-small-reg": a transformers Dinov2WithRegistersModel folder with the config of
  facebook/dinov2-with-registers-small; for `--pose-features FOLDER`.

Same shapes, so the same FLOPs and memory as the real checkpoints; the outputs are noise. Weights
are stored in fp32 like the real repos' default (non-variant) files, which is what t3d loads
(it never asks for the fp16 variant): the load time and load memory measured with these folders
are the ones a user with a real download sees, and CUDA runs cast to fp16 at load as they would.
Sizes on disk: about 4.3 GB (sd15), 5.2 GB (sd21-base, sd21), 88 MB (dinov2-small-reg).

Folders live in $T3D_CACHE/full-size/NAME (default ~/.cache/t3d) and are written atomically
(t3d.priors.cached_folder): an interrupted build is never taken as complete.

    python -m t3d.priors.full_size sd15 sd21-base dinov2-small-reg   # prints NAME<TAB>FOLDER
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from t3d.errors import T3dError
from t3d.priors.cached_folder import cached_folder
from t3d.priors.random_sd import build_network, save_sd_folder

FORMAT_VERSION = 1  # bump when a builder changes what it writes: cached folders are then rebuilt
SD_MODELS = ("sd15", "sd21-base", "sd21")
DINOV2 = "dinov2-small-reg"
FULL_SIZE_MODELS = SD_MODELS + (DINOV2,)
# Bytes needed while building (fp32 weights plus the tokenizer), with room to spare.
_DISK_NEEDED = {"sd15": 4.6e9, "sd21-base": 5.5e9, "sd21": 5.5e9, DINOV2: 0.1e9}


def dinov2_small_reg_config():
    """facebook/dinov2-with-registers-small: ViT-S/14, 384 wide, 12 layers, 6 heads, 4 registers,
    position embeddings for 518 px (interpolated to the input size)."""
    from transformers import Dinov2WithRegistersConfig

    return Dinov2WithRegistersConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                                     patch_size=14, image_size=518, num_register_tokens=4, hidden_act="gelu",
                                     layer_norm_eps=1e-6, layerscale_value=1.0, qkv_bias=True,
                                     use_swiglu_ffn=False, interpolate_antialias=True, interpolate_offset=0.0)


def build_dinov2(device: torch.device | str = "cpu", seed: int | None = 0):
    from transformers import Dinov2WithRegistersModel

    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        return Dinov2WithRegistersModel(dinov2_small_reg_config())


def _check_name(name: str) -> None:
    if name not in FULL_SIZE_MODELS:
        raise T3dError(f"unknown full-size model {name!r}; choose from {', '.join(FULL_SIZE_MODELS)}")


def parameter_counts(name: str) -> dict[str, int]:
    """Parameters per network, counted on the meta device (nothing allocated, about a second)."""
    _check_name(name)
    if name == DINOV2:
        return {"dinov2": sum(p.numel() for p in build_dinov2("meta", seed=None).parameters())}
    return {part: sum(p.numel() for p in build_network(name, part, device="meta").parameters())
            for part in ("unet", "vae", "text_encoder")}


def full_size_root(cache: str | Path | None = None) -> Path:
    from t3d.priors.references import cache_dir

    return Path(cache) if cache is not None else cache_dir() / "full-size"


def _check_disk(name: str, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < _DISK_NEEDED[name]:
        raise T3dError(f"building the full-size {name} folder needs about {_DISK_NEEDED[name] / 1e9:.1f} GB "
                       f"free in {root}, only {free / 1e9:.1f} GB is; set T3D_CACHE to a larger disk")


def full_size_folder(name: str, cache: str | Path | None = None, device: torch.device | str = "cpu",
                     seed: int = 0, log=None) -> Path:
    """The cached folder of full-size model `name`, built first if missing or incomplete.

    `device` is where the random weights are initialised (a GPU is much faster); `log(text)` is
    called with progress lines while building.
    """
    _check_name(name)
    root = full_size_root(cache)
    folder = root / name
    info = {"model": name, "format": FORMAT_VERSION, "seed": seed}

    def build(tmp: Path) -> None:
        _check_disk(name, root)
        if name == DINOV2:
            if log is not None:
                log(f"building {name} (random weights)")
            build_dinov2(device, seed).float().save_pretrained(tmp)
        else:
            save_sd_folder(tmp, name, seed=seed, device=device, log=log)

    try:
        path, _ = cached_folder(folder, info, build)
    except OSError as exc:
        raise T3dError(f"cannot write the full-size {name} folder in {root}: {exc.strerror or exc}") from None
    return path


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build (once) and print the full-size random-weight model folders.")
    parser.add_argument("names", nargs="*", default=["sd15", "sd21-base", DINOV2],
                        help=f"any of {', '.join(FULL_SIZE_MODELS)} (default: sd15 sd21-base {DINOV2})")
    parser.add_argument("--cache", default=None, help="parent folder (default: $T3D_CACHE/full-size)")
    parser.add_argument("--device", default="cpu", help="where to initialise the weights (cpu or cuda)")
    parser.add_argument("--counts", action="store_true", help="also print parameter counts and sizes on disk")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            folder = full_size_folder(name, args.cache, args.device, log=lambda s: print(s, file=sys.stderr))
            line = f"{name}\t{folder}"
            if args.counts:
                counts = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in parameter_counts(name).items())
                line += f"\t{counts}\t{folder_bytes(folder) / 1e9:.2f} GB"
            print(line, flush=True)
    except T3dError as exc:
        print(f"t3d: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
