"""`t3d debias-prompt`: the per-view prompts D-SDS prompt debiasing gives (a table or JSON)."""

from __future__ import annotations

from typing import Optional

from rich.console import Console

from t3d.errors import T3dError


def run_debias_prompt(prompt: str, mlm: Optional[str], keep_words, view_words, threshold: float,
                      as_json: bool) -> dict:
    """`t3d debias-prompt`: a table (or JSON) of the per-view prompts after D-SDS prompt debiasing."""
    import json

    from rich.table import Table

    from t3d.config import preset
    from t3d.prompts.debias import debias_prompt
    from t3d.prompts.mlm import DEFAULT_MLM, load_mlm

    if not prompt.strip():
        raise T3dError("the prompt is empty; e.g. t3d debias-prompt \"a smiling dog\"")
    words = tuple(view_words or preset("dsds")["prompts"]["view_words"])
    if len(words) != 4:
        raise T3dError(f"--view-words needs 4 words (front, side, back, overhead), got {len(words)}")
    if not threshold > 0:
        raise T3dError(f"--threshold must be positive, got {threshold}")
    scorer = load_mlm(mlm or DEFAULT_MLM)
    result = debias_prompt(prompt, scorer, words, keep_words or (), threshold)
    data = result.to_dict()
    data["mlm"] = mlm or DEFAULT_MLM
    if as_json:
        print(json.dumps(data, indent=2))
        return data
    table = Table(title=f"'{prompt}' per view ({data['mlm']}, PMI threshold {threshold})")
    for col in ("view", "prompt", "P(view | prompt)", "dropped"):
        table.add_column(col)
    for v, (word, body) in enumerate(zip(words, result.bodies())):
        dropped = [w.word for w in result.words if w.dropped[v]]
        table.add_row(word, f"{body}, {word} view", f"{result.p_full[v]:.3f}", ", ".join(dropped) or "-")
    Console(highlight=False).print(table)
    return data
