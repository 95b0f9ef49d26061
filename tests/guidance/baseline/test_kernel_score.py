"""The analytic prior's closed-form eps_phi (guidance/kernel_score.py): it is the exact score of
the kernel density over the remembered renders (camera-weighted, or all alike without a camera),
the camera kernel picks renders seen from nearby, the memory forgets its oldest renders, and it is chosen
by default on the analytic prior (but never on Stable Diffusion)."""

import math

import pytest
import torch

from t3d.errors import T3dError
from t3d.guidance.baseline.backbones import PixelResidualBackbone, build_backbone
from t3d.guidance.baseline.config import ScoreModelConfig
from t3d.guidance.baseline.kernel_score import RenderKernelScore, view_directions
from t3d.guidance.baseline.score_model import CameraScoreModel, camera_condition
from t3d.priors.analytic import AnalyticPrior
from t3d.priors.base import Prior
from t3d.priors.config import AnalyticConfig
from tests.helpers.configs import run_config
from tests.helpers.tolerances import mixture_eps_rounding, sum_rounding

PROMPT = "a smiling head"


@pytest.fixture(scope="module")
def prior():
    return AnalyticPrior(AnalyticConfig(resolution=8, azimuth_step=30.0, jitter_copies=1, bandwidth=0.3), "cpu")


def c2w_at(azimuths_deg):
    """Flattened camera-to-world matrices with only the camera position filled in (what the kernel reads)."""
    cams = torch.zeros(len(azimuths_deg), 4, 4)
    for i, az in enumerate(azimuths_deg):
        a = math.radians(az)
        cams[i, :3, 3] = torch.tensor([2 * math.sin(a), 0.3, 2 * math.cos(a)])
        cams[i, 3, 3] = 1.0
    return cams.view(-1, 16)


def brute_force_eps(renders, dirs, x_t, a2, h, log_k):
    """-s_t * grad_x log sum_j k_j N(x; a x_j, (a^2 h^2 + s^2) I), by autograd in float64."""
    x = x_t.reshape(1, -1).double().requires_grad_(True)
    var = a2 * h**2 + (1 - a2)
    log_n = -((x - math.sqrt(a2) * renders.double()) ** 2).sum(-1) / (2 * var)
    torch.logsumexp(log_k.double() + log_n, dim=0).backward()
    return (-math.sqrt(1 - a2) * x.grad).view_as(x_t).float()


def filled_kernel(prior, n=6, seed=0, **cfg):
    kernel = RenderKernelScore(prior, ScoreModelConfig(**cfg), prior.embed([PROMPT]))
    g = torch.Generator().manual_seed(seed)
    renders = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
    kernel.observe(renders, c2w_at([60.0 * i for i in range(n)]))
    return kernel, renders


@pytest.mark.parametrize("camera", ["10deg", "none"])
@pytest.mark.parametrize("t", [50, 400, 900])
def test_eps_is_the_exact_score_of_the_render_kernel_density(prior, t, camera):
    """With a camera the renders are weighted by the von Mises camera kernel; with none (ESD's
    camera-free branch) all renders count alike: the score of every view together."""
    kernel, renders = filled_kernel(prior, camera_width=30.0)
    x_t = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.8
    a2 = float(prior.alphas_cumprod[t])
    dirs = view_directions(c2w_at([60.0 * i for i in range(6)]))
    if camera == "none":
        cam, log_k = torch.zeros(1, 16), torch.zeros(6)
    else:
        cam = c2w_at([10.0])
        log_k = (dirs @ view_directions(cam)[0] - 1) / math.radians(30.0) ** 2
    expected = brute_force_eps(renders.view(6, -1), dirs, x_t, a2, 0.3, log_k)
    got = kernel.eps(x_t, torch.tensor([t]), cam)
    tol = mixture_eps_rounding(x_t, renders.view(6, -1), log_k, a2, 0.3)
    torch.testing.assert_close(got, expected, rtol=0, atol=tol)


