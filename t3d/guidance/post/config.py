"""Post-processing of the 2D score before it is applied to the render (torch-free config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from t3d.config.options import DSDS, option
from t3d.config.parsing import parse_score_clip
from t3d.config.registry import Pieces
from t3d.errors import T3dError


@dataclass
class PostConfig:
    # D-SDS clip of w(t) (eps_p - baseline): (start, end), "auto" = the prior's default, None = off
    score_clip: Optional[Union[tuple[float, float], str]] = option(
        None, "D-SDS clipping of w(t)(eps_prior - baseline), elementwise: 'START:END' (linear over the run, "
        "START <= END), 'C' (static), 'auto' (the prior's default: 2:8 for SD latents, 5:20 for the analytic "
        "prior) or 'off'.", flag="--score-clip", panel=DSDS, parse=parse_score_clip, kind=str,
        metavar="START:END|C|auto|off", shown="off")

    def validate(self) -> None:
        clip = self.score_clip
        if isinstance(clip, str) and clip != "auto":
            raise T3dError(f"--score-clip must be 'auto', 'off', 'START:END' or 'C', got '{clip}'")
        if isinstance(clip, tuple):
            start, end = clip
            if not (start > 0 and end > 0):
                raise T3dError(f"--score-clip thresholds must be positive, got {start:g}:{end:g}")
            # D-SDS raises the threshold over the run (its eq. 13); a falling one is almost always a
            # typo for the reverse, so it is refused rather than given a meaning of its own.
            if start > end:
                raise T3dError(f"--score-clip START:END must rise over the run (START <= END), got "
                               f"{start:g}:{end:g}; for a fixed threshold give one number")


POST = Pieces("score post-processing")
POST.register("score_clip", "t3d.guidance.post.score_clip:ScoreClip")
