"""The run config: one tree of small per-piece sections (each defined beside its piece).

Precedence when a run is built (t3d/config/layers.py): dataclass defaults < method preset <
`--config` file < flags < `--set`. The resolved tree is saved as `config.yaml` in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from t3d.config.options import BASICS, OUTPUT, option, section
from t3d.config.presets import check_method
from t3d.errors import T3dError
from t3d.export.config import MeshExportConfig, VideoConfig
from t3d.guidance.config import GuidanceConfig
from t3d.priors.config import AnalyticConfig, SDConfig
from t3d.prompts.config import PromptsConfig
from t3d.scene.config import CameraConfig, FieldConfig, RenderConfig

MAX_SEED = 2**32 - 1
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class LossConfig:
    """Regularisers of the rendered opacity, added to the guidance loss by the engine."""

    opacity_sparsity: float = option(0.0, "weight of the mean opacity", low=0)
    opacity_entropy: float = option(0.0, "weight of the opacity's binary entropy", low=0)
    orientation: float = option(0.0, "weight of DreamFusion's orientation loss", low=0)


@dataclass
class OutputConfig:
    checkpoint_every: int = option(200, "Steps between checkpoints.", flag="--checkpoint-every",
                                   panel=OUTPUT, low=0)
    keep_checkpoints: int = option(3, "checkpoints kept (older ones are deleted)", low=1)
    preview_every: int = option(200, "Steps between preview images; 0 = none.",
                                flag="--preview-every", panel=OUTPUT, low=0)


@dataclass
class RunConfig:
    prompt: str = option("", "what to make")
    method: str = option("sds", "Score-distillation method preset: sds | vsd | esd | dsds | sdi | gsd | usd.",
                         flag="--method", panel=BASICS)
    model: str = option("auto", "Prior: auto (Stable Diffusion on a CUDA GPU when its weights are at hand, "
                        "else the built-in prior), analytic (built-in, offline), analytic:FOLDER (your posed "
                        "images), sd (the default Stable Diffusion), or a diffusers model id / local folder.",
                        flag="--model", panel=BASICS)
    steps: int = option(800, "Total optimisation steps. With --resume: the new total.",
                        flag="--steps", panel=BASICS, low=1, high=10**9)
    seed: int = option(0, "Random seed; same seed and device give the same result.", flag="--seed",
                       panel=BASICS, low=0, high=MAX_SEED)
    device: str = option("auto", "auto | cpu | cuda.", flag="--device", panel=BASICS)
    threads: int = option(0, "CPU threads for torch; 0 = OMP_NUM_THREADS if set, else the cores this process "
                          "may use.", flag="--threads", panel=BASICS, low=0, high=1024, shown="the usable cores")
    max_bad_steps: int = option(20, "consecutive non-finite steps before the run stops", low=1)
    camera: CameraConfig = section(CameraConfig)
    field: FieldConfig = section(FieldConfig)
    render: RenderConfig = section(RenderConfig)
    analytic: AnalyticConfig = section(AnalyticConfig)
    sd: SDConfig = section(SDConfig)
    guidance: GuidanceConfig = section(GuidanceConfig)
    prompts: PromptsConfig = section(PromptsConfig)
    loss: LossConfig = section(LossConfig)
    output: OutputConfig = section(OutputConfig)
    video: VideoConfig = section(VideoConfig)
    mesh: MeshExportConfig = section(MeshExportConfig)

    def validate(self) -> None:
        if not self.prompt or not self.prompt.strip():
            raise T3dError("the prompt is empty; say what to make, e.g. t3d generate \"a smiling head\"")
        check_method(self.method)
        if self.device not in DEVICES:
            raise T3dError(f"unknown device '{self.device}' (--device); choose auto, cpu or cuda")
        if self.model == "analytic:":
            raise T3dError("--model analytic:PATH needs a folder after the colon")
