"""VSD / ESD's trainable, camera-conditioned score model of the renders, as one guidance piece.

`CameraScoreModel` is both
- the step's *baseline* (ESD, docs/methods.md#esd; the paper's Eq. 9 / Alg. 1):
      baseline = lambda * eps_phi(x_t, t, no camera, y) + (1 - lambda) * eps_phi(x_t, t, c, y)
  so `grad = w(t) (eps_prior - baseline)`; lambda = 0 is VSD (ProlificDreamer) exactly, since the
  unconditional branch is then never evaluated; and
- a *trainable*: after the field's step, one AdamW step on the denoising MSE of the detached
  renders, t ~ U[0, T), camera zeroed with probability `uncond_prob` (0.5, ESD appendix C) so the
  unconditional branch eps_phi(x_t, t, no camera) is learned too.

eps_phi always gets the view-independent prompt y and no CFG (ProlificDreamer). The backbone is
chosen from the prior (see backbones.py): LoRA on SD's UNet; on the analytic prior the
closed-form score of the recent renders (kernel_score.py) or a small residual UNet.

API for other pieces (USD builds on this):
    model = CameraScoreModel(prior, score_model_cfg, prompt)
    model.eps(x_t, t, cameras_or_None)  -> eps_phi (None = no camera); differentiable w.r.t. phi
    model(ctx)                          -> the ESD/VSD baseline for ctx.x_t, ctx.t, ctx.cameras
    model.update(ctx)                   -> one training step on ctx.x0.detach(); {"score_model_loss": ...}
    model.state_dict() / load_state_dict(...)  -> weights AND AdamW state, tensors only
"""

from __future__ import annotations

import torch

from t3d.guidance.baseline.backbones import build_backbone
from t3d.guidance.baseline.config import ScoreModelConfig
from t3d.guidance.piece import Piece
from t3d.scene.cameras import Cameras
from t3d.state_dicts import flatten_optimizer, split_state, unflatten_optimizer


def camera_condition(cameras: Cameras | None, batch: int, device) -> torch.Tensor:
    """(B, 16) flattened camera-to-world matrices; zeros = "no camera" (ProlificDreamer)."""
    if cameras is None:
        return torch.zeros(batch, 16, device=device)
    return cameras.c2w().reshape(len(cameras), 16).to(device=device, dtype=torch.float32)


def esd_baseline(eps_uncond: torch.Tensor | None, eps_cond: torch.Tensor | None, lam: float) -> torch.Tensor:
    """lambda * eps_phi(no cam) + (1 - lambda) * eps_phi(cam); a branch with weight 0 may be None."""
    if lam == 0.0:
        return eps_cond
    if lam == 1.0:
        return eps_uncond
    return lam * eps_uncond + (1.0 - lam) * eps_cond


class CameraScoreModel(Piece):
    """eps_phi(x_t, t, c, y) of the renders: the VSD/ESD baseline and its own trainer."""

    @classmethod
    def from_config(cls, cfg: ScoreModelConfig, context) -> "CameraScoreModel":
        model = context.trainables["score_model"] = cls(context.prior, cfg, context.prompt)
        return model

    def __init__(self, prior, cfg: ScoreModelConfig, prompt: str):
        self.prior, self.lam = prior, float(cfg.esd_lambda)
        self.cfg = cfg
        self.uncond_prob = float(self.cfg.uncond_prob)
        cond_y = prior.embed([prompt])  # view-independent prompt, embedded before the text encoder goes
        self.backbone = build_backbone(prior, self.cfg, cond_y)
        self.params = self.backbone.params
        # A non-parametric backbone (the analytic prior's render kernel) observes instead of training.
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=float(self.cfg.lr)) if self.params else None

    # ------------------------------------------------------------------ the score
    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cameras: Cameras | None) -> torch.Tensor:
        return self.backbone.eps(x_t, t, camera_condition(cameras, x_t.shape[0], x_t.device))

    @torch.no_grad()
    def __call__(self, ctx) -> torch.Tensor:
        """The baseline for this step; both branches in ONE backbone call when both are needed."""
        x_t, t, lam = ctx.x_t, ctx.t, self.lam
        if lam in (0.0, 1.0):
            return self.eps(x_t, t, ctx.cameras if lam == 0.0 else None)
        b = x_t.shape[0]
        cam = torch.cat([camera_condition(None, b, x_t.device), camera_condition(ctx.cameras, b, x_t.device)])
        eps_u, eps_c = self.backbone.eps(torch.cat([x_t, x_t]), torch.cat([t, t]), cam).chunk(2)
        return esd_baseline(eps_u, eps_c, lam)

    # ------------------------------------------------------------------ training
    def update(self, ctx) -> dict:
        """One AdamW step of denoising score matching on the (detached) renders of this step;
        returns its loss for the run's log (nothing for the render kernel, which only observes)."""
        x0 = ctx.x0.detach()
        if self.optimizer is None:
            self.backbone.observe(x0, camera_condition(ctx.cameras, x0.shape[0], x0.device))
            return {}
        b, gen, device = x0.shape[0], ctx.generator, x0.device
        t = torch.randint(0, self.prior.num_train_timesteps, (b,), generator=gen).to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device=device, dtype=x0.dtype)
        keep = (torch.rand(b, generator=gen) >= self.uncond_prob).to(device)
        cam = camera_condition(ctx.cameras, b, device) * keep[:, None]
        with torch.enable_grad(), self.backbone.training():
            loss = self.backbone.loss(x0, noise, t, cam)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        return {"score_model_loss": float(loss.detach())}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, torch.Tensor]:
        """`weights/<name>` and `optim/<param index>/<slot>`: tensors only (safetensors)."""
        if self.optimizer is None:
            return {f"memory/{k}": v for k, v in self.backbone.state_dict().items()}
        state = {f"weights/{k}": p.detach() for k, p in self.params.items()}
        optim, _ = flatten_optimizer(self.optimizer)
        state.update({f"optim/{k}": v for k, v in optim.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.optimizer is None:
            memory = split_state(state, "memory")
            if not memory:
                raise KeyError("score model render memory missing from checkpoint")
            self.backbone.load_state_dict(memory)
            return
        weights = split_state(state, "weights")
        missing = set(self.params) - set(weights)
        if missing:
            raise KeyError(f"score model weights missing from checkpoint: {sorted(missing)[0]}")
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(weights[k])
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict(unflatten_optimizer(split_state(state, "optim"), groups))
