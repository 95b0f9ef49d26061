"""The guidance section of a run: one config per slot of the score-distillation step (torch-free).

    t ~ timesteps; n ~ noise; eps_p = guide(x_t); grad = post(w(t) (eps_p - baseline)); + terms

Each slot's pieces and their options live in the slot's package (timesteps/, noise/, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import METHOD, option, section
from t3d.config.registry import Choices
from t3d.guidance.baseline.config import BaselineConfig
from t3d.guidance.guide.config import GuideConfig
from t3d.guidance.noise.config import NoiseConfig
from t3d.guidance.post.config import PostConfig
from t3d.guidance.terms.config import TermsConfig
from t3d.guidance.timesteps.config import TimestepsConfig

# w(t) of the SDS gradient: sds = 1 - alphabar_t | sigma = s_t / a_t (SDI) | uniform
WEIGHTINGS = Choices("weighting", {
    "sds": "t3d.priors.schedule:sds_weight",
    "sigma": "t3d.priors.schedule:sigma_weight",
    "uniform": "t3d.priors.schedule:uniform_weight",
})


@dataclass
class GuidanceConfig:
    guide: GuideConfig = section(GuideConfig)
    timesteps: TimestepsConfig = section(TimestepsConfig)
    noise: NoiseConfig = section(NoiseConfig)
    baseline: BaselineConfig = section(BaselineConfig)
    weighting: str = option("sds", "w(t) of the gradient: sds (1 - alphabar_t) | sigma (s_t / a_t, SDI) | uniform",
                            flag="--weighting", panel=METHOD)
    post: PostConfig = section(PostConfig)
    terms: TermsConfig = section(TermsConfig)

    def validate(self) -> None:
        WEIGHTINGS.check(self.weighting, "--weighting")
