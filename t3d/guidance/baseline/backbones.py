"""The networks behind eps_phi(x_t, t, c, y), the score model of the renders (VSD / ESD / USD).

Both backbones start out equal to the frozen prior's own score for the prompt y (no CFG) and
learn a correction from the renders, the way ProlificDreamer's LoRA starts at zero:
- `LoraBackbone` (latent priors with a diffusers UNet, i.e. Stable Diffusion): peft LoRA adapters
  on the prior's OWN UNet attention layers (no second copy of the frozen weights), toggled on
  only for eps_phi calls and its training step; the camera goes through a small MLP whose output
  is added to the UNet's timestep embedding (the same place a class embedding goes).
- `PixelResidualBackbone` (the analytic prior, which has no network to adapt): a small diffusers
  `UNet2DModel` trained from scratch, whose output is added to the analytic prior's eps for y;
  camera through the same kind of MLP, as the UNet's class embedding (`class_embed_type="identity"`).

- `RenderKernelScore` (kernel_score.py; the analytic prior's default for `--score-model auto`): no
  network at all, the closed-form score of a kernel density over the most recent renders; it has
  no `params` and `observe`s the renders instead of training on them.

A trainable backbone has `params` (name -> trainable Parameter), `eps(x_t, t, cam) -> eps` (differentiable
w.r.t. params), `loss(x0, noise, t, cam) -> denoising MSE`, and `training()`, a context inside
which the loss's backward must run (peft only accumulates adapter gradients while enabled). `cam` is (B, 16): flattened 4x4
camera-to-world matrices, zeros meaning "no camera".
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding

from t3d.guidance.baseline.config import BACKBONES, ScoreModelConfig

ADAPTER = "t3d_score_model"
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # every attention layer of a diffusers UNet


def camera_encoder(out_dim: int) -> torch.nn.Module:
    """16 -> out_dim MLP (the ProlificDreamer/threestudio camera embedding shape). Its last layer
    starts at zero so a fresh score model equals the prior's score whatever the camera."""
    mlp = TimestepEmbedding(16, out_dim)
    torch.nn.init.zeros_(mlp.linear_2.weight)
    torch.nn.init.zeros_(mlp.linear_2.bias)
    return mlp


