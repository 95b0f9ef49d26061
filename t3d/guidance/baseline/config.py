"""Baselines: what is subtracted from the prior's eps (the injected noise, or a score model of
the renders), torch-free config."""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import VSD, option
from t3d.config.registry import Choices, Slot
from t3d.errors import T3dError

# eps_phi's network: auto = the prior's choice (LoRA on a diffusers UNet; on the analytic prior the
# closed-form score of recent renders) | network (LoRA, or a pixel UNet without one) | kernel.
BACKBONES = Choices("score model", {
    "auto": "t3d.guidance.baseline.backbones:default_backbone",
    "network": "t3d.guidance.baseline.backbones:network_backbone",
    "kernel": "t3d.guidance.baseline.kernel_score:RenderKernelScore",
})


@dataclass
class BaselineConfig:
    """`noise`: SDS subtracts the injected noise."""

    kind: str = option("noise", "What the prior's eps is compared with: noise (SDS) | score_model (VSD/ESD: "
                       "eps_phi of the renders).", flag="--baseline", panel=VSD)


@dataclass
class ScoreModelConfig(BaselineConfig):
    """VSD/ESD's trainable camera-conditioned score model of the renders (baseline/score_model.py)."""

    kind: str = "score_model"
    esd_lambda: float = option(0.0, "ESD: weight of the camera-free score eps_phi(x_t, no camera) in the "
                               "baseline, 0..1 (esd preset 0.5; 0 = VSD).", flag="--esd-lambda", panel=VSD,
                               low=0, high=1)
    backbone: str = option("auto", "VSD/ESD/USD eps_phi: auto (LoRA on SD; on the analytic prior the "
                           "closed-form score of recent renders), network or kernel.", flag="--score-model",
                           panel=VSD)
    memory: int = option(64, "kernel: renders remembered (a few dozen steps of batch 2)", low=1)
    camera_width: float = option(20.0, "kernel: degrees, std of the camera kernel over viewing directions",
                                 above=0)
    uncond_prob: float = option(0.5, "VSD/ESD: probability of training the score model without the camera (0.5 "
                                "is the ESD paper's).", flag="--uncond-prob", panel=VSD,
                                low=0, high=1)
    lr: float = option(1e-4, "AdamW learning rate of the score model (ProlificDreamer)", above=0)
    lora_rank: int = option(4, "VSD/ESD with Stable Diffusion: LoRA rank of the score model.",
                            flag="--lora-rank", panel=VSD, low=1, high=1024)
    channels: tuple[int, ...] = option((32, 64), "analytic prior: widths of the small residual UNet", low=1)

    def validate(self) -> None:
        BACKBONES.check(self.backbone, "--score-model")
        if not self.channels:
            raise T3dError("guidance.baseline.channels must list at least one width")


BASELINES = Slot("baseline", BaselineConfig, "--baseline")
BASELINES.register("noise", BaselineConfig, "t3d.guidance.baseline.noise:NoiseBaseline")
BASELINES.register("score_model", ScoreModelConfig, "t3d.guidance.baseline.score_model:CameraScoreModel")
