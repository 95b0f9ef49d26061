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


def preparation_note(cfg) -> str | None:
    """A line for the user when loading the prior will take a while the first time on this machine."""
    if is_analytic(cfg.model) and not cfg.model.startswith("analytic:") and cfg.analytic.source == "builtin":
        from t3d.priors.references import builtin_references_cached, cache_dir

        if not builtin_references_cached(cfg.analytic):
            return (f"rendering the built-in prior's reference images, once on this machine (a few minutes "
                    f"on 2 CPU cores; cached in {cache_dir()})")
    return None


def build_prior(cfg, device: torch.device):
    """The prior of `cfg.model`; `auto` is resolved here too (library callers), and recorded in cfg."""
    from t3d.priors import auto

    cfg.model = auto.resolve(cfg.model).model
    if is_analytic(cfg.model):
        from t3d.priors.analytic import AnalyticPrior

        configure_analytic_source(cfg)
        return AnalyticPrior(cfg.analytic, device)
    from t3d.priors.stable_diffusion import StableDiffusionPrior

    sd = cfg.sd
    return StableDiffusionPrior(cfg.model, device, dtype=sd.dtype, revision=sd.revision,
                                attention_slicing=sd.attention_slicing, channels_last=sd.channels_last,
                                vae_checkpointing=sd.vae_checkpointing or sd.low_vram,
                                unet_checkpointing=sd.unet_checkpointing or sd.low_vram, latent_mode=sd.latent_mode)
