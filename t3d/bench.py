"""Training-step benchmark: one JSON line per configuration on stdout (`make bench`).

Each configuration runs in its own subprocess, so its peak memory is its own:
- CPU: peak resident set size of that process (`peak_mem_kind: "cpu_max_rss"`);
- CUDA: `torch.cuda.max_memory_allocated` from the end of setup on (weights included, the text
  encoder already released as in a real run), plus the peak during setup.

Two measurements per configuration:
- `steps_per_s` / `ms_per_step`: `Trainer.train_step()` exactly as `t3d generate` runs it, no
  extra synchronisation;
- `breakdown_ms`: the same step rebuilt from its parts (cameras, render, guidance loss,
  backward, optimizer, occupancy refresh) with `torch.cuda.synchronize()` around each part, and
  the prior's `encode` / `eps` timed inside the guidance loss. `guidance_other` is the rest of
  the loss (noise, CFG mix, weighting). Synchronising costs a little, so the parts add up to
  slightly more than `ms_per_step`.

The SD configurations use random weights with the exact architectures of SD 2.1-base / SD 1.5
(t3d/priors/tiny_sd.py): the same compute as the real checkpoints, no download. Scores from random
weights are meaningless, so these runs measure speed and memory only.

Usage: python examples/bench.py [--quick] [--only SUBSTRING] (or T3D_BENCH_QUICK=1).
"""

from __future__ import annotations

