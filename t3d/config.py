"""One dataclass tree for a run, YAML load/save, and the method presets.

Precedence when a run is built: dataclass defaults < prior defaults < method preset < user flags.
The resolved tree is saved as `config.yaml` in the run folder; `t3d generate --config` replays it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from t3d.errors import T3dError


@dataclass
class CameraConfig:
    """Random training cameras (degrees, world units). None = the prior's preferred framing."""

    azimuth: tuple[float, float] = (-180.0, 180.0)
    elevation: tuple[float, float] = (-10.0, 45.0)
    distance: Optional[tuple[float, float]] = None
    fovy: Optional[tuple[float, float]] = None
    batch: int = 2


@dataclass
class FieldConfig:
    encoding: str = "dense"  # dense | hash (hash uses tinycudann automatically when importable)
    grid_resolution: int = 48  # dense grid
    grid_features: int = 8
    hash_levels: int = 16
    hash_features: int = 2
    hash_log2_table: int = 19
    hash_base_resolution: int = 16
    hash_max_resolution: int = 2048
    mlp_width: int = 32
    mlp_layers: int = 1
    bound: float = 1.0
    blob_density: float = 10.0  # Magic3D-style density bias: blob_density * (1 - r / blob_radius)
    blob_radius: float = 0.5
    lr_encoding: float = 1e-2
    lr_mlp: float = 1e-2  # measured: at 1e-3 the 1-layer colour MLP lags the grid and runs end dark and faceless


@dataclass
class RenderConfig:
    resolution: int = 0  # 0 = the prior's image size
    resolution_milestone: Optional[tuple[float, int]] = None  # (fraction of run, resolution after it)
    samples_per_ray: int = 64
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    occupancy_resolution: int = 32
    occupancy_every: int = 16  # steps between occupancy-grid refreshes
    occupancy_warmup: int = 64  # steps before pruning starts (the blob is everywhere at first)
    shading: str = "albedo"  # albedo | diffuse (random light, with textureless augmentation)
    textureless_prob: float = 0.0


@dataclass
class AnalyticConfig:
    """The built-in closed-form prior over posed reference images (see priors/analytic.py)."""

    source: str = "builtin"  # builtin | path to a folder with poses.json
    resolution: int = 32
    azimuth_step: float = 10.0
    elevations: tuple[float, ...] = (-5.0, 10.0, 25.0, 40.0)
    jitter_copies: int = 2  # appearance-jittered copies per pose
    front_mass: float = 0.75  # prior mass on |azimuth| < front_halfwidth: text-to-image models' bias
    front_halfwidth: float = 45.0
    # The unconditional branch's pose mass: "uniform" (a text-free model has seen objects from every
    # side; it is the prompt that makes the face likely, so CFG amplifies the bias) | "biased".
    uncond_pose: str = "uniform"
    adherence: float = 0.5  # how much "back view" really conditions on back references (1 = fully)
    bandwidth: float = 0.25  # kernel width h per pixel value in [-1, 1]: softens the posterior
    distance: float = 2.0  # framing of the references, also the training cameras' default
    fovy: float = 45.0


@dataclass
class SDConfig:
    """Stable Diffusion prior knobs (used when --model is a diffusers id or folder).

    The defaults are the fast path on a big card; the memory knobs trade speed for VRAM on 8-12 GB
    cards (see README "VRAM")."""

    dtype: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp16 | bf16 | fp32
    revision: Optional[str] = None  # Hub revision (branch, tag or commit)
    latent_mode: str = "vae"  # vae: render -> VAE encode | rgb: low-res render mapped to latents
    attention_slicing: bool = False
    channels_last: bool = False
    vae_checkpointing: bool = False


