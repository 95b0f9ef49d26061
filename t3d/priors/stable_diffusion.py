"""Stable Diffusion 1.x / 2.x as a Prior: a frozen latent UNet, its VAE and its CLIP text encoder.

`--model` takes a Hugging Face id or a local folder in the diffusers layout (unet/, vae/,
text_encoder/, tokenizer/, scheduler/). Only those five parts are loaded, never the pipeline
(no safety checker or feature extractor is needed to score latents). A Hub id is first looked up
in the local Hugging Face cache ($HF_HOME, $HF_HUB_CACHE) without any network request; only a
model that is not cached is downloaded, and never when HF_HUB_OFFLINE=1.

Default model: `stabilityai/stable-diffusion-2-1-base`, the usual text-to-3D choice, is no longer
published by Stability AI; only unofficial mirrors remain. We default to the maintained SD 1.5
mirror and let `T3D_SD_MODEL` (or `--model`) pick anything else, e.g. an SD 2.x
mirror or a local copy. v-prediction models (SD 2.x 768) work: `eps()` always returns epsilon.

Guidance runs in latent space (DreamFusion-SD / threestudio): render -> resize to the VAE's
native image size -> VAE encode (posterior mean, with gradient) -> x0. Nothing is ever decoded
during training. `latent_mode="rgb"` skips the VAE for fast coarse stages: the render, taken at
the latent resolution, is mapped to latents by a fixed linear colour map fitted once to this
VAE (see `fit_rgb_to_latent`). CFG convention (one for the whole project, diffusers'):
eps = eps_u + s * (eps_c - eps_u), computed by `guided_eps` with one UNet call on [uncond; cond].

Precision: on CUDA the frozen networks run in fp16 (half the memory, tensor cores); on CPU in fp32.
Inputs are cast to the model dtype and outputs returned as float32, so guidance math is fp32.
Memory/speed knobs (all off by default):
- `attention_slicing`: diffusers' sliced attention instead of PyTorch SDPA: less peak memory in a
  call without gradient, but where a gradient flows through the UNet it keeps every slice's
  attention matrix for the backward pass, which SDPA does not (full-size SD 1.5, batch 2 at 64x64
  latents, fp32 CPU: 13.9 GB peak sliced vs 7.8 GB SDPA), so `low_vram` leaves it off;
- `channels_last`: UNet weights in NHWC, often faster with fp16 on CUDA;
- `vae_checkpointing`: recompute VAE-encoder activations in the backward pass instead of storing
  them (the encoder's activations at 512 px dominate a step's memory at small render sizes);
- `unet_checkpointing`: the same for the UNet, where a gradient flows through it (VSD/ESD's LoRA
  training, USD's exact rectifier: 6.1 GB instead of 7.8 GB in the case above);
- `latent_mode="rgb"`: no VAE at all in the step.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from t3d import hub
from t3d.errors import T3dError
from t3d.priors.base import Prior
from t3d.priors.config import LATENT_MODES
from t3d.priors.schedule import NoiseSchedule

DEFAULT_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD_MODEL_ENV = "T3D_SD_MODEL"
SD_ALIASES = ("sd", "stable-diffusion")  # `--model sd` means "the default SD model"
SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_DTYPES = {"fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}


def default_sd_model() -> str:
    """The SD model used when none is named: $T3D_SD_MODEL if set, else DEFAULT_SD_MODEL."""
    return os.environ.get(SD_MODEL_ENV, "").strip() or DEFAULT_SD_MODEL


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """None/"auto" -> fp16 on CUDA, fp32 elsewhere; also accepts "fp16", "bf16", "fp32"."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise T3dError(f"unknown Stable Diffusion dtype {dtype!r}; choose auto, fp16, bf16 or fp32")
    return _DTYPES[dtype]


def _hint() -> str:
    return (f"Use `--model analytic` to run offline without any weights, or `--model /path/to/diffusers-folder` "
            f"for a local copy (${SD_MODEL_ENV} sets the default).")


