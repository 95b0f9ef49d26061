"""The interface every 2D diffusion prior implements, and what generic pieces may ask of it.

Guidance code only talks to this interface, so the engine never knows which prior it runs, and
no piece tests a prior's name or attributes: what differs between priors is a *capability* below,
with a default that suits a text-to-image latent model.

One CFG convention everywhere (diffusers): eps = eps_u + s * (eps_c - eps_u).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from t3d.priors.schedule import NoiseSchedule


@dataclass
class PosedReferences:
    """Images of one object with known poses: the ground truth `t3d evaluate` scores against and
    the templates of USD's pose classifier."""

    images: torch.Tensor  # (N, 3, R, R) in [0, 1]
    azimuth: torch.Tensor  # (N,) degrees, 0 = the object's front
    elevation: torch.Tensor  # (N,) degrees
    front_halfwidth: float  # degrees either side of 0 that count as the front
    distance: float  # camera framing of the images
    fovy: float
    part: Optional[str] = None  # the part a Janus artefact duplicates (face, handle...), if known
    part_azimuth: Optional[float] = None  # the azimuth that part is seen head-on from


@dataclass(frozen=True)
class Framing:
    """How training cameras frame the object for this prior (defaults for unset config)."""

    resolution: int  # render resolution in pixels
    distance: tuple[float, float]
    fovy: tuple[float, float]  # degrees


class Prior:
    name: str = "prior"
    schedule: NoiseSchedule
    image_size: int  # side of the RGB image the prior expects from the renderer
    latent_size: int  # side of x0 (== image_size for pixel priors)
    latent_channels: int  # channels of x0 (3 for pixel priors, 4 for SD)
    device: torch.device

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule.num_train_timesteps

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.schedule.alphas_cumprod

    # ------------------------------------------------------------------ the core
    def check_prompt(self, prompt: str) -> None:
        """Raise T3dError if this prior cannot condition on `prompt` (e.g. unknown object)."""

    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> x0 (B, C, h, w); differentiable."""
        raise NotImplementedError

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 (B, C, h, w) -> (B, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """Conditioning for each prompt, batch-first; "" is the unconditional prompt. Cached."""
        raise NotImplementedError

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Noise prediction (always epsilon, whatever the model predicts), batched over rows."""
        raise NotImplementedError

    # ------------------------------------------------------------------ capabilities
    def release_text_encoder(self) -> None:
        """Free what only embedding needed, once every prompt of the run is embedded."""

    def framing(self) -> Framing:
        """Training cameras and render size when the config leaves them unset (threestudio's)."""
        return Framing(64, (1.5, 2.0), (40.0, 70.0))

    def default_score_clip(self) -> tuple[float, float]:
        """D-SDS clip range (start, end) in this prior's units: the paper's 2 -> 8 for SD latents."""
        return (2.0, 8.0)

    def object_keywords(self) -> set[str]:
        """Prompt words that select what the prior draws; prompt debiasing never drops them."""
        return set()

    def default_score_model(self) -> str:
        """The eps_phi backbone `--score-model auto` means here (baseline/config.py BACKBONES)."""
        return "network"

    def lora_unet(self) -> Optional[Any]:
        """A diffusers UNet that LoRA adapters can be put on, or None."""
        return None

    def render_kernel_bandwidth(self) -> Optional[float]:
        """The kernel width for a closed-form eps_phi over renders (kernel_score.py), or None when
        this prior has no such closed form."""
        return None

    def pixel_feature_mean(self) -> Optional[torch.Tensor]:
        """The mean image (3, H, W) when raw pixels are this prior's best pose features (a mixture of
        posed images is decided by its pixels), else None: USD's classifier then uses DINOv2."""
        return None

    def mixture_azimuths(self) -> Optional[torch.Tensor]:
        """When the prior is a mixture of posed images with a closed-form `posterior(x_t, t, cond)`
        (B, N), the azimuth (N,) of each component; else None (no exact pose posterior)."""
        return None

    def samples(self, prompt: str, n: int, generator: torch.Generator) -> Optional[torch.Tensor]:
        """n exact samples (n, 3, H, W) in [0, 1] of p(x | prompt) when the prior has them in closed
        form (FID in `t3d evaluate`), else None."""
        return None

    def posed_references(self, prompt: str) -> Optional[PosedReferences]:
        """The posed images of the prompt's object, or None when the prior has none."""
        return None

def guided_eps(prior: Prior, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
               uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance with one prior call: batch [uncond; cond]."""
    if scale == 1.0:
        return prior.eps(x_t, t, cond)
    both = prior.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond]))
    eps_u, eps_c = both.chunk(2)
    return eps_u + scale * (eps_c - eps_u)