@dataclass
class RectifierConfig:
    """RecDreamer's rectifier r(x_t) = sum_k f(k)/pbar_t(k) p(k | x0_hat) (guidance/rectifier.py)."""

    enabled: bool = False
    mode: str = "exact"  # exact: gradient through prior, decoder, classifier | stopgrad: eps_p held constant
    pose_classes: int = 4  # K azimuth classes; 4 = front, back, left, right
    pose_features: str = ""  # "" = the prior's default (pixels for analytic, DINOv2-reg-small else); or ID/FOLDER
    pose_templates: str = ""  # "" = the prior's own (analytic references / samples); or a folder with poses.json
    # templates: the paper's training-free classifier on x0_hat | posterior: analytic prior only, the
    # exact p(k | x_t) of its mixture (ground truth for studying the rectifier; guidance/pose_posterior.py)
    # | posterior-x0: analytic only, its exact clean p(k | x0) at x0_hat (the DPS step, perfect classifier)
    classifier: str = "templates"
    tau_patch: float = 0.01  # patch-matching softmax temperature (paper B.1.4)
    tau_pose: float = 0.05  # class softmax temperature (paper B.1.4)
    ema_rate: float = 1 - 0.1 ** (1 / 100)  # alpha_ema: the last 100 updates hold 90% of the weight
    ema_buckets: int = 10  # n_t intervals of T/n_t timesteps, one EMA each (paper B.2)
    template_steps: int = 20  # DDIM steps when templates are sampled from the prior


@dataclass
class ScoreModelConfig:
    """VSD/ESD's trainable camera-conditioned score model of the renders (guidance/score_model.py)."""

    # auto: LoRA on a diffusers UNet (SD); on the analytic prior the closed-form score of the recent
    # renders (guidance/kernel_score.py), since a network trained from scratch lags | network | kernel
    kind: str = "auto"
    memory: int = 64  # kernel: renders remembered (a few dozen steps of batch 2)
    camera_width: float = 20.0  # kernel: degrees, std of the camera kernel over viewing directions
    uncond_prob: float = 0.5  # camera dropped in training (ESD appendix C; threestudio's VSD uses 0.1)
    lr: float = 1e-4  # AdamW (ProlificDreamer)
    lora_rank: int = 4  # SD prior: LoRA rank on the UNet's attention layers
    channels: tuple[int, ...] = (32, 64)  # analytic prior: widths of the small residual UNet


@dataclass
class InversionConfig:
    """SDI's noise by DDIM inversion (`guidance.noise: inversion`); paper defaults."""

    scale: Optional[float] = None  # CFG of the inversion; None = -guidance_scale (the paper's finding)
    steps_per_t: float = 10.0  # int(steps_per_t * t) inversion steps, t a fraction of T
    tau: float = 1.0 / 30.0  # invert to t + tau, tau ~ U(0, this) as a fraction of T
    extra_noise: float = 0.3  # std of the fresh noise added to the inverted noise (entropy term)


