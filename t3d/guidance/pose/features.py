"""Feature extractors for the training-free pose classifier: image -> (global, patch) features.

Both return `(cls (B, F), patches (B, h, w, F))` for images (B, 3, H, W) in [0, 1], and are
differentiable w.r.t. the images (the rectifier's exact mode backpropagates through them).

- `Dinov2PoseFeatures`: the paper's extractor (B.1.4, "dinov2_vits14_reg"), DINOv2-small with
  registers through transformers' `Dinov2WithRegistersModel`; a Hub id or a local folder.
- `PixelPatchFeatures`: the analytic prior's default, which needs no download. The analytic prior
  is a mixture of posed reference *pixels*, so the pixels themselves are the features that decide
  which reference (and hence which pose) an image is: patches are the raw pixel blocks, and the
  global feature is the whole image minus the mean reference image (raw images on one shared
  background all have cosine ~1; centring keeps what differs between views). A random projection
  would only mix these same numbers, so we keep the pixels (cheaper and easier to inspect).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from t3d import hub

DEFAULT_POSE_FEATURES = "facebook/dinov2-with-registers-small"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PixelPatchFeatures:
    """Raw pixel blocks on a `grid` x `grid` patch grid (see module docstring)."""

    def __init__(self, mean_image: torch.Tensor, grid: int = 8):
        self.grid = grid
        self.size = mean_image.shape[-1] // grid * grid
        self.mean_image = self._resize(mean_image[None].float()) * 2 - 1

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == self.size:
            return images
        return F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=True)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._resize(images.float()) * 2 - 1
        b, c, s, _ = x.shape
        p = s // self.grid
        patches = x.reshape(b, c, self.grid, p, self.grid, p).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(b, self.grid, self.grid, c * p * p)
        cls = (x - self.mean_image.to(x.device)).reshape(b, -1)
        return cls, patches


class Dinov2PoseFeatures:
    """DINOv2 with registers: [CLS] token and the patch tokens on a `grid` x `grid` grid (paper:
    features resized to h = w = 16, i.e. 224 px input for patch size 14)."""

    def __init__(self, source: str, device: torch.device | str = "cpu", grid: int = 16):
        self.model = load_dinov2(source).to(device).eval().requires_grad_(False)
        self.grid = grid
        self.patch = int(self.model.config.patch_size)
        self.registers = int(getattr(self.model.config, "num_register_tokens", 0))
        self.mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.grid * self.patch
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=images.shape[-1] > size)
        x = (x - self.mean) / self.std
        dtype = next(self.model.parameters()).dtype
        tokens = self.model(pixel_values=x.to(dtype)).last_hidden_state.float()
        cls = tokens[:, 0]
        patches = tokens[:, 1 + self.registers:]
        return cls, patches.reshape(x.shape[0], self.grid, self.grid, -1)


def load_dinov2(source: str):
    """`Dinov2WithRegistersModel` from a local folder or a Hub id (t3d/hub.py's policy)."""
    from transformers import Dinov2WithRegistersModel

    return hub.load(Dinov2WithRegistersModel.from_pretrained, source, what="pose features",
                    required=("config.json",),
                    hint="Pass --pose-features /path/to/a/Dinov2WithRegistersModel/folder, or use a prior whose "
                         "default pose features need no download (--model analytic).")


def save_tiny_dinov2(folder: str | Path, seed: int = 0) -> Path:
    """A tiny randomly initialised DINOv2-with-registers folder (tests, demos; offline)."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(seed)
    config = Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, mlp_ratio=2, patch_size=2, image_size=32,
                                       num_register_tokens=4)
    folder = Path(folder)
    Dinov2WithRegistersModel(config).save_pretrained(folder)
    return folder
