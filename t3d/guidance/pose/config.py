"""USD's pose rectifier and its classifiers (RecDreamer), torch-free config."""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import USD, option
from t3d.config.registry import Choices
from t3d.errors import T3dError

RECTIFIER_MODES = ("exact", "stopgrad")
# templates: the paper's training-free classifier on x0_hat | posterior: the prior's exact p(k | x_t)
# (a ground truth for studying the rectifier) | posterior-x0: its exact clean p(k | x0) at x0_hat.
CLASSIFIERS = Choices("pose classifier", {
    "templates": "t3d.guidance.pose.templates:build_pose_classifier",
    "posterior": "t3d.guidance.pose.posterior:ExactPosePosterior",
    "posterior-x0": "t3d.guidance.pose.posterior:ExactCleanPosePosterior",
})


@dataclass
class RectifierConfig:
    """r(x_t) = sum_k f(k)/pbar_t(k) p(k | x0_hat) (guidance/pose/rectifier.py)."""

    enabled: bool = option(False, "USD's pose rectifier on top of any method (usd preset: on).",
                           flag="--rectifier/--no-rectifier", panel=USD)
    mode: str = option("exact", "USD rectifier gradient: exact (through prior, decoder, classifier) | stopgrad "
                       "(prior eps held constant; cheaper).", flag="--rectifier-mode", panel=USD)
    pose_classes: int = option(4, "USD: number K of azimuth pose classes (4: front, back, left, right).",
                               flag="--pose-classes", panel=USD, low=2, high=360)
    pose_features: str = option("", "USD: pose-classifier features, a Dinov2WithRegisters Hub id or folder.",
                                flag="--pose-features", panel=USD, shown="the prior's")
    pose_templates: str = option("", "USD: folder of template images with poses.json (file, azimuth, elevation).",
                                 flag="--pose-templates", panel=USD, shown="the prior's references or samples")
    classifier: str = option("templates", "USD: templates (the paper's training-free classifier) | posterior "
                             "(the prior's exact p(pose | x_t), where it has one) | posterior-x0 (its exact "
                             "clean p(pose | x0) at the Tweedie estimate).", flag="--pose-classifier", panel=USD)
    tau_patch: float = option(0.01, "patch-matching softmax temperature (paper B.1.4)", above=0)
    tau_pose: float = option(0.05, "class softmax temperature (paper B.1.4)", above=0)
    ema_rate: float = option(1 - 0.1 ** (1 / 100), "alpha_ema: the last 100 updates hold 90% of the weight",
                             above=0, high=1)
    ema_buckets: int = option(10, "n_t intervals of T/n_t timesteps, one EMA each (paper B.2)", low=1, high=1000)
    template_steps: int = option(20, "DDIM steps when templates are sampled from the prior", low=1, high=1000)

    def validate(self) -> None:
        if self.mode not in RECTIFIER_MODES:
            raise T3dError(f"unknown rectifier mode '{self.mode}' (--rectifier-mode); choose exact or stopgrad")
        CLASSIFIERS.check(self.classifier, "--pose-classifier")