@dataclass
class GuidanceConfig:
    guidance_scale: float = 100.0
    t_min: float = 0.02
    t_max: float = 0.98
    t_schedule: str = "uniform"  # uniform | anneal (linear t_max -> t_min over the run) | bnf (RecDreamer B.3)
    bnf_intervals: int = 2  # n_i of the back-and-forth schedule
    aux_views: tuple[str, ...] = ()  # RecDreamer: append ", from side view, from back view" to the prompt
    baseline: str = "noise"  # noise (SDS) | score_model (VSD/ESD: eps_phi of the renders)
    esd_lambda: float = 0.0  # ESD: weight of eps_phi(no camera); 0 = VSD
    t_max_milestone: Optional[tuple[float, float]] = None  # (fraction of run, t_max after it): ProlificDreamer
    score_model: ScoreModelConfig = _field(default_factory=ScoreModelConfig)
    # D-SDS clip of w(t) (eps_p - baseline): (start, end), "auto" = the prior's default, None = off
    score_clip: Optional[Union[tuple[float, float], str]] = None
    weighting: str = "sds"  # sds: w(t) = 1 - alphabar_t | sigma: s_t / a_t (SDI) | uniform
    # gaussian (fresh i.i.d.) | inversion (SDI: DDIM inversion of the render) | consistent (GSD 3D-consistent)
    noise: str = "gaussian"
    inversion: InversionConfig = _field(default_factory=InversionConfig)
    convexity: float = 0.0  # SDI convexity regulariser weight (needs rendered normals while active)
    convexity_until: float = 0.4  # fraction of the run the convexity term is active for
    noise_upsample: int = 9  # GSD: sub-points per noised surface point (N)
    noise_hold: tuple[int, ...] = (100, 30, 12)  # GSD: steps the 3D noise is held (K), per phase
    noise_hold_from: tuple[float, ...] = (0.0, 0.3, 0.6)  # progress at which each K starts
    grad_consistency: float = 0.0  # GSD gradient-consistency weight; > 0 renders ±5° neighbour views
    neighbour_azimuth: float = 5.0  # degrees between a training view and its neighbour
    view_prompts: bool = True
    front_halfwidth: float = 45.0
    view_words: tuple[str, str, str, str] = ("front", "side", "back", "overhead")
    # D-SDS prompt debiasing: auto (only if the MLM loads from the local cache) | on | off
    prompt_debias: str = "off"
    mlm: str = "bert-base-uncased"  # masked LM id or local folder for prompt debiasing
    keep_words: tuple[str, ...] = ()  # words prompt debiasing never drops (the paper's P(u) = 1)
    debias_threshold: float = 0.95  # drop a word from a view when its PMI ratio falls below this
    perp_neg: bool = False  # Perp-Neg: azimuth-interpolated view embeddings + perpendicular negatives
    rectifier: RectifierConfig = _field(default_factory=RectifierConfig)


@dataclass
class LossConfig:
    opacity_sparsity: float = 0.0
    opacity_entropy: float = 0.0
    orientation: float = 0.0


@dataclass
class OutputConfig:
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    preview_every: int = 200
    video_frames: int = 120
    video_resolution: int = 128
    video_fps: int = 30
    video_elevation: float = 15.0
    video_panels: tuple[str, ...] = ("rgb", "depth")
    mesh_format: str = "glb"
    mesh_resolution: int = 128
    mesh_threshold: Optional[float] = None  # density level; None = auto (matches the rendered silhouettes)


@dataclass
class RunConfig:
    prompt: str = ""
    method: str = "sds"
    model: str = "analytic"
    steps: int = 800
    seed: int = 0
    device: str = "auto"
    max_bad_steps: int = 20  # consecutive non-finite steps before the run stops
    camera: CameraConfig = _field(default_factory=CameraConfig)
    field: FieldConfig = _field(default_factory=FieldConfig)
    render: RenderConfig = _field(default_factory=RenderConfig)
    analytic: AnalyticConfig = _field(default_factory=AnalyticConfig)
    sd: SDConfig = _field(default_factory=SDConfig)
    guidance: GuidanceConfig = _field(default_factory=GuidanceConfig)
    loss: LossConfig = _field(default_factory=LossConfig)
    output: OutputConfig = _field(default_factory=OutputConfig)


