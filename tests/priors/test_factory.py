"""The prior factory builds the prior a run config names, with the config's knobs."""

import torch

from t3d.priors.stable_diffusion import StableDiffusionPrior


def test_factory_passes_the_config_sd_knobs(tiny_sd_dir):
    from t3d.config import RunConfig
    from t3d.priors.config import SDConfig
    from t3d.priors.factory import build_prior

    cfg = RunConfig(prompt="a cat", model=str(tiny_sd_dir))
    assert build_prior(cfg, torch.device("cpu")).latent_mode == "vae"  # the default sd section
    cfg.sd = SDConfig(dtype="bf16", latent_mode="rgb", vae_checkpointing=True)
    prior = build_prior(cfg, torch.device("cpu"))
    assert isinstance(prior, StableDiffusionPrior)
    assert prior.latent_mode == "rgb" and prior.dtype == torch.bfloat16 and prior.image_size == 16
    assert prior.vae.encoder.gradient_checkpointing
