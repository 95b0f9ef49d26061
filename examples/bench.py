"""`make bench`: training-step speed and peak memory, one JSON line per configuration.

Each configuration runs in its own subprocess, so its peak memory is its own:
- CPU: peak resident set size of that process (`peak_mem_kind: "cpu_max_rss"`);
- CUDA: `torch.cuda.max_memory_allocated` from the end of setup on (weights included, the text
  encoder already released as in a real run), plus the peak during setup.

Both measurements run the real `Trainer.train_step()`, the one `t3d generate` runs:
- `steps_per_s` / `ms_per_step`: the step as it is, no extra synchronisation;
- `breakdown_ms`: the same step with an enabled `t3d.timing.StepTimer` hook, which synchronises
  CUDA around each part: cameras, render, encode, noise (SDI's inversion, GSD's cloud), prior
  (the guided prior call), baseline (VSD/ESD's eps_phi), terms (USD, GSD, SDI extras), the rest of
  the guidance loss, backward, optimizer, update (eps_phi's training step, USD's EMA), occupancy.
  Synchronising costs a little, so the parts add up to slightly more than `ms_per_step`.

The SD configurations use random weights with the exact architectures of SD 2.1-base / SD 1.5
(t3d/priors/tiny_sd.py): the same compute as the real checkpoints, no download. Scores from random
weights are meaningless, so these runs measure speed and memory only.

Usage: python examples/bench.py [--quick] [--only SUBSTRING] [--threads N] (or T3D_BENCH_QUICK=1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

@dataclass(frozen=True)
class BenchConfig:
    """One configuration; steps are (warmup, timed train_step, timed breakdown), full and quick."""

    name: str
    device: str  # cpu | cuda
    prior: str  # analytic | tiny | sd15 | sd21-base
    render: int  # training render resolution
    latent_mode: str = "vae"
    method: str = "sds"  # a METHOD_PRESETS key: per-step cost of each method on the same setup
    batch: int = 2  # cameras per step (the RunConfig default)
    encoding: str = "dense"
    knobs: dict = field(default_factory=dict)  # StableDiffusionPrior memory knobs
    overrides: dict = field(default_factory=dict)  # dotted config keys set after the method preset
    # USD on a non-analytic prior: "tiny" saves a random tiny DINOv2-with-registers folder and points
    # --pose-features at it (speed only, like the random-weight UNets; no download).
    pose_features: str = ""
    steps: tuple[int, int, int] = (2, 10, 5)  # CPU: a full `make bench` stays within ~3 minutes
    quick_steps: tuple[int, int, int] = (1, 3, 2)


CUDA_STEPS, CUDA_QUICK = (10, 50, 20), (3, 10, 5)
USD_STEPS = (3, 30, 10)
# (row suffix, method, overrides) of the rows that give USD's cost as a ratio to VSD's.
USD_ROWS = (("vsd", "vsd", {}), ("usd", "usd", {}), ("usd-stopgrad", "usd", {"guidance.terms.rectifier.mode": "stopgrad"}))
CONFIGS = [
    BenchConfig("analytic-cpu-64", "cpu", "analytic", 64),
    # Each method's cost on the same setup, to compare with SDS (the line above).
    *(BenchConfig(f"analytic-cpu-64-{m}", "cpu", "analytic", 64, method=m)
      for m in ("esd", "dsds", "sdi", "gsd")),
    # USD's cost is quoted as a ratio to VSD's (targets: <= 1.3x exact, <= 1.1x stopgrad), so these
    # three rows time 3x more steps: 10 steps left the ratio at the mercy of one slow step.
    *(BenchConfig(f"analytic-cpu-64-{name}", "cpu", "analytic", 64, method=m, overrides=o, steps=USD_STEPS)
      for name, m, o in USD_ROWS),
    BenchConfig("sd-tiny-cpu-64", "cpu", "tiny", 64),
    BenchConfig("sd-tiny-cpu-16-rgb-latents", "cpu", "tiny", 16, latent_mode="rgb"),
    # USD vs VSD where the rectifier's exact gradient must run back through a UNet, the VAE decoder
    # and a ViT (the paper's cost), not only a closed-form prior.
    *(BenchConfig(f"sd-tiny-cpu-64-{name}", "cpu", "tiny", 64, method=m, overrides=o, steps=USD_STEPS,
                  pose_features="tiny" if m == "usd" else "")
      for name, m, o in USD_ROWS),
    BenchConfig("sd21-base-cuda-64", "cuda", "sd21-base", 64, encoding="hash",
                steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
    BenchConfig("sd21-base-cuda-256", "cuda", "sd21-base", 256, encoding="hash",
                steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
    BenchConfig("sd21-base-cuda-64-rgb-latents", "cuda", "sd21-base", 64, latent_mode="rgb", encoding="hash",
                steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
    # The VRAM knobs for 8-12 GB cards (--low-vram plus --batch 1): one camera per step, UNet and
    # VAE gradient checkpointing.
    BenchConfig("sd21-base-cuda-64-lowmem", "cuda", "sd21-base", 64, batch=1, encoding="hash",
                knobs={"unet_checkpointing": True, "vae_checkpointing": True},
                steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
    BenchConfig("sd15-cuda-64", "cuda", "sd15", 64, encoding="hash", steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
]


PARTS = ("cameras", "render", "encode", "noise", "prior", "baseline", "terms", "guidance_other", "backward",
         "optimizer", "update", "occupancy")


# ---------------------------------------------------------------- one configuration


def _build_prior(bc: BenchConfig, cfg, device, workdir: str):
    if bc.prior == "analytic":
        from t3d.priors.factory import build_prior

        return build_prior(cfg, device)
    from t3d.priors.stable_diffusion import StableDiffusionPrior
    from t3d.priors.tiny_sd import random_sd_parts

    parts = random_sd_parts(os.path.join(workdir, "tokenizer"), bc.prior, device=device)
    return StableDiffusionPrior.from_parts(f"random:{bc.prior}", **parts, device=device,
                                           latent_mode=bc.latent_mode, **bc.knobs)


# --smoke: the same code path at toy sizes, for the test that the driver still runs (seconds, not minutes).
SMOKE = {"render.resolution": 16, "analytic.resolution": 16, "analytic.azimuth_step": 30.0,
         "analytic.jitter_copies": 1, "field.grid_resolution": 16, "render.samples_per_ray": 16}


def bench_config(bc: BenchConfig, steps: int, smoke: bool = False):
    from t3d.config import build_config

    values = [(k, v, k) for k, v in bc.overrides.items()]
    values += [("render.resolution", bc.render, "render"), ("camera.batch", bc.batch, "batch"),
               ("field.encoding", bc.encoding, "encoding"), ("output.checkpoint_every", 0, ""),
               ("output.preview_every", 0, "")]
    values += [(k, v, k) for k, v in SMOKE.items()] if smoke else []
    cfg = build_config(bc.method, values=values)
    cfg.prompt, cfg.steps = "a smiling head", steps
    cfg.model = "analytic" if bc.prior == "analytic" else f"random:{bc.prior}"
    return cfg


def run_one(bc: BenchConfig, quick: bool, smoke: bool = False) -> dict:
    import torch

    device = torch.device(bc.device)
    warmup, timed, parts_steps = bc.quick_steps if quick else bc.steps
    cfg = bench_config(bc, warmup + timed + parts_steps, smoke)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="t3d-bench-") as workdir:
        if bc.pose_features == "tiny":
            from t3d.guidance.pose.features import save_tiny_dinov2

            cfg.guidance.terms.rectifier.pose_features = str(save_tiny_dinov2(os.path.join(workdir, "dinov2")))
        return measure(bc, cfg, device, workdir, quick, started)



def measure(bc: BenchConfig, cfg, device, workdir: str, quick: bool, started: float) -> dict:
    import torch

    from t3d.commands.generate import resolve_framing
    from t3d.engine import Trainer
    from t3d.timing import StepTimer

    warmup, timed, parts_steps = bc.quick_steps if quick else bc.steps
    prior = _build_prior(bc, cfg, device, workdir)
    resolve_framing(cfg, prior)
    trainer = Trainer(cfg, Path(workdir), prior, device)  # never saves here
    setup_s = time.perf_counter() - started
    sync = StepTimer(device)._sync
    peak_setup = None
    if device.type == "cuda":
        sync()
        peak_setup = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    skipped = trainer.advance(warmup)
    sync()
    start = time.perf_counter()
    skipped += trainer.advance(timed)
    sync()
    ms_per_step = (time.perf_counter() - start) / max(timed, 1) * 1000
    trainer.timer = timer = StepTimer(device)
    skipped += trainer.advance(parts_steps)
    result = {
        "config": bc.name, "device": _device_name(device), "prior": bc.prior, "method": bc.method,
        "render": bc.render, "batch": bc.batch, "encoding": type(trainer.scene.field.encoding).__name__,
        "prior_image": prior.image_size, "latent_mode": getattr(prior, "latent_mode", "pixels"),
        "dtype": str(getattr(prior, "dtype", torch.float32)).replace("torch.", ""),
        "steps_per_s": round(1000 / ms_per_step, 3), "ms_per_step": round(ms_per_step, 2),
        **breakdown(timer, max(parts_steps, 1)),
        "steps_timed": timed, "steps_breakdown": parts_steps, "skipped_nonfinite": skipped,
        "setup_s": round(setup_s, 1), "torch": torch.__version__,
    }
    result.update({k: v for k, v in (("knobs", bc.knobs), ("overrides", bc.overrides)) if v})
    result.update(_peak_memory(device, peak_setup))
    return result


def breakdown(timer, steps: int) -> dict:
    """ms per step of each part; the guidance loss's own work apart from its timed sub-parts."""
    totals = dict(timer.totals)
    inner = sum(totals.get(k, 0.0) for k in ("encode", "noise", "prior", "baseline", "terms"))
    totals["guidance_other"] = totals.pop("guidance", 0.0) - inner
    parts = {k: round(totals.get(k, 0.0) / steps * 1000, 2) for k in PARTS}
    return {"breakdown_ms": parts, "breakdown_total_ms": round(sum(parts.values()), 2)}


