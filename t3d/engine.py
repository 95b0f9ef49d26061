"""The single training loop. It never asks which method it runs: the guidance object decides.

Each step: cameras -> render -> guidance loss (+ regularisers) -> Adam -> guidance.update.
Randomness comes from a CPU generator seeded by (seed, step), so a resumed run draws exactly
what an uninterrupted one would, on any device.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from pathlib import Path

import torch

from t3d.errors import T3dError, TrainingDiverged, WriteError
from t3d.guidance.step import ScoreDistillation
from t3d.run import checkpoint as ckpt
from t3d.run.log import RunLog
from t3d.scene.cameras import CameraRanges, sample_cameras
from t3d.scene.render import RenderOutput
from t3d.scene.scene import Scene
from t3d.scene.shading import shade
from t3d.schedules import after_milestone
from t3d.state_dicts import split_state, unflatten_optimizer
from t3d.timing import NULL_TIMER, StepTimer


class Interrupted(T3dError):
    exit_code = 130


@contextlib.contextmanager
def defer_sigint(stop: list):
    """Ctrl-C (SIGINT) ends the run between two steps, never inside one: a step interrupted after
    the optimizer moved would save the next step's weights under this step's number. The first
    SIGINT sets `stop`; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop:
            raise KeyboardInterrupt
        stop.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step + 1)


def regularisers(out: RenderOutput, loss_cfg) -> torch.Tensor:
    loss = out.rgb.new_zeros(())
    if loss_cfg.opacity_sparsity > 0:
        loss = loss + loss_cfg.opacity_sparsity * out.opacity.mean()
    if loss_cfg.opacity_entropy > 0:
        a = out.opacity.clamp(1e-5, 1 - 1e-5)
        loss = loss + loss_cfg.opacity_entropy * (-(a * a.log() + (1 - a) * (1 - a).log())).mean()
    return loss