def load_sd_parts(source: str, dtype: torch.dtype, revision: str | None = None,
                  local_files_only: bool = False) -> dict:
    """unet, vae, text_encoder, tokenizer, scheduler from a diffusers folder or Hub id (no pipeline)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    kw = {"revision": revision, "local_files_only": local_files_only}
    parts: dict = {}
    # DDIM reads any SD scheduler config (PNDM, DDPM, ...): the betas are what matter, and a
    # DDIM scheduler is what DDIM-based methods (SDI) step with.
    parts["scheduler"] = DDIMScheduler.from_pretrained(source, subfolder="scheduler", **kw)
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **kw)
    # Loaded in its stored dtype then cast: transformers renamed `torch_dtype` to `dtype`
    # (4.56 / 5.x), and the encoder is small enough for the cast not to matter.
    parts["text_encoder"] = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **kw)
    parts["unet"] = UNet2DConditionModel.from_pretrained(source, subfolder="unet", torch_dtype=dtype, **kw)
    parts["vae"] = AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=dtype, **kw)
    return parts


class StableDiffusionPrior(Prior):
    """The Prior protocol over a diffusers SD checkpoint (see module docstring for the knobs).

    Useful attributes beyond the protocol: `unet`, `vae`, `scheduler` (DDIM, for DDIM steps),
    `prediction_type`, `dtype`, `vae_scale_factor`, `max_tokens`, `latent_mode`.
    """

    def __init__(self, model: str | None, device: torch.device | str = "cpu",
                 dtype: torch.dtype | str | None = None, revision: str | None = None,
                 attention_slicing: bool = False, channels_last: bool = False,
                 vae_checkpointing: bool = False, unet_checkpointing: bool = False, latent_mode: str = "vae"):
        model = (model or "").strip()
        if model in ("", *SD_ALIASES):
            model = default_sd_model()
        device = torch.device(device)
        dtype = resolve_dtype(dtype, device)
        _check_latent_mode(latent_mode)

        hint = _hint()
        if os.path.isfile(os.path.expanduser(model)):  # a single-file checkpoint: say how to get a folder
            hint = ("Convert it once with diffusers' StableDiffusionPipeline.from_single_file(FILE)"
                    ".save_pretrained(FOLDER). " + hint)
        parts = hub.load(lambda source, **kw: load_sd_parts(source, dtype, revision, **kw), model,
                         what="Stable Diffusion model", hint=hint, required=tuple(p + "/" for p in SD_PARTS))
        self._setup(f"sd:{model}", parts, device, dtype, latent_mode, cast=False,
                    attention_slicing=attention_slicing, channels_last=channels_last,
                    vae_checkpointing=vae_checkpointing, unet_checkpointing=unet_checkpointing)

    @classmethod
    def from_parts(cls, name: str, unet, vae, text_encoder, tokenizer, scheduler,
                   device: torch.device | str = "cpu", dtype: torch.dtype | str | None = None,
                   attention_slicing: bool = False, channels_last: bool = False,
                   vae_checkpointing: bool = False, unet_checkpointing: bool = False,
                   latent_mode: str = "vae") -> "StableDiffusionPrior":
        """A prior over networks already in memory (benchmarks with random weights, tests)."""
        from diffusers import DDIMScheduler

        device = torch.device(device)
        dtype = resolve_dtype(dtype, device)
        _check_latent_mode(latent_mode)
        parts = {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
                 "scheduler": DDIMScheduler.from_config(scheduler.config)}
        self = cls.__new__(cls)
        self._setup(name, parts, device, dtype, latent_mode, cast=True,
                    attention_slicing=attention_slicing, channels_last=channels_last,
                    vae_checkpointing=vae_checkpointing, unet_checkpointing=unet_checkpointing)
        return self

    def _setup(self, name: str, parts: dict, device: torch.device, dtype: torch.dtype, latent_mode: str,
               cast: bool, *, attention_slicing: bool, channels_last: bool, vae_checkpointing: bool,
               unet_checkpointing: bool) -> None:
        self.name, self.device, self.dtype, self.latent_mode = name, device, dtype, latent_mode
        self.unet, self.vae, self.scheduler = parts["unet"], parts["vae"], parts["scheduler"]
        self.text_encoder, self.tokenizer = parts["text_encoder"], parts["tokenizer"]

        self.text_encoder.to(device, dtype)
        if cast:
            self.unet.to(device, dtype)
            self.vae.to(device, dtype)
        else:
            # from_pretrained already gave UNet/VAE their dtype (and knows which modules must stay
            # fp32); a second dtype cast would override that, so only move them.
            self.unet.to(device)
            self.vae.to(device)
        for net in (self.text_encoder, self.unet, self.vae):
            net.requires_grad_(False)
            net.eval()
        if channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if attention_slicing:
            self.unet.set_attention_slice("auto")
        # Only matters where gradients flow (encode() in training; the UNet in LoRA training and
        # USD's exact rectifier); diffusers checks torch.is_grad_enabled(), not .training, so it
        # works on the frozen eval-mode networks.
        if vae_checkpointing:
            self.vae.enable_gradient_checkpointing()
        if unet_checkpointing:
            self.unet.enable_gradient_checkpointing()

        cfg = self.scheduler.config
        self.prediction_type = cfg.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise T3dError(f"model {name!r} predicts {self.prediction_type!r}; only epsilon and "
                           f"v_prediction models are supported")
        self.schedule = NoiseSchedule(self.scheduler.alphas_cumprod.to(device, torch.float32))
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.latent_size = int(self.unet.config.sample_size)
        self.latent_channels = int(self.unet.config.in_channels)
        self.max_tokens = int(self.tokenizer.model_max_length)
        # The RGB size the renderer should produce: the VAE's native size, or the latent size
        # when the render is mapped to latents directly.
        self.native_image_size = self.vae_scale_factor * self.latent_size
        self.image_size = self.latent_size if latent_mode == "rgb" else self.native_image_size
        self._cache: dict[str, torch.Tensor] = {}
        self.rgb_to_latent = fit_rgb_to_latent(self) if latent_mode == "rgb" else None

    # ------------------------------------------------------------------ prompts
    def check_prompt(self, prompt: str) -> None:
        """Any text conditions SD; over-long prompts are truncated to the CLIP context."""

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_tokens, D) float32 CLIP hidden states; each distinct prompt is encoded once."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            if self.text_encoder is None:
                raise T3dError(f"prompt {missing[0]!r} was not embedded before the text encoder was "
                               f"released; embed every prompt before release_text_encoder()")
            ids = self.tokenizer(missing, padding="max_length", truncation=True, max_length=self.max_tokens,
                                 return_tensors="pt").input_ids.to(self.device)
            with torch.no_grad():
                hidden = self.text_encoder(ids)[0].float()
            self._cache.update(zip(missing, hidden))
        return torch.stack([self._cache[p] for p in prompts])

    def release_text_encoder(self) -> None:
        """Free the text encoder and tokenizer once the run's prompts are embedded (cache stays)."""
        self.text_encoder = None
        self.tokenizer = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ latents
    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> latents (B, 4, h, w) float32, differentiable w.r.t. rgb."""
        if self.latent_mode == "rgb":
            return self.encode_linear(rgb)
        return self.encode_vae(rgb)

    def encode_vae(self, rgb: torch.Tensor) -> torch.Tensor:
        """Resize to the VAE's native size, encode, take the scaled posterior mean."""
        size = self.native_image_size
        if rgb.shape[-2:] != (size, size):
            # Renders are usually upsampled to the native size, where antialiasing changes nothing
            # and plain bilinear has the cheapest backward; a larger render is antialiased.
            rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False,
                                antialias=rgb.shape[-1] > size)
        return self.vae_latents(rgb)

    def vae_latents(self, rgb: torch.Tensor) -> torch.Tensor:
        """Scaled VAE posterior mean of an image of any size divisible by vae_scale_factor."""
        x = (rgb * 2 - 1).to(self.dtype)
        # The posterior mean, not a sample: the same render always gives the same latent.
        latents = self.vae.encode(x).latent_dist.mean
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return (latents.float() - shift) * self.vae.config.scaling_factor

    def encode_linear(self, rgb: torch.Tensor) -> torch.Tensor:
        """latent_mode="rgb": the render at latent resolution through the fitted colour map."""
        size = self.latent_size
        if rgb.shape[-2:] != (size, size):
            rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False,
                                antialias=rgb.shape[-1] > size)
        weight, bias = self.rgb_to_latent
        return torch.einsum("oc,bchw->bohw", weight, rgb.float() * 2 - 1) + bias.view(1, -1, 1, 1)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Latents -> (B, 3, native size, native size) in [0, 1], float32 (differentiable).

        Never called by training steps; for previews and tools only.
        """
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        latents = x0 / self.vae.config.scaling_factor + shift
        rgb = self.vae.decode(latents.to(self.dtype)).sample.float()
        return ((rgb + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ the score
    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One UNet call over the batch; v-prediction is converted: eps = a_t v + s_t x_t.

        (From x_t = a_t x0 + s_t eps and v = a_t eps - s_t x0, with a_t^2 + s_t^2 = 1.)
        Differentiable w.r.t. x_t; wrap in torch.no_grad() where no gradient is needed.
        """
        t = t.to(self.device).long().reshape(-1).expand(x_t.shape[0])
        out = self.unet(x_t.to(self.dtype), t, encoder_hidden_states=cond.to(self.dtype)).sample.float()
        if self.prediction_type == "v_prediction":
            out = self.schedule.v_to_eps(out, x_t, t)
        return out

    def lora_unet(self):
        return self.unet


