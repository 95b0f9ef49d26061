"""Step milestones: a setting that switches to another value part-way through a run.

ProlificDreamer's schedule is two such switches at 5k of 25k steps (a fifth of the run): render
64 -> 512 and t_max 0.98 -> 0.5. Milestones are given as a fraction of the run so they keep
their meaning when --steps changes.
"""

from __future__ import annotations

from typing import Any, Optional


def after_milestone(value: Any, milestone: Optional[tuple[float, Any]], progress: float) -> Any:
    """`value` before the milestone's fraction of the run, its second entry from then on."""
    if milestone is None:
        return value
    at, later = milestone
    return later if progress >= at else value
