"""A piece defined outside t3d: registered from this file alone, selected from config, trained."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import yaml
from rich.console import Console

from t3d.commands.generate import GenerateRequest, run_generate
from t3d.config.options import option
from t3d.errors import T3dError
from t3d.guidance.noise.config import NOISE, NoiseConfig
from t3d.guidance.piece import Piece
from tests.conftest import TINY_RUN


@dataclass
class ToyNoiseConfig(NoiseConfig):
    kind: str = "toy"
    amplitude: float = option(0.5, "std of the toy noise", low=0)


class ToyNoise(Piece):
    """Gaussian noise of a chosen std, counting its calls."""

    calls = 0

    def __init__(self, amplitude: float):
        self.amplitude = amplitude

    @classmethod
    def from_config(cls, cfg: ToyNoiseConfig, context) -> "ToyNoise":
        return cls(cfg.amplitude)

    def sample(self, ctx) -> torch.Tensor:
        ToyNoise.calls += 1
        return self.amplitude * torch.randn(ctx.x0.shape, generator=ctx.generator).to(ctx.x0)


@pytest.fixture
def toy_noise():
    NOISE.register("toy", ToyNoiseConfig, ToyNoise)
    ToyNoise.calls = 0
    yield
    NOISE.unregister("toy")


def _sets(tiny: list[str]) -> list[str]:
    return [tiny[i + 1] for i, flag in enumerate(tiny) if flag == "--set"]


def test_a_noise_source_registered_in_a_test_trains_and_is_recorded(tmp_path, toy_noise):
    run = tmp_path / "run"
    sets = _sets(TINY_RUN) + ["guidance.noise.kind=toy", "guidance.noise.amplitude=0.25"]
    req = GenerateRequest(prompt="a smiling head", method="sds", steps=3, out=run, sets=sets,
                          overrides={"render.resolution": 16, "camera.batch": 1, "output.checkpoint_every": 3,
                                     "output.preview_every": 0},
                          video=False, mesh=False)
    run_generate(req, Console(quiet=True))
    assert ToyNoise.calls == 3  # one noise draw per training step: the toy source was the one used
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["guidance"]["noise"] == {"kind": "toy", "amplitude": 0.25}
    assert (run / "checkpoints" / "step_000003.safetensors").exists()


def test_an_option_of_another_piece_names_its_owner(toy_noise):
    from t3d.config import build_config

    with pytest.raises(T3dError, match="noise 'toy'.*this run's noise is 'gaussian'"):
        build_config("sds", values=[("guidance.noise.amplitude", 0.1, "guidance.noise.amplitude")])
    with pytest.raises(T3dError, match="amplitude must be at least 0"):
        from t3d.config import validate

        cfg = build_config("sds", sets=["guidance.noise.kind=toy", "guidance.noise.amplitude=-1"])
        cfg.prompt = "a head"
        validate(cfg)
