"""One score-distillation step (guidance/step.py) with the SDS pieces: the surrogate loss moves a
2D image toward the prior, with the right sign and size."""

import torch

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.priors.references import ReferenceSet
from t3d.scene.cameras import orbit_cameras
from tests.helpers.configs import distillation


def prior_with(images, bandwidth=0.0):
    n = images.shape[0]
    refs = ReferenceSet(images, torch.linspace(-180, 180, n + 1)[:-1], torch.zeros(n),
                        torch.zeros(n, dtype=torch.long), ["toy"], [("toy",)])
    return AnalyticPrior(AnalyticConfig(bandwidth=bandwidth), "cpu", refs=refs)


def test_one_sds_step_moves_the_image_toward_a_single_reference():
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    prior = prior_with(target)
    sds = distillation(prior, "a toy", "sds", {"guidance.guide.scale": 1.0, "prompts.view_prompts": False})
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    before = (image - target).norm().item()
    loss, _ = sds.loss(image, orbit_cameras(1), 0.0, torch.Generator().manual_seed(2))
    loss.backward()
    # With one reference, E[eps_hat - n] = a_t (x0 - x_ref) / s_t: exactly toward the reference.
    direction = -image.grad.flatten()
    towards = (target - image.detach()).flatten()
    assert torch.nn.functional.cosine_similarity(direction, towards, dim=0) > 0.99
    with torch.no_grad():
        image -= 0.5 * image.grad / image.grad.abs().max()
    assert (image - target).norm().item() < before


def test_sds_loss_decreases_on_a_2d_toy():
    refs = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    prior = prior_with(refs, bandwidth=0.05)
    sds = distillation(prior, "a toy", "sds", {"guidance.guide.scale": 1.0, "prompts.view_prompts": False})
    logit = torch.zeros(1, 3, 8, 8, requires_grad=True)
    opt = torch.optim.Adam([logit], lr=0.05)
    gen = torch.Generator().manual_seed(3)
    nearest = []
    for step in range(200):
        image = torch.sigmoid(logit)
        loss, _ = sds.loss(image, orbit_cameras(1), step / 200, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        nearest.append(((torch.sigmoid(logit).detach() - refs) ** 2).flatten(1).mean(1).min().item())
    assert nearest[-1] < 0.1 * nearest[0]
