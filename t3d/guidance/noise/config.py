"""Noise sources: where n in x_t = a_t x0 + s_t n comes from (torch-free config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t3d.config.options import GSD, METHOD, SDI, option
from t3d.config.registry import Slot
from t3d.errors import T3dError


@dataclass
class NoiseConfig:
    """`gaussian`: fresh i.i.d. N(0, I) each step (SDS)."""

    kind: str = option("gaussian", "Noise in x_t: gaussian (fresh i.i.d., SDS) | inversion (SDI: DDIM inversion "
                       "of the render) | consistent (GSD: 3D-consistent noise from the rendered surface).",
                       flag="--noise", panel=METHOD)


@dataclass
class InversionNoiseConfig(NoiseConfig):
    """SDI's noise by DDIM inversion of the current render (paper defaults)."""

    kind: str = "inversion"
    scale: Optional[float] = option(None, "CFG scale of the DDIM inversion (SDI's finding: minus the forward scale).",
                                    flag="--inversion-scale", panel=SDI, shown="minus --guidance-scale")
    steps_per_t: float = option(10.0, "DDIM inversion steps per unit t: int(N * t) steps, t a fraction of T.",
                                flag="--inversion-steps", panel=SDI, above=0, high=1000)
    tau: float = option(1.0 / 30.0, "Invert to t + tau, tau ~ U(0, TAU) as a fraction of T.",
                        flag="--inversion-tau", panel=SDI, low=0, high=0.999999)
    extra_noise: float = option(0.3, "Std of fresh noise added to the inverted noise.",
                                flag="--inversion-extra-noise", panel=SDI, low=0)


@dataclass
class ConsistentNoiseConfig(NoiseConfig):
    """GSD's 3D-consistent integral noise (held on a point cloud for K steps)."""

    kind: str = "consistent"
    upsample: int = option(9, "sub-points per noised surface point (N)", low=1, high=64)
    hold: tuple[int, ...] = option((100, 30, 12), "steps the 3D noise is held (K), per phase", low=1)
    hold_from: tuple[float, ...] = option((0.0, 0.3, 0.6), "progress at which each K starts", low=0, high=1)

    def validate(self) -> None:
        if not self.hold or len(self.hold) != len(self.hold_from) or list(self.hold_from) != sorted(self.hold_from):
            raise T3dError("guidance.noise.hold needs one step count per increasing guidance.noise.hold_from value")


NOISE = Slot("noise", NoiseConfig, "--noise")
NOISE.register("gaussian", NoiseConfig, "t3d.guidance.noise.gaussian:GaussianNoise")
NOISE.register("inversion", InversionNoiseConfig, "t3d.guidance.noise.inversion:InversionNoise")
NOISE.register("consistent", ConsistentNoiseConfig, "t3d.guidance.noise.consistent:ConsistentNoise")