# A method is a preset of flags (dotted keys into RunConfig); user flags are applied after it,
# so `--method esd --score-clip 2:8` keeps both.
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "sds": {"guidance.guidance_scale": 100.0, "guidance.baseline": "noise", "guidance.esd_lambda": 0.0},
    # ProlificDreamer: CFG 7.5, eps_phi of the renders as the baseline.
    "vsd": {"guidance.guidance_scale": 7.5, "guidance.baseline": "score_model", "guidance.esd_lambda": 0.0},
    # ESD: VSD's baseline mixed with the camera-free eps_phi (lambda = 0.5, the paper's default).
    "esd": {"guidance.guidance_scale": 7.5, "guidance.baseline": "score_model", "guidance.esd_lambda": 0.5},
    # D-SDS (seeds/dsds-debiasing-scores-and-prompts.txt): SDS + dynamic score clipping scaled to the
    # prior + prompt debiasing (auto: skipped with a note when the MLM is not available offline) +
    # front bin narrowed to +-22.5 degrees and the paper's view prompts ("top view", not "overhead").
    "dsds": {"guidance.guidance_scale": 100.0, "guidance.baseline": "noise", "guidance.esd_lambda": 0.0,
             "guidance.score_clip": "auto", "guidance.prompt_debias": "auto",
             "guidance.front_halfwidth": 22.5, "guidance.view_words": ("front", "side", "back", "top")},
    # SDI: DDIM-inverted noise, t annealed 0.98 -> 0.2, CFG 7.5 (inversion -7.5), convexity 0.1 for
    # the first 40% of steps, Perp-Neg on the view prompts (the paper's setup).
    "sdi": {"guidance.guidance_scale": 7.5, "guidance.baseline": "noise", "guidance.esd_lambda": 0.0,
            "guidance.perp_neg": True, "guidance.noise": "inversion", "guidance.t_schedule": "anneal",
            "guidance.weighting": "sigma",
            "guidance.t_min": 0.2, "guidance.t_max": 0.98, "guidance.convexity": 0.1,
            "guidance.convexity_until": 0.4},
    # GSD: SDS (CFG 100, as in the paper) + 3D-consistent noise + gradient consistency (weight 5.0).
    "gsd": {"guidance.guidance_scale": 100.0, "guidance.baseline": "noise", "guidance.esd_lambda": 0.0,
            "guidance.noise": "consistent", "guidance.grad_consistency": 5.0},
    # RecDreamer USD: VSD + the pose rectifier, auxiliary view phrases instead of per-camera view
    # prompts (B.3; the official code also turns its view prompts off when USD is on), and the
    # back-and-forth timestep schedule. On the analytic prior this setting, with or without the
    # rectifier, ends in a featureless back of the head (README, Janus benchmark).
    "usd": {"guidance.guidance_scale": 7.5, "guidance.baseline": "score_model", "guidance.esd_lambda": 0.0,
            "guidance.rectifier.enabled": True, "guidance.aux_views": ("side", "back"),
            "guidance.view_prompts": False, "guidance.t_schedule": "bnf"},
}


def known_methods() -> list[str]:
    return sorted(METHOD_PRESETS)


# ---------------------------------------------------------------- dotted access and YAML


def set_dotted(cfg: Any, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for name in parents:
        node = getattr(node, name)
    if not hasattr(node, leaf):
        raise T3dError(f"unknown config key '{key}'")
    setattr(node, leaf, value)


def get_dotted(cfg: Any, key: str) -> Any:
    node = cfg
    for name in key.split("."):
        node = getattr(node, name)
    return node


def apply_method_preset(cfg: RunConfig, method: str) -> None:
    if method not in METHOD_PRESETS:
        raise T3dError(f"unknown method '{method}'; known methods: {', '.join(known_methods())}")
    cfg.method = method
    for key, value in METHOD_PRESETS[method].items():
        set_dotted(cfg, key, value)


def to_dict(cfg: Any) -> dict:
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return plain(cfg)


def _coerce(tp, value, where: str):
    """Turn a YAML value into the dataclass field's type (tuples come back as lists)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if isinstance(value, str) and str in args:  # e.g. score_clip: auto
            return value
        return _coerce(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise T3dError(f"config section '{where}' must be a mapping")
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise T3dError(f"config key '{where}' must be a list")
        args = typing.get_args(tp)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return tuple(_coerce(item or args[i], v, where) for i, v in enumerate(value))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool, float) and not isinstance(value, tp):
        raise T3dError(f"config key '{where}' must be {tp.__name__}, got {value!r}")
    return value


def from_dict(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise T3dError(f"unknown config key(s) {', '.join(sorted(f'{where}{k}' for k in unknown))}")
    kwargs = {k: _coerce(hints[k], v, f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise T3dError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise T3dError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise T3dError(f"config {path} is not a mapping")
    return from_dict(RunConfig, data)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
