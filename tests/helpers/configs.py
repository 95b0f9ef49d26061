"""Run configs for tests, built the way `t3d generate` builds them (preset, then dotted settings)."""

from __future__ import annotations

from typing import Any, Optional

from t3d.config import RunConfig, build_config
from t3d.guidance.step import ScoreDistillation


def run_config(method: str = "sds", settings: Optional[dict[str, Any]] = None) -> RunConfig:
    """The `method` preset with `settings` ({dotted key: value}) applied like flags."""
    return build_config(method, values=[(k, v, k) for k, v in (settings or {}).items()])


def distillation(prior, prompt: str, method: str = "sds", settings: Optional[dict[str, Any]] = None
                 ) -> ScoreDistillation:
    cfg = run_config(method, settings)
    return ScoreDistillation(prior, cfg.guidance, cfg.prompts, prompt)