def test_the_camera_picks_the_render_seen_from_nearby(prior):
    kernel, renders = filled_kernel(prior, camera_width=10.0)
    t = torch.tensor([980])  # nearly pure noise: the image term no longer tells renders apart
    x_t = torch.zeros(1, 3, 8, 8)
    a = prior.alphas_cumprod[980].sqrt()
    # eps = s (x - a * centre) / var, so the centre the kernel chose can be read back from eps.
    var = a**2 * 0.3**2 + (1 - a**2)

    def centre(cam):
        return -kernel.eps(x_t, t, cam) * var / ((1 - a**2).sqrt() * a)

    def tolerance(azimuth, i):
        # The other renders keep their camera weight exp(log k_j - log k_i) (the image term is ~0 at
        # t = 980), pulling the centre by that times |r_j - r_i|; eps's rounding is divided by s a.
        dirs = view_directions(c2w_at([60.0 * j for j in range(6)])).double()
        log_k = (dirs @ view_directions(c2w_at([azimuth]))[0].double() - 1) / math.radians(10.0) ** 2
        pull = sum(float((log_k[j] - log_k[i]).exp() * (renders[j] - renders[i]).abs().max())
                   for j in range(6) if j != i)
        return pull + sum_rounding(1.0, 4) * float(var / ((1 - a**2).sqrt() * a))

    torch.testing.assert_close(centre(c2w_at([120.0])), renders[2:3], rtol=0, atol=tolerance(120.0, 2))
    torch.testing.assert_close(centre(c2w_at([245.0])), renders[4:5], rtol=0, atol=tolerance(245.0, 4))


def test_memory_keeps_the_most_recent_renders(prior):
    kernel, renders = filled_kernel(prior, n=6, memory=4)
    assert torch.equal(kernel.renders, renders[2:].reshape(4, -1))
    more = torch.ones(1, 3, 8, 8)
    kernel.observe(more, c2w_at([0.0]))
    assert len(kernel.renders) == 4 and torch.equal(kernel.renders[-1], more.view(-1))
    assert torch.equal(kernel.renders[0], renders[3].view(-1))


def test_score_model_chooses_the_kernel_on_the_analytic_prior_and_checkpoints_its_memory(prior):
    cfg = run_config("vsd").guidance.baseline  # --score-model auto
    model = CameraScoreModel(prior, cfg, PROMPT)
    assert isinstance(model.backbone, RenderKernelScore) and model.optimizer is None
    network = run_config("vsd", {"guidance.baseline.backbone": "network"}).guidance.baseline
    assert isinstance(CameraScoreModel(prior, network, PROMPT).backbone, PixelResidualBackbone)

    class Ctx:  # what CameraScoreModel.update reads from a StepContext
        x0 = torch.rand(2, 3, 8, 8)
        cameras = None
        generator = torch.Generator().manual_seed(0)

    assert model.update(Ctx()) == {} and len(model.backbone.renders) == 2  # no loss to log: it only observes
    state = model.state_dict()
    assert set(state) == {"memory/renders", "memory/directions"}
    fresh = CameraScoreModel(prior, cfg, PROMPT)
    fresh.load_state_dict(state)
    x_t, t = torch.randn(2, 3, 8, 8), torch.tensor([300, 700])
    assert torch.equal(fresh.eps(x_t, t, None), model.eps(x_t, t, None))  # bit-exact: the same memory, the same sums
    with pytest.raises(KeyError):
        fresh.load_state_dict({})
    with pytest.raises(ValueError):
        fresh.load_state_dict({"memory/renders": torch.zeros(1, 5), "memory/directions": torch.zeros(1, 3)})


def test_kernel_is_refused_on_a_prior_with_a_unet(prior):
    class WithUnet(Prior):  # a latent prior: a UNet to adapt, no closed-form kernel over renders
        def lora_unet(self):
            return object()

    with pytest.raises(T3dError, match="needs a prior with a closed-form kernel"):
        build_backbone(WithUnet(), ScoreModelConfig(backbone="kernel"), None)


def test_no_camera_rows_have_no_direction():
    cams = torch.cat([c2w_at([90.0]), camera_condition(None, 1, "cpu")])
    d = view_directions(cams)
    # A normalised 3-vector: its norm is 1 up to a few roundings.
    assert abs(float(d[0].norm()) - 1) < sum_rounding(1.0, 3) and torch.equal(d[1], torch.zeros(3))