def _check_latent_mode(latent_mode: str) -> None:
    if latent_mode not in LATENT_MODES:
        raise T3dError(f"unknown latent mode {latent_mode!r}; choose {' or '.join(LATENT_MODES)}")


@torch.no_grad()
def fit_rgb_to_latent(prior: StableDiffusionPrior, blocks: int = 8, block_latents: int = 4,
                      images: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear map latent ~= W (2 rgb - 1) + b fitted to this VAE, once, by least squares.

    Calibration images are mosaics of flat colour squares, `block_latents` latent pixels wide;
    only the inner latents of each square are used, so borders between colours do not bias the
    fit. SD's VAE is close to linear in colour on flat regions, which is all a coarse stage needs
    (Latent-NeRF uses the same observation the other way round to preview latents).
    """
    f = prior.vae_scale_factor
    gen = torch.Generator().manual_seed(seed)
    colours = torch.rand(images, 3, blocks, blocks, generator=gen)
    img = colours.repeat_interleave(block_latents * f, -1).repeat_interleave(block_latents * f, -2)
    latents = prior.vae_latents(img.to(prior.device)).double().cpu()  # (N, C, blocks*bl, blocks*bl)
    inner = slice(1, block_latents - 1) if block_latents > 2 else slice(0, block_latents)
    c = latents.shape[1]
    lat = latents.view(images, c, blocks, block_latents, blocks, block_latents)[:, :, :, inner, :, inner]
    n_inner = lat.shape[3] * lat.shape[5]
    y = lat.permute(0, 2, 4, 3, 5, 1).reshape(-1, c)  # one row per inner latent pixel
    x = (colours.double() * 2 - 1).permute(0, 2, 3, 1).reshape(-1, 3).repeat_interleave(n_inner, 0)
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution  # (4, C): rows are r, g, b, 1
    weight, bias = solution[:3].T.float(), solution[3].float()
    return weight.to(prior.device), bias.to(prior.device)
