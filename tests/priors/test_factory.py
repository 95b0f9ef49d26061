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


def test_low_vram_checkpoints_unet_and_vae_without_sliced_attention(tiny_sd_dir):
    """Sliced attention keeps every slice's attention matrix when a gradient flows through the UNet
    (about twice SDPA's memory at full size), so --low-vram uses gradient checkpointing alone."""
    from t3d.config import RunConfig
    from t3d.priors.config import SDConfig
    from t3d.priors.factory import build_prior

    cfg = RunConfig(prompt="a cat", model=str(tiny_sd_dir))
    cfg.sd = SDConfig(low_vram=True)
    prior = build_prior(cfg, torch.device("cpu"))
    assert prior.vae.encoder.gradient_checkpointing
    assert any(getattr(m, "gradient_checkpointing", False) for m in prior.unet.modules())
    processors = {type(p).__name__ for p in prior.unet.attn_processors.values()}
    assert not any("Sliced" in name for name in processors), processors
