"""The single training loop. It never asks which method it runs: the guidance object decides.

Each step: cameras -> render -> guidance loss (+ regularisers) -> Adam -> guidance.update.
Randomness comes from a CPU generator seeded by (seed, step), so a resumed run draws exactly
what an uninterrupted one would, on any device.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from t3d import checkpoint as ckpt
from t3d.config import RunConfig
from t3d.errors import T3dError, TrainingDiverged
from t3d.guidance.score_distillation import ScoreDistillation
from t3d.scene.cameras import CameraRanges, orbit_cameras, sample_cameras
from t3d.scene.field import RadianceField
from t3d.scene.occupancy import OccupancyGrid
from t3d.scene.render import RenderOutput, render
from t3d.schedules import after_milestone


class Interrupted(T3dError):
    exit_code = 130


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise T3dError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise T3dError(f"unknown device '{name}'; use auto, cpu or cuda")
    return torch.device(name)


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step + 1)


@dataclass
class Scene:
    """What is optimised and how it is seen: the part render-video and export-mesh reload."""

    field: RadianceField
    occupancy: OccupancyGrid
    cfg: RunConfig
    device: torch.device

    @classmethod
    def build(cls, cfg: RunConfig, device: torch.device) -> "Scene":
        torch.manual_seed(cfg.seed)  # parameter initialisation
        field = RadianceField(cfg.field, device).to(device)
        occupancy = OccupancyGrid(cfg.render.occupancy_resolution, cfg.field.bound,
                                  step_size=2 * cfg.field.bound / cfg.render.samples_per_ray).to(device)
        return cls(field, occupancy, cfg, device)

    def render(self, cameras, resolution: int, generator=None, with_normals=False, chunk_rays=None) -> RenderOutput:
        return render(self.field, cameras.to(self.device), resolution, self.cfg.render.samples_per_ray,
                      self.cfg.render.background, self.occupancy, generator, with_normals, chunk_rays)

    @torch.no_grad()
    def render_views(self, azimuths: list[float], resolution: int, elevation: float = 15.0) -> RenderOutput:
        cams = orbit_cameras(len(azimuths), elevation, self.distance, self.fovy)
        cams.azimuth = torch.tensor(azimuths, dtype=torch.float32)
        return self.render(cams, resolution, chunk_rays=2**15)

    @property
    def distance(self) -> float:
        return sum(self.cfg.camera.distance) / 2

    @property
    def fovy(self) -> float:
        return sum(self.cfg.camera.fovy) / 2

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.field.load_state_dict(ckpt.split_state(tensors, "field"))
        self.occupancy.load_state_dict(ckpt.split_state(tensors, "occupancy"))


def regularisers(out: RenderOutput, cfg: RunConfig) -> torch.Tensor:
    loss = out.rgb.new_zeros(())
    if cfg.loss.opacity_sparsity > 0:
        loss = loss + cfg.loss.opacity_sparsity * out.opacity.mean()
    if cfg.loss.opacity_entropy > 0:
        a = out.opacity.clamp(1e-5, 1 - 1e-5)
        loss = loss + cfg.loss.opacity_entropy * (-(a * a.log() + (1 - a) * (1 - a).log())).mean()
    return loss


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, prior, device: torch.device):
        self.cfg, self.run_dir, self.prior, self.device = cfg, run_dir, prior, device
        self.scene = Scene.build(cfg, device)
        self.guidance = ScoreDistillation(prior, cfg.guidance, cfg.prompt)
        release = getattr(prior, "release_text_encoder", None)
        if release is not None:
            release()  # every prompt of the run is embedded and cached by now
        self.optimizer = torch.optim.Adam(self.scene.field.parameter_groups(), betas=(0.9, 0.99), eps=1e-15)
        self.step = 0
        self.skipped = 0
        c = cfg.camera
        self.ranges = CameraRanges(tuple(c.azimuth), tuple(c.elevation), tuple(c.distance), tuple(c.fovy))

    # ------------------------------------------------------------------ checkpoints
    def modules(self) -> dict:
        return {"field": self.scene.field, "occupancy": self.scene.occupancy, "guidance": self.guidance.state_dict()}

    def save(self) -> Path:
        return ckpt.save_checkpoint(self.run_dir, self.step, self.modules(), self.optimizer,
                                    {"skipped": self.skipped, "prompt": self.cfg.prompt},
                                    keep=self.cfg.output.keep_checkpoints)

    def load(self, path: Path) -> None:
        tensors, meta = ckpt.read_checkpoint(path)
        try:
            self.scene.load(tensors)
            self.guidance.load_state_dict(ckpt.split_state(tensors, "guidance"))
            state = ckpt.unflatten_optimizer(ckpt.split_state(tensors, "optim"), meta["param_groups"])
            self.optimizer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise T3dError(f"checkpoint {path} does not match this run's config ({str(exc).splitlines()[0][:100]})") from None
        self.step, self.skipped = int(meta["step"]), int(meta.get("skipped", 0))

    # ------------------------------------------------------------------ training
    def train_step(self) -> dict | None:
        cfg, step = self.cfg, self.step
        gen = step_generator(cfg.seed, step)
        progress = step / max(cfg.steps, 1)
        cams = sample_cameras(self.ranges, cfg.camera.batch, gen, self.device)
        # Render-resolution milestone (ProlificDreamer 64 -> 512): a generic schedule of a render
        # setting, so it lives here rather than in any method's piece.
        resolution = after_milestone(cfg.render.resolution, cfg.render.resolution_milestone, progress)
        out = self.scene.render(cams, resolution, generator=gen)
        loss, stats = self.guidance.loss(out.rgb, cams, progress, gen, render=out)
        loss = loss + regularisers(out, cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        finite = math.isfinite(loss.item()) and all(
            torch.isfinite(p.grad).all() for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None)
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        self.guidance.update()
        occ_every = cfg.render.occupancy_every
        if occ_every > 0 and step + 1 >= cfg.render.occupancy_warmup and (step + 1) % occ_every == 0:
            self.scene.occupancy.update(self.scene.field.density, gen)
        return {"loss": loss.item(), "t": stats.t_mean, "grad_norm": stats.grad_norm, **stats.terms}

    def train(self, console=None) -> None:
        from t3d.progress import TrainingProgress
        from t3d.previews import save_preview

        cfg = self.cfg
        log_path = self.run_dir / "log.jsonl"
        bad_in_row = 0
        progress = TrainingProgress(cfg.steps, self.step, console)
        started = time.perf_counter()
        try:
            with progress, open(log_path, "a") as log:
                while self.step < cfg.steps:
                    record = self.train_step()
                    if record is None:
                        self.skipped += 1
                        bad_in_row += 1
                        log.write(json.dumps({"step": self.step, "skipped": True, "skipped_total": self.skipped}) + "\n")
                        if bad_in_row >= cfg.max_bad_steps:
                            last = ckpt.list_checkpoints(self.run_dir)
                            where = f"last good checkpoint: {last[-1]}" if last else "no checkpoint was written"
                            raise TrainingDiverged(
                                f"stopped at step {self.step}: {bad_in_row} steps in a row had a non-finite "
                                f"loss or gradient ({where}); try a lower learning rate or guidance scale")
                        continue
                    bad_in_row = 0
                    self.step += 1
                    record.update(step=self.step, seconds=round(time.perf_counter() - started, 3))
                    if self.step % 10 == 0 or self.step == cfg.steps:
                        log.write(json.dumps(record) + "\n")
                    progress.advance(self.step, record["loss"])
                    if cfg.output.preview_every > 0 and self.step % cfg.output.preview_every == 0:
                        save_preview(self.scene, self.run_dir, self.step)
                    if cfg.output.checkpoint_every > 0 and self.step % cfg.output.checkpoint_every == 0:
                        self.save()
        except KeyboardInterrupt:
            path = self.save()
            raise Interrupted(f"interrupted at step {self.step}; saved {path}; continue with "
                              f"t3d generate --resume {self.run_dir}") from None
        if not ckpt.list_checkpoints(self.run_dir) or ckpt.latest_checkpoint(self.run_dir).name != ckpt.checkpoint_name(self.step):
            self.save()