def gradients_finite(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> bool:
    return math.isfinite(loss.item()) and all(
        torch.isfinite(p.grad).all() for g in optimizer.param_groups for p in g["params"] if p.grad is not None)


class Trainer:
    def __init__(self, cfg, run_dir: Path, prior, device: torch.device):
        self.cfg, self.run_dir, self.prior, self.device = cfg, run_dir, prior, device
        self.scene = Scene.build(cfg, device)
        self.guidance = ScoreDistillation(prior, cfg.guidance, cfg.prompts, cfg.prompt)
        prior.release_text_encoder()  # every prompt of the run is embedded and cached by now
        self.optimizer = torch.optim.Adam(self.scene.field.parameter_groups(), betas=(0.9, 0.99), eps=1e-15)
        self.step = 0
        self.skipped = 0
        c = cfg.camera
        self.ranges = CameraRanges(tuple(c.azimuth), tuple(c.elevation), tuple(c.distance), tuple(c.fovy))
        self.timer = NULL_TIMER

    @property
    def timer(self) -> StepTimer:
        return self._timer

    @timer.setter
    def timer(self, timer: StepTimer) -> None:
        """The benchmark's hook: time the parts of every step (the guidance times its own)."""
        self._timer = self.guidance.timer = timer

    # ------------------------------------------------------------------ checkpoints
    def modules(self) -> dict:
        return {**self.scene.state(), "guidance": self.guidance.state_dict()}

    def save(self) -> Path:
        return ckpt.save_checkpoint(self.run_dir, self.step, self.modules(), self.optimizer,
                                    {"skipped": self.skipped, "prompt": self.cfg.prompt},
                                    keep=self.cfg.output.keep_checkpoints)

    def load(self, loaded: "ckpt.Loaded") -> None:
        """Continue from a verified checkpoint (t3d.run.checkpoint.load_newest_verified)."""
        tensors, meta = loaded.tensors, loaded.meta
        try:
            self.scene.load(tensors)
            self.guidance.load_state_dict(split_state(tensors, "guidance"))
            self.optimizer.load_state_dict(unflatten_optimizer(split_state(tensors, "optim"), meta["param_groups"]))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise T3dError(f"checkpoint {loaded.path} does not match this run's config "
                           f"({str(exc).splitlines()[0][:100]})") from None
        self.step, self.skipped = int(meta["step"]), int(meta.get("skipped", 0))

    # ------------------------------------------------------------------ training
    def render_step(self, gen: torch.Generator, progress: float):
        """This step's cameras and their render (shaded when the config asks)."""
        cfg, part = self.cfg, self.timer.part
        with part("cameras"):
            cams = sample_cameras(self.ranges, cfg.camera.batch, gen, self.device)
            cams = self.guidance.cameras_for_step(cams)  # extra views a method renders beside them
        # Render-resolution milestone (ProlificDreamer 64 -> 512): a generic schedule of a render
        # setting, so it lives here rather than in any method's piece.
        resolution = after_milestone(cfg.render.resolution, cfg.render.resolution_milestone, progress)
        with part("render"):
            # Normals cost a density-gradient pass: rendered only on the steps a guidance term reads them.
            out = self.scene.render(cams, resolution, generator=gen,
                                    with_normals=self.guidance.needs_normals(progress))
            if cfg.render.shading == "diffuse":
                out.rgb = shade(out.rgb, out.opacity, out.depth, cams.to(self.device),
                                torch.as_tensor(cfg.render.background), gen,
                                textureless_prob=cfg.render.textureless_prob)
        return cams, out

    def train_step(self) -> dict | None:
        """One optimisation step; its log record, or None when the loss or a gradient was not finite."""
        cfg, step, part = self.cfg, self.step, self.timer.part
        gen = step_generator(cfg.seed, step)
        progress = step / max(cfg.steps, 1)
        cams, out = self.render_step(gen, progress)
        with part("guidance"):
            loss, stats = self.guidance.loss(out.rgb, cams, progress, gen, render=out)
            loss = loss + regularisers(out, cfg.loss)
        with part("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if not gradients_finite(loss, self.optimizer):
            self.optimizer.zero_grad(set_to_none=True)
            return None
        with part("optimizer"):
            self.optimizer.step()
        with part("update"):
            updates = self.guidance.update()
        occ_every = cfg.render.occupancy_every
        if occ_every > 0 and step + 1 >= cfg.render.occupancy_warmup and (step + 1) % occ_every == 0:
            with part("occupancy"):
                self.scene.occupancy.update(self.scene.field.density, gen)
        return {"loss": loss.item(), "t": stats.t_mean, "grad_norm": stats.grad_norm, **stats.terms, **updates}

    def advance(self, steps: int) -> int:
        """Train `steps` steps without logging or checkpoints (benchmarks); returns how many were
        skipped as non-finite."""
        skipped = 0
        for _ in range(steps):
            skipped += self.train_step() is None
            self.step += 1
        return skipped

    def train(self, console=None) -> None:
        """Train to cfg.steps: log every 10 steps (and every skipped step), previews and
        checkpoints on their cadence, a final checkpoint; Ctrl-C saves one and stops."""
        from t3d.progress import TrainingProgress

        progress = TrainingProgress(self.cfg.steps, self.step, console)
        stop: list[int] = []
        with defer_sigint(stop), progress, RunLog(self.run_dir) as log:
            self._loop(log, progress, stop)
            if not self._saved(self.step):
                self._checkpoint(log)
        if stop:
            raise Interrupted(f"interrupted at step {self.step}; saved {ckpt.list_checkpoints(self.run_dir)[-1]}; "
                              f"continue with t3d generate --resume {self.run_dir}")

    def _loop(self, log: RunLog, progress, stop: list) -> None:
        from t3d.previews import save_preview

        cfg, bad_in_row, started = self.cfg, 0, time.perf_counter()
        while self.step < cfg.steps and not stop:
            record = self.train_step()
            if record is None:
                self.skipped += 1
                bad_in_row += 1
                log.write({"step": self.step, "skipped": True, "skipped_total": self.skipped})
                if bad_in_row >= cfg.max_bad_steps:
                    raise TrainingDiverged(
                        f"stopped at step {self.step}: {bad_in_row} steps in a row had a non-finite loss or "
                        f"gradient ({self._last_good()}); try a lower learning rate or guidance scale")
                continue
            bad_in_row = 0
            self.step += 1
            record.update(step=self.step, seconds=round(time.perf_counter() - started, 3))
            if self.step % 10 == 0 or self.step == cfg.steps:
                log.write(record)
            progress.advance(self.step, record["loss"])
            if cfg.output.preview_every > 0 and self.step % cfg.output.preview_every == 0:
                self._guard(lambda: save_preview(self.scene, self.run_dir, self.step))
            if cfg.output.checkpoint_every > 0 and self.step % cfg.output.checkpoint_every == 0:
                self._checkpoint(log)

    def _checkpoint(self, log: RunLog) -> None:
        log.sync()  # the records up to this checkpoint are on disk before it is
        self._guard(self.save)

    def _guard(self, write) -> None:
        """A failed write (disk full...) stops the run with one line that names what is still good."""
        try:
            write()
        except WriteError as exc:
            raise WriteError(f"{exc}; {self._last_good()}") from None

    def _last_good(self) -> str:
        found = ckpt.list_checkpoints(self.run_dir)
        return f"last good checkpoint: {found[-1]}" if found else "no checkpoint was written"

    def _saved(self, step: int) -> bool:
        found = ckpt.list_checkpoints(self.run_dir)
        return bool(found) and found[-1].name == ckpt.checkpoint_name(step)