class PixelResidualBackbone:
    """eps_phi = eps_prior(x_t, t, y) + UNet2DModel(x_t, t, camera MLP(c)); UNet zero-initialised
    at its output, so eps_phi starts as the prior's score (the analogue of LoRA's zero init)."""

    def __init__(self, prior, cfg: ScoreModelConfig, cond_y: torch.Tensor):
        from diffusers import UNet2DModel

        self.prior, self.cond_y = prior, cond_y
        channels = tuple(int(c) for c in cfg.channels)
        size, c_in = int(prior.latent_size), int(prior.latent_channels)
        groups = min(8, channels[0])
        self.net = UNet2DModel(
            sample_size=size, in_channels=c_in, out_channels=c_in, block_out_channels=channels,
            layers_per_block=1, down_block_types=("DownBlock2D",) * len(channels),
            up_block_types=("UpBlock2D",) * len(channels), norm_num_groups=groups,
            attention_head_dim=channels[-1] // 2, class_embed_type="identity",
        ).to(prior.device)
        torch.nn.init.zeros_(self.net.conv_out.weight)
        torch.nn.init.zeros_(self.net.conv_out.bias)
        time_dim = self.net.time_embedding.linear_2.out_features
        self.camera = camera_encoder(time_dim).to(prior.device)
        self.params = {f"net.{k}": p for k, p in self.net.named_parameters()}
        self.params.update({f"camera.{k}": p for k, p in self.camera.named_parameters()})

    def training(self):
        return contextlib.nullcontext()

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the frozen part: no parameters, no gradient needed
            base = self.prior.eps(x_t, t, self.cond_y.expand(x_t.shape[0], *self.cond_y.shape[1:]))
        residual = self.net(x_t, t, class_labels=self.camera(cam.to(x_t.dtype))).sample
        return base + residual

    def loss(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        x_t = self.prior.schedule.add_noise(x0, noise, t)
        return F.mse_loss(self.eps(x_t, t, cam), noise)


class LoraBackbone:
    """LoRA (peft) on the prior's UNet attention layers + camera MLP on the timestep embedding.

    The adapter is disabled except inside `_active()`, so `prior.eps` (and CFG, and every other
    piece) keeps seeing the frozen pretrained UNet. Only the adapter and the MLP are trainable and
    kept in fp32 (on CUDA the UNet itself runs in fp16; peft casts activations to the adapter's dtype).
    """

    def __init__(self, prior, cfg: ScoreModelConfig, cond_y: torch.Tensor):
        from peft import LoraConfig

        self.prior, self.cond_y, self.unet = prior, cond_y, prior.lora_unet()
        rank = int(cfg.lora_rank)
        self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True,
                                         target_modules=LORA_TARGETS), adapter_name=ADAPTER)
        self.unet.disable_adapters()
        self.params = {k: p for k, p in self.unet.named_parameters() if f".{ADAPTER}." in k}
        for p in self.params.values():
            p.data = p.data.float()
        # Sized from the loaded UNet: its timestep-embedding width (1280 for SD 1.x/2.x).
        time_dim = self.unet.time_embedding.linear_2.out_features
        self.camera = camera_encoder(time_dim).to(prior.device)
        self.params.update({f"camera.{k}": p for k, p in self.camera.named_parameters()})
        self._camera_emb: torch.Tensor | None = None
        self._enabled = False
        self.unet.time_embedding.register_forward_hook(self._add_camera)

    def _add_camera(self, module, inputs, output):
        if self._camera_emb is None:  # a prior call: leave the pretrained embedding alone
            return None
        return output + self._camera_emb.to(output.dtype)

    @contextlib.contextmanager
    def training(self):
        """Adapter on (peft toggles requires_grad with it, and a leaf whose requires_grad is off at
        backward time receives no gradient, so the backward must run inside)."""
        if self._enabled:
            yield
            return
        self.unet.enable_adapters()
        self._enabled = True
        try:
            yield
        finally:
            self._enabled = False
            self.unet.disable_adapters()

    def _raw(self, x_t: torch.Tensor, t: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """The UNet's output in its own parametrisation (epsilon or v)."""
        cond = self.cond_y.expand(x_t.shape[0], *self.cond_y.shape[1:]).to(self.prior.dtype)
        with self.training():
            self._camera_emb = self.camera(cam.float())
            try:
                return self.unet(x_t.to(self.prior.dtype), t, encoder_hidden_states=cond).sample.float()
            finally:
                self._camera_emb = None

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        out = self._raw(x_t, t, cam)
        if self.prior.prediction_type == "v_prediction":
            out = self.prior.schedule.v_to_eps(out, x_t, t)
        return out

    def loss(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """Denoising MSE in the model's own parametrisation, as the UNet was trained
        (ProlificDreamer's LoRA loss): target noise, or v = a_t noise - s_t x0."""
        x_t = self.prior.schedule.add_noise(x0, noise, t)
        target = noise
        if self.prior.prediction_type == "v_prediction":
            target = self.prior.schedule.v_target(x0, noise, t)
        return F.mse_loss(self._raw(x_t, t, cam), target)


def network_backbone(prior, cfg: ScoreModelConfig, cond_y: torch.Tensor):
    """A trained eps_phi: LoRA where the prior has a UNet to adapt, else a small pixel UNet."""
    if prior.lora_unet() is not None:
        return LoraBackbone(prior, cfg, cond_y)
    return PixelResidualBackbone(prior, cfg, cond_y)


def default_backbone(prior, cfg: ScoreModelConfig, cond_y: torch.Tensor):
    """`--score-model auto`: the backbone the prior says suits it."""
    return BACKBONES.get(prior.default_score_model())(prior, cfg, cond_y)


def build_backbone(prior, cfg: ScoreModelConfig, cond_y: torch.Tensor):
    return BACKBONES.get(cfg.backbone)(prior, cfg, cond_y)