def _peak_memory(device, peak_setup) -> dict:
    import torch

    if device.type == "cuda":
        return {"peak_mem_mb": round(torch.cuda.max_memory_allocated(device) / 2**20),
                "peak_mem_kind": "cuda_max_allocated_after_setup", "peak_setup_mem_mb": round(peak_setup / 2**20)}
    import resource

    return {"peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_mem_kind": "cpu_max_rss"}


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{os.cpu_count()} cores, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------- driver


def run_child(bc: BenchConfig, quick: bool, threads: int, smoke: bool = False) -> dict:
    """One configuration in its own process (its own peak memory); a JSON line back."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", bc.name, "--threads", str(threads)]
    cmd += (["--quick"] if quick else []) + (["--smoke"] if smoke else [])
    env = dict(os.environ, HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error",
               DIFFUSERS_VERBOSITY="error", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    sys.stderr.write(proc.stderr[-4000:])
    tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return {"config": bc.name, "error": tail[0][:300], "returncode": proc.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("T3D_BENCH_QUICK", "") not in ("", "0"),
                        help="fewer steps per configuration (also T3D_BENCH_QUICK=1)")
    parser.add_argument("--only", default="", help="run the configurations whose name contains this")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice, as `t3d generate` uses)")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: only checks that the driver runs")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: run this config
    args = parser.parse_args(argv)
    by_name = {bc.name: bc for bc in CONFIGS}
    if args.one is not None:
        import torch

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(by_name[args.one], args.quick, args.smoke)), flush=True)
        return 0
    import torch

    failures = 0
    for bc in (bc for bc in CONFIGS if args.only in bc.name):
        if bc.device == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"config": bc.name, "skipped": "skipped: no CUDA"}), flush=True)
            continue
        result = run_child(bc, args.quick, args.threads, args.smoke)
        failures += "error" in result
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
