"""Measurements of the GPU check (examples/gpu_check.py), one configuration at a time, in process.

- `measure_steps`: ms per `Trainer.train_step()` as `t3d generate` runs it (no extra
  synchronisation), then the per-part breakdown from further steps with the training loop's
  timing hook (`trainer.timer = t3d.timing.StepTimer(device)`, CUDA synchronised around each
  part), and the peak CUDA memory of the steps (weights included, the text encoder released as in
  a real run). Without the hook the breakdown is None ("not measured"), never zeros.
- `eps_agreement`: fp16 vs fp32 eps of the same weights on one batch, raw and under CFG (CFG 100
  multiplies the fp16 error of eps_c - eps_u by 100).

The networks of an architecture are loaded once (`load_source`, on the CPU, in the run dtype)
and each configuration gets its own copy on the device, so LoRA (VSD/ESD/USD), channels_last or
torch.compile never leak from one configuration into the next, and the peak memory is its own.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

PROMPT = "a smiling head"
PARTS_TO_COPY = ("unet", "vae", "text_encoder")


@dataclass(frozen=True)
class Variant:
    """A speed knob measured against the default configuration."""

    name: str = "default"
    channels_last: bool = False  # StableDiffusionPrior's knob: UNet weights in NHWC
    compile_unet: bool = False  # torch.compile of the UNet (no t3d option yet: measured here only)
    torch_hash_grid: bool = False  # PyTorch hash grid even where tinycudann imports


VARIANTS = {v.name: v for v in (Variant(), Variant("channels-last", channels_last=True),
                                Variant("compile", compile_unet=True), Variant("torch-hash-grid", torch_hash_grid=True))}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_source(folder: str, device: torch.device) -> tuple[dict, float]:
    """The SD parts of `folder` on the CPU in the dtype a run on `device` uses; and the load time."""
    from t3d.priors.stable_diffusion import load_sd_parts, resolve_dtype

    start = time.perf_counter()
    parts = load_sd_parts(str(folder), resolve_dtype(None, device))
    return parts, time.perf_counter() - start


def make_prior(source: dict, device: torch.device, variant: Variant = Variant(), name: str = "random"):
    """A StableDiffusionPrior over fresh copies of the source networks, on `device`."""
    from t3d.priors.stable_diffusion import StableDiffusionPrior, resolve_dtype

    parts = {k: (copy.deepcopy(v) if k in PARTS_TO_COPY else v) for k, v in source.items()}
    prior = StableDiffusionPrior.from_parts(name, **parts, device=device, dtype=resolve_dtype(None, device),
                                            channels_last=variant.channels_last)
    if variant.compile_unet:
        prior.unet = torch.compile(prior.unet)
    return prior


@contextlib.contextmanager
def hash_grid_backend(torch_only: bool):
    """Force the PyTorch hash grid while the field is built, where tinycudann would be used."""
    import t3d.scene.encodings as field_module

    original = field_module.tinycudann_available
    if torch_only:
        field_module.tinycudann_available = lambda: False
    try:
        yield
    finally:
        field_module.tinycudann_available = original


def run_config(method: str, render: int, folder: str, steps_total: int, pose_features: str | None):
    """The RunConfig of `t3d generate PROMPT --model FOLDER --method M --resolution R --encoding hash`."""
    from t3d.config import build_config

    cfg = build_config(method)
    cfg.prompt, cfg.model = PROMPT, str(folder)
    cfg.steps = steps_total  # schedules (anneal, BNF, milestones) read progress = step / steps
    cfg.render.resolution = render
    cfg.field.encoding = "hash"
    cfg.output.checkpoint_every = cfg.output.preview_every = 0
    if pose_features:
        cfg.guidance.terms.rectifier.pose_features = str(pose_features)
    return cfg


def attach_timer(trainer, device: torch.device):
    """The training loop's StepTimer on `trainer` (CUDA-synchronised around each timed part)."""
    from t3d.timing import StepTimer

    timer = StepTimer(device)
    trainer.timer = timer
    return timer



