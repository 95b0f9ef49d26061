"""Knobs of the two kinds of prior: the built-in analytic prior and Stable Diffusion (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t3d.config.options import PRIOR, option
from t3d.errors import T3dError

UNCOND_POSES = ("uniform", "biased")
SD_DTYPES = ("auto", "fp16", "bf16", "fp32")
LATENT_MODES = ("vae", "rgb")


@dataclass
class AnalyticConfig:
    """The built-in closed-form prior over posed reference images (docs/analytic-prior.md)."""

    source: str = option("builtin", "builtin | path to a folder with poses.json")
    resolution: int = option(32, "reference image size in pixels", low=8, high=256)
    azimuth_step: float = option(10.0, "degrees between built-in reference azimuths", above=0, high=180)
    elevations: tuple[float, ...] = option((-5.0, 10.0, 25.0, 40.0), "built-in reference elevations",
                                           low=-90, high=90)
    jitter_copies: int = option(2, "appearance-jittered copies of each built-in pose", low=1, high=16)
    front_mass: float = option(0.75, "Analytic prior: share of mass on front views.",
                               flag="--front-mass", panel=PRIOR, above=0, high=0.999999)
    front_halfwidth: float = option(45.0, "half-width in degrees of the views that count as front",
                                    above=0, high=180)
    # The unconditional branch's pose mass: "uniform" (a text-free model has seen objects from every
    # side; it is the prompt that makes the face likely, so CFG amplifies the bias) | "biased".
    uncond_pose: str = option("uniform", "pose mass of the unconditional branch: uniform | biased")
    adherence: float = option(0.5, "Analytic prior: how much a view prompt conditions on its views, 0..1.",
                              flag="--adherence", panel=PRIOR, low=0, high=1)
    bandwidth: float = option(0.25, "Analytic prior: kernel width per pixel value.",
                              flag="--bandwidth", panel=PRIOR, low=0, high=100)
    distance: float = option(2.0, "framing of the references, also the training cameras' default", above=0)
    fovy: float = option(45.0, "field of view of the references, also the training cameras'", above=0, high=179)

    def validate(self) -> None:
        if self.uncond_pose not in UNCOND_POSES:
            raise T3dError(f"unknown analytic.uncond_pose '{self.uncond_pose}'; choose uniform or biased")


@dataclass
class SDConfig:
    """Stable Diffusion prior knobs (used when --model is a diffusers id or folder).

    The defaults are the fast path on a big card; the memory knobs trade speed for VRAM on 8-12 GB
    cards (docs/stable-diffusion.md#vram-and-speed-knobs)."""

    dtype: str = option("auto", "Stable Diffusion weights' precision: auto (fp16 on CUDA) | fp16 | bf16 | fp32.",
                        flag="--sd-dtype", panel=PRIOR)
    revision: Optional[str] = option(None, "Hub revision (branch, tag or commit)")
    latent_mode: str = option("vae", "Stable Diffusion: vae (render -> VAE encode) | rgb (low-res render mapped "
                              "to latents, fast coarse stage).", flag="--latent-mode", panel=PRIOR)
    low_vram: bool = option(False, "Stable Diffusion on 8-12 GB cards: UNet and VAE gradient checkpointing "
                            "(slower).", flag="--low-vram/--no-low-vram", panel=PRIOR)
    attention_slicing: bool = option(False, "diffusers' sliced attention: less memory for calls without "
                                     "gradient, about twice the memory where one flows (VSD/ESD, USD)")
    unet_checkpointing: bool = option(False, "recompute UNet activations in the backward pass (VSD/ESD's "
                                      "LoRA training, USD's exact rectifier)")
    channels_last: bool = option(False, "UNet weights in NHWC (often faster with fp16 on CUDA)")
    vae_checkpointing: bool = option(False, "recompute VAE-encoder activations in the backward pass")

    def validate(self) -> None:
        if self.dtype not in SD_DTYPES:
            raise T3dError(f"unknown --sd-dtype '{self.dtype}'; choose auto, fp16, bf16 or fp32")
        if self.latent_mode not in LATENT_MODES:
            raise T3dError(f"unknown latent mode '{self.latent_mode}' (--latent-mode); choose vae or rgb")
