"""A mixture prior's exact pose posterior p(k | x_t): ground truth for the rectifier.

RecDreamer needs p(k | x_t, y) for noisy images and approximates it (DPS-style) by a clean-image
classifier at the Tweedie estimate, p(k | x0_hat). The analytic prior is a mixture of posed
references, so the exact value is a sum of its posterior weights,

    p(k | x_t, y) = sum over references i of class k of w_i(x_t),   w = the prior's posterior,

differentiable in x_t. `--pose-classifier posterior` uses it in place of the template classifier:
the rectifier, its EMA marginals and its gradient cap are then tested with no classifier error,
which separates "does the USD machinery rectify?" from "is the classifier good enough?"
(docs/2d-experiments.md#usd-appendix-e). A prior without a closed-form mixture (Stable Diffusion) has no such
posterior: the option is refused there.

`--pose-classifier posterior-x0` is the third point between them: the exact *clean* posterior
p(k | x0) (the same sum at t = 0) applied at the Tweedie estimate x0_hat, i.e. the paper's DPS
approximation p(k | x_t) ~ p(k | x0_hat) with a perfect classifier. On the 2D experiment it
rectifies no better than the template classifier, so the partial correction seen there is the
approximation's, not the classifier's (docs/2d-experiments.md#usd-appendix-e).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t3d.errors import T3dError
from t3d.guidance.pose.classifier import pose_class_of


class ExactPosePosterior:
    option = "posterior"  # its --pose-classifier value
    noisy = True  # reads x_t directly (no Tweedie step, no decoder)

    def __init__(self, prior, prompt: str, num_classes: int):
        azimuths = prior.mixture_azimuths()
        if azimuths is None:
            raise T3dError(f"--pose-classifier {self.option} needs a prior with an exact pose posterior (the "
                           "analytic prior); with Stable Diffusion use --pose-classifier templates")
        self.prior, self.num_classes = prior, num_classes
        self.cond = prior.embed([prompt])
        self.class_onehot = F.one_hot(pose_class_of(azimuths, num_classes), num_classes).float()
        self.class_onehot = self.class_onehot.to(prior.device)

    def log_probs_noisy(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p(k | x_t) (B, K) under the prompt's conditioning."""
        w = self.prior.posterior(x_t, t, self.cond.expand(x_t.shape[0], -1))
        return torch.log((w @ self.class_onehot).clamp_min(1e-30))


class ExactCleanPosePosterior(ExactPosePosterior):
    option = "posterior-x0"
    noisy = False  # a clean-image classifier: the rectifier feeds it the decoded Tweedie estimate

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """log p(k | x0) (B, K) for images in [0, 1]: the prior's posterior at t = 0."""
        x0 = self.prior.encode(images)
        return self.log_probs_noisy(x0, torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device))