def measure_steps(cfg, prior, device: torch.device, warmup: int, steps: int, breakdown_steps: int,
                  variant: Variant = Variant()) -> dict:
    """Time `steps` training steps after `warmup`, then `breakdown_steps` more part by part."""
    from t3d.engine import Trainer
    from t3d.commands.generate import resolve_framing

    resolve_framing(cfg, prior)
    with tempfile.TemporaryDirectory(prefix="t3d-gpu-check-") as run_dir, hash_grid_backend(variant.torch_hash_grid):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        trainer = Trainer(cfg, Path(run_dir), prior, device)  # never saves: checkpoint_every = 0
        setup_s = time.perf_counter() - start
        peak_setup = None
        if device.type == "cuda":
            sync(device)
            # Setup = prompt embedding (text encoder on the device), LoRA, USD's template sampling.
            peak_setup = round(torch.cuda.max_memory_allocated(device) / 2**20)
            torch.cuda.reset_peak_memory_stats(device)
        skipped = trainer.advance(warmup)
        sync(device)
        start = time.perf_counter()
        skipped += trainer.advance(steps)
        sync(device)
        ms_per_step = (time.perf_counter() - start) / max(steps, 1) * 1000
        breakdown = calls = None
        timer = attach_timer(trainer, device) if breakdown_steps > 0 else None
        if timer is not None:
            timer.reset()
            skipped += trainer.advance(breakdown_steps)
            if timer.totals:
                breakdown = {k: round(v / breakdown_steps * 1000, 2) for k, v in timer.totals.items()}
                calls = {k: round(c / breakdown_steps, 2) for k, c in timer.counts.items()}
        result = {"ms_per_step": round(ms_per_step, 2), "breakdown_ms": breakdown, "calls_per_step": calls,
                  "setup_s": round(setup_s, 2), "steps_timed": steps, "steps_breakdown": breakdown_steps if breakdown else 0,
                  "skipped_nonfinite": skipped, "encoding": type(trainer.scene.field.encoding).__name__,
                  "dtype": str(prior.dtype).replace("torch.", "")}
        if device.type == "cuda":
            result["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
            result["peak_setup_mem_mb"] = peak_setup
        del trainer
    return result


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _compare(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(relative L2 error of a w.r.t. b, cosine, max abs difference), in float64."""
    a, b = a.double().flatten(), b.double().flatten()
    rel = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    return rel, cos, (a - b).abs().max().item()


@torch.no_grad()
def _guided_pair(prior, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(eps_c, eps_u) in one UNet call on [uncond; cond], as the training step makes it."""
    b = x_t.shape[0]
    cond = prior.embed([PROMPT] * b + [""] * b)
    eps = prior.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), cond)
    return eps[:b], eps[b:]


def eps_agreement(folder: str, source16: dict, device: torch.device, batch: int = 2, seed: int = 0) -> dict:
    """fp16 vs fp32 eps of one batch through the whole prior (text encoder and UNet)."""
    from t3d.priors.stable_diffusion import StableDiffusionPrior

    parts = {k: (copy.deepcopy(v) if k in PARTS_TO_COPY else v) for k, v in source16.items()}
    prior16 = StableDiffusionPrior.from_parts("fp16", **parts, device=device, dtype="fp16")
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, prior16.latent_channels, prior16.latent_size, prior16.latent_size)
    x_t = torch.randn(shape, generator=gen).to(device)
    t = torch.linspace(100, 900, batch).long().to(device)
    c16, u16 = _guided_pair(prior16, x_t, t)
    del prior16
    release(device)
    prior32 = StableDiffusionPrior(str(folder), device, dtype="fp32")
    c32, u32 = _guided_pair(prior32, x_t, t)
    del prior32
    release(device)
    rel, cos, max_abs = _compare(torch.cat([c16, u16]), torch.cat([c32, u32]))
    guided = {f"{s:g}": round(_compare(u16 + s * (c16 - u16), u32 + s * (c32 - u32))[0], 6) for s in (7.5, 100.0)}
    return {"batch": batch, "t": t.tolist(), "rel_l2": round(rel, 6), "cosine": round(cos, 8),
            "max_abs": round(max_abs, 5), "guided_rel_l2": guided}
