"""RecDreamer's auxiliary view phrases (appendix B.3): "a dog" -> "a dog, from side view, from back view".

They widen the prior's distribution so that every pose has p(c) > 0 (the rectifier can only
reweight poses the prior already produces); unlike view-dependent prompts they are the same for
every camera.
"""

from __future__ import annotations


def with_auxiliary_views(prompt: str, views: tuple[str, ...] | list[str]) -> str:
    if not views:
        return prompt
    return prompt + "".join(f", from {v} view" for v in views)
