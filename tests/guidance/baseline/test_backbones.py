"""The score model's LoRA backbone (guidance/baseline/backbones.py) on a tiny random SD folder: LoRA
on the prior's own UNet (no second copy), the prior's eps untouched, eps_phi = the prior's eps at start."""

import pytest
import torch

from t3d.guidance.baseline.config import ScoreModelConfig
from t3d.guidance.baseline.score_model import CameraScoreModel
from t3d.guidance.step import StepContext
from t3d.priors.stable_diffusion import StableDiffusionPrior
from t3d.priors.tiny_sd import build_tiny_sd
from t3d.scene.cameras import orbit_cameras


def cfg(rank=4):
    return ScoreModelConfig(esd_lambda=0.5, lora_rank=rank, lr=1e-2, uncond_prob=0.0)


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_lora_adapts_the_prior_unet_in_place_and_leaves_the_prior_eps_alone(prediction_type, tmp_path):
    folder = build_tiny_sd(tmp_path / "sd", prediction_type=prediction_type, seed=0)
    prior = StableDiffusionPrior(str(folder), "cpu")
    unet = prior.unet
    frozen = {k: p.detach().clone() for k, p in unet.named_parameters()}
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([100, 600])
    cond = prior.embed(["a cat", "a cat"])
    with torch.no_grad():
        eps_before = prior.eps(x_t, t, cond)
    model = CameraScoreModel(prior, cfg(rank=4), "a cat")
    assert prior.unet is unet  # adapted in place: no copy of the frozen weights
    lora = {k: p for k, p in model.params.items() if not k.startswith("camera.")}
    assert lora and all(".lora_A." in k or ".lora_B." in k for k in lora)
    assert {p.shape[0] for k, p in lora.items() if ".lora_A." in k} == {4}  # rank 4
    assert sum(p.numel() for p in unet.parameters()) == sum(v.numel() for v in frozen.values()) + sum(
        p.numel() for p in lora.values())
    time_dim = unet.time_embedding.linear_2.out_features  # sized from the loaded UNet
    assert model.params["camera.linear_2.weight"].shape == (time_dim, time_dim)
    cams = orbit_cameras(2)
    with torch.no_grad():  # LoRA B and the camera MLP's last layer start at zero: eps_phi == eps_prior(y)
        # Bit-exact: each adds exactly 0 to the frozen UNet's sums, computed on the same batch.
        assert torch.equal(model.eps(x_t, t, cams), eps_before)
    x0 = torch.randn(2, 4, 16, 16, generator=g)
    for step in range(3):
        model.update(StepContext(prior, cams, 0.0, torch.Generator().manual_seed(step), x0))
    assert all(p.abs().max() > 0 for k, p in lora.items() if ".lora_B." in k)  # LoRA itself trains
    with torch.no_grad():
        assert torch.equal(prior.eps(x_t, t, cond), eps_before)  # adapter off for the prior: the same call
        assert (model.eps(x_t, t, cams) - eps_before).abs().max() > 1e-4  # and on for eps_phi
        assert (model.eps(x_t, t, cams) - model.eps(x_t, t, None)).abs().max() > 1e-6  # camera matters
    for k, p in unet.named_parameters():
        if k in frozen:
            assert torch.equal(p, frozen[k]) and not p.requires_grad, k
