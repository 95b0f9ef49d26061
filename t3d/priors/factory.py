"""Pick the prior named by `--model`: `analytic`, `analytic:FOLDER`, or a diffusers id/folder."""

from __future__ import annotations

from pathlib import Path

import torch

from t3d.errors import T3dError


def is_analytic(model: str) -> bool:
    return model == "analytic" or model.startswith("analytic:")


def configure_analytic_source(cfg) -> None:
    """`--model analytic:PATH` points the analytic prior at a user folder of posed images."""
    if cfg.model.startswith("analytic:"):
        folder = cfg.model.split(":", 1)[1]
        if not folder:
            raise T3dError("--model analytic:PATH needs a folder after the colon")
        cfg.analytic.source = str(Path(folder).expanduser().resolve())


def build_prior(cfg, device: torch.device):
    if is_analytic(cfg.model):
        from t3d.priors.analytic import AnalyticPrior

        configure_analytic_source(cfg)
        return AnalyticPrior(cfg.analytic, device)
    from t3d.priors.stable_diffusion import StableDiffusionPrior

    sd = cfg.sd
    return StableDiffusionPrior(cfg.model, device, dtype=sd.dtype, revision=sd.revision,
                                attention_slicing=sd.attention_slicing or sd.low_vram,
                                channels_last=sd.channels_last,
                                vae_checkpointing=sd.vae_checkpointing or sd.low_vram, latent_mode=sd.latent_mode)