import argparse
import contextlib
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
USD_ROWS = (("vsd", "vsd", {}), ("usd", "usd", {}), ("usd-stopgrad", "usd", {"guidance.rectifier.mode": "stopgrad"}))
CONFIGS = [
    BenchConfig("analytic-cpu-64", "cpu", "analytic", 64),
    # Each method's cost on the same setup, to compare with SDS (the line above).
    *(BenchConfig(f"analytic-cpu-64-{m}", "cpu", "analytic", 64, method=m)
      for m in ("esd", "dsds", "sdi", "gsd")),
    # USD's cost is quoted as a ratio to VSD's (issue 8: <= 1.3x exact, <= 1.1x stopgrad), so these
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
    # The VRAM knobs for 8-12 GB cards: one camera per step, sliced attention, VAE checkpointing.
    BenchConfig("sd21-base-cuda-64-lowmem", "cuda", "sd21-base", 64, batch=1, encoding="hash",
                knobs={"attention_slicing": True, "vae_checkpointing": True},
                steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
    BenchConfig("sd15-cuda-64", "cuda", "sd15", 64, encoding="hash", steps=CUDA_STEPS, quick_steps=CUDA_QUICK),
]


# ---------------------------------------------------------------- timing


class Timer:
    """Accumulates wall time per named part; synchronises CUDA around each part when enabled."""

    def __init__(self, device):
        self.device = device
        self.enabled = False
        self.totals: dict[str, float] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def part(self, name: str):
        if not self.enabled:
            yield
            return
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start


class TimedPrior:
    """The prior, with `encode` and `eps` timed; everything else passes through."""

    def __init__(self, prior, timer: Timer):
        self._prior, self._timer = prior, timer

    def __getattr__(self, name):
        return getattr(self._prior, name)

    def encode(self, rgb):
        with self._timer.part("encode"):
            return self._prior.encode(rgb)

    def eps(self, x_t, t, cond):
        with self._timer.part("unet"):
            return self._prior.eps(x_t, t, cond)


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


def run_one(bc: BenchConfig, quick: bool) -> dict:
    import torch

    from t3d.config import RunConfig, apply_method_preset, set_dotted

    device = torch.device(bc.device)
    warmup, timed, parts_steps = bc.quick_steps if quick else bc.steps
    cfg = RunConfig(prompt="a smiling head", model="analytic" if bc.prior == "analytic" else f"random:{bc.prior}")
    apply_method_preset(cfg, bc.method)
    for key, value in bc.overrides.items():
        set_dotted(cfg, key, value)
    cfg.steps = warmup + timed + parts_steps
    cfg.render.resolution = bc.render
    cfg.camera.batch = bc.batch
    cfg.field.encoding = bc.encoding
    cfg.output.checkpoint_every = cfg.output.preview_every = 0

    started = time.perf_counter()
    timer = Timer(device)
    with tempfile.TemporaryDirectory(prefix="t3d-bench-") as workdir:
        if bc.pose_features == "tiny":
            from t3d.guidance.pose_features import save_tiny_dinov2

            cfg.guidance.rectifier.pose_features = str(save_tiny_dinov2(os.path.join(workdir, "dinov2")))
        return _measure(bc, cfg, device, timer, workdir, quick, started)


def _measure(bc: BenchConfig, cfg, device, timer: Timer, workdir: str, quick: bool, started: float) -> dict:
    import torch

    from t3d.engine import Trainer, regularisers, step_generator
    from t3d.run import resolve_framing
    from t3d.scene.cameras import sample_cameras

    warmup, timed, parts_steps = bc.quick_steps if quick else bc.steps
    prior = _build_prior(bc, cfg, device, workdir)
    resolve_framing(cfg, prior)
    trainer = Trainer(cfg, Path(workdir), TimedPrior(prior, timer), device)  # never saves here
    setup_s = time.perf_counter() - started
    peak_setup = None
    if device.type == "cuda":
        timer.sync()
        peak_setup = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)

    skipped = 0
    for _ in range(warmup):
        skipped += trainer.train_step() is None
        trainer.step += 1
    timer.sync()
    start = time.perf_counter()
    for _ in range(timed):
        skipped += trainer.train_step() is None
        trainer.step += 1
    timer.sync()
    ms_per_step = (time.perf_counter() - start) / max(timed, 1) * 1000

    # The same step, part by part (mirrors Trainer.train_step).
    timer.enabled = True
    scene, guidance, optimizer = trainer.scene, trainer.guidance, trainer.optimizer
    for _ in range(parts_steps):
        step = trainer.step
        gen = step_generator(cfg.seed, step)
        with timer.part("cameras"):
            cams = guidance.cameras_for_step(sample_cameras(trainer.ranges, cfg.camera.batch, gen, device))
        with timer.part("render"):
            out = scene.render(cams, cfg.render.resolution, generator=gen)
        with timer.part("guidance"):
            loss, _ = guidance.loss(out.rgb, cams, step / cfg.steps, gen, render=out)
            loss = loss + regularisers(out, cfg)
        with timer.part("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with timer.part("optimizer"):
            optimizer.step()
        with timer.part("guidance_update"):
            guidance.update()
        with timer.part("occupancy"):
            if (step + 1) >= cfg.render.occupancy_warmup and (step + 1) % cfg.render.occupancy_every == 0:
                scene.occupancy.update(scene.field.density, gen)
        trainer.step += 1

    n = max(parts_steps, 1)
    totals = dict(timer.totals)
    totals["guidance_other"] = totals.pop("guidance", 0.0) - totals.get("encode", 0.0) - totals.get("unet", 0.0)
    order = ["cameras", "render", "encode", "unet", "guidance_other", "backward", "optimizer", "guidance_update", "occupancy"]
    breakdown = {k: round(totals.get(k, 0.0) / n * 1000, 2) for k in order}

    result = {
        "config": bc.name, "device": _device_name(device), "prior": bc.prior, "method": bc.method,
        "render": bc.render, "batch": bc.batch, "encoding": type(scene.field.encoding).__name__,
        "prior_image": prior.image_size, "latent_mode": getattr(prior, "latent_mode", "pixels"),
        "dtype": str(getattr(prior, "dtype", torch.float32)).replace("torch.", ""),
        "steps_per_s": round(1000 / ms_per_step, 3), "ms_per_step": round(ms_per_step, 2),
        "breakdown_ms": breakdown, "breakdown_total_ms": round(sum(breakdown.values()), 2),
        "steps_timed": timed, "steps_breakdown": parts_steps, "skipped_nonfinite": skipped,
        "setup_s": round(setup_s, 1),
    }
    if bc.knobs:
        result["knobs"] = bc.knobs
    if bc.overrides:
        result["overrides"] = bc.overrides
    if device.type == "cuda":
        result.update(peak_mem_mb=round(torch.cuda.max_memory_allocated(device) / 2**20),
                      peak_mem_kind="cuda_max_allocated_after_setup",
                      peak_setup_mem_mb=round(peak_setup / 2**20))
    else:
        import resource

        result.update(peak_mem_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      peak_mem_kind="cpu_max_rss")
    result["torch"] = torch.__version__
    return result


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{os.cpu_count()} cores, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("T3D_BENCH_QUICK", "") not in ("", "0"),
                        help="fewer steps per configuration (also T3D_BENCH_QUICK=1)")
    parser.add_argument("--only", default="", help="run the configurations whose name contains this")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice, as `t3d generate` uses)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: run this config
    args = parser.parse_args(argv)
    by_name = {bc.name: bc for bc in CONFIGS}

    if args.one is not None:
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(by_name[args.one], args.quick)), flush=True)
        return 0

    import torch

    has_cuda = torch.cuda.is_available()
    env = dict(os.environ, HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error",
               DIFFUSERS_VERBOSITY="error", PYTHONWARNINGS="ignore")
    failures = 0
    for bc in CONFIGS:
        if args.only not in bc.name:
            continue
        if bc.device == "cuda" and not has_cuda:
            print(json.dumps({"config": bc.name, "skipped": "skipped: no CUDA"}), flush=True)
            continue
        cmd = [sys.executable, "-m", "t3d.bench", "--one", bc.name] + (["--quick"] if args.quick else [])
        cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode == 0 and lines:
            print(lines[-1], flush=True)
        else:
            failures += 1
            tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
            print(json.dumps({"config": bc.name, "error": tail[0][:300], "returncode": proc.returncode}), flush=True)
            sys.stderr.write(proc.stderr[-4000:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
