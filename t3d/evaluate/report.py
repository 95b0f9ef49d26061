"""The comparison table `t3d evaluate` prints: one row per run, a column per metric it has."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

# (column, function of a run's metrics -> value or None). A column is shown when any run has it.
COLUMNS = [
    ("pose acc", lambda m: m["janus"] and f"{m['janus']['pose_accuracy']:.2f}"),
    ("front views", lambda m: m["janus"] and f"{m['janus']['front_views']}/{m['janus']['views']}"),
    ("faces", lambda m: m["janus"] and str(m["janus"]["faces"])),
    # parts None with a part named: the count was withheld (janus.count_part), shown as "?".
    ("parts", lambda m: m["janus"] and m["janus"].get("part")
     and f"{'?' if m['janus']['parts'] is None else m['janus']['parts']} {m['janus']['part']}"),
    ("front arcs", lambda m: m["janus"] and str(m["janus"]["front_arcs"])),
    ("janus", lambda m: m["janus"] and ("yes" if m["janus"]["janus"] else "no")),
    ("success", lambda m: m["janus"] and ("yes" if m["janus"]["success"] else "no")),
    ("CLIP dist", lambda m: _num(m, "clip", "clip_distance")),
    ("cEnt", lambda m: _num(m, "clip", "c_ent")),
    ("pEnt", lambda m: _num(m, "pose", "p_ent")),
    ("IQ", lambda m: _num(m, "inception", "iq")),
    ("IV", lambda m: _num(m, "inception", "iv")),
    ("IG", lambda m: _num(m, "inception", "ig")),
    ("A-LPIPS", lambda m: _num(m, "a_lpips", "a_lpips")),
    ("FID", lambda m: _num(m, "fid", "fid")),
]


def _num(m: dict, section: str, key: str):
    value = (m.get(section) or {}).get(key)
    return None if value is None else f"{value:.3f}"


def metrics_table(metrics: list[dict]) -> Table:
    table = Table(title="t3d evaluate")
    for name in ("run", "method", "seed", "step"):
        table.add_column(name)
    shown = [(name, fn) for name, fn in COLUMNS if any(fn(m) for m in metrics)]
    for name, _ in shown:
        table.add_column(name, justify="right")
    for m in metrics:
        table.add_row(Path(m["run"]).name, m["method"], str(m["seed"]), str(m["step"]), *[fn(m) or "-" for _, fn in shown])
    return table
