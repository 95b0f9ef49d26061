"""Where the pose classifier's template images come from (paper C.3), and building the classifier.

- a user folder: the analytic-prior reference format (`poses.json` with file, azimuth, elevation);
  each image's class is the nearest pose-class azimuth centre;
- a prior with posed references of the prompt's object (the analytic prior): those, binned the same way;
- any other prior: samples of the prior itself (DDIM) with "..., from front view" / "from side
  view" / "from back view" prompts. A side sample is one of left/right and its mirror image is the
  other; which is which does not matter to the rectifier, whose target f is uniform.
"""

from __future__ import annotations

import torch

from t3d.errors import T3dError
from t3d.guidance.pose.classifier import PoseClassifier, pose_class_of
from t3d.guidance.pose.config import RectifierConfig
from t3d.guidance.pose.features import DEFAULT_POSE_FEATURES, Dinov2PoseFeatures, PixelPatchFeatures
from t3d.priors.base import guided_eps
from t3d.priors.ddim import ddim_sample as ddim_walk
from t3d.priors.ddim import inversion_levels

MAX_TEMPLATES_PER_CLASS = 24  # cost of patch matching grows with the templates; evenly strided


def reference_templates(prior, prompt: str, num_classes: int, keep: torch.Tensor | None = None):
    """(images, labels) from the prior's posed references of the prompt's object (`keep` selects
    among them), or None when the prior has none."""
    refs = prior.posed_references(prompt)
    if refs is None:
        return None
    images, azimuth = (refs.images, refs.azimuth) if keep is None else (refs.images[keep], refs.azimuth[keep])
    return thin_per_class(images, pose_class_of(azimuth, num_classes), num_classes)


def folder_templates(folder: str, resolution: int, num_classes: int):
    from t3d.priors.references import folder_references

    refs = folder_references(folder, resolution)
    return thin_per_class(refs.images, pose_class_of(refs.azimuth, num_classes), num_classes)


def thin_per_class(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   cap: int = MAX_TEMPLATES_PER_CLASS):
    keep = torch.zeros(len(labels), dtype=torch.bool)
    for k in range(num_classes):
        idx = (labels == k).nonzero().flatten()
        if len(idx) > cap:
            idx = idx[torch.linspace(0, len(idx) - 1, cap).round().long()]
        keep[idx] = True
    return images[keep], labels[keep]


@torch.no_grad()
def sampled_templates(prior, prompt: str, num_classes: int, steps: int, guidance_scale: float = 7.5,
                      seed: int = 0):
    """Front, back and side DDIM samples of the prior; left = side, right = the mirrored side."""
    if num_classes != 4:
        raise T3dError(f"templates sampled from the prior exist for 4 pose classes only, not {num_classes}; "
                       f"give your own with --pose-templates FOLDER (poses.json with azimuths)")
    prompts = [f"{prompt}, from {v} view" for v in ("front", "back", "side")]
    x0 = ddim_sample(prior, prompts, steps, guidance_scale, seed)
    rgb = prior.decode(x0).float().cpu()
    images = torch.cat([rgb, rgb[2:3].flip(-1)])
    return images, torch.tensor([0, 1, 2, 3])


def ddim_sample(prior, prompts: list[str], steps: int, guidance_scale: float, seed: int) -> torch.Tensor:
    """Deterministic DDIM (eta 0) from pure noise under CFG, with the project's DDIM steps."""
    gen = torch.Generator().manual_seed(seed)
    shape = (len(prompts), prior.latent_channels, prior.latent_size, prior.latent_size)
    x = torch.randn(shape, generator=gen).to(prior.device)
    cond, uncond = prior.embed(prompts), prior.embed([""] * len(prompts))
    levels = inversion_levels(torch.full((len(prompts),), prior.num_train_timesteps - 1, device=prior.device),
                              max(steps, 1))
    return ddim_walk(prior, lambda x_t, t: guided_eps(prior, x_t, t, cond, uncond, guidance_scale), x, levels)


def build_features(prior, cfg: RectifierConfig):
    """The extractor named by `--pose-features`, else raw pixels where the prior says they decide
    the pose (a mixture of posed images), else the paper's DINOv2."""
    if cfg.pose_features:
        return Dinov2PoseFeatures(cfg.pose_features, prior.device)
    mean_image = prior.pixel_feature_mean()
    if mean_image is not None:
        return PixelPatchFeatures(mean_image.to(prior.device))
    return Dinov2PoseFeatures(DEFAULT_POSE_FEATURES, prior.device)


def build_pose_classifier(prior, cfg: RectifierConfig, prompt: str) -> PoseClassifier:
    """The paper's training-free classifier (`--pose-classifier templates`)."""
    k = cfg.pose_classes
    if cfg.pose_templates:
        images, labels = folder_templates(cfg.pose_templates, prior.image_size, k)
    else:
        found = reference_templates(prior, prompt, k)
        images, labels = found if found is not None else sampled_templates(prior, prompt, k, cfg.template_steps)
    features = build_features(prior, cfg)
    return PoseClassifier(features, images.to(prior.device), labels, k, cfg.tau_patch, cfg.tau_pose)
