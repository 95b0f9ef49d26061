"""Old config files keep loading: the flat `guidance` section of earlier t3d versions, mapped
onto the per-piece tree.

Earlier config.yaml files kept every method's knobs in one flat `guidance` mapping (30 keys) and
the prompt settings inside it. Options of a piece that the old run did not select (the inversion
settings of a run without inversion noise, say) had no effect there and are dropped here.
`--set` accepts the old dotted keys through the same table (`LEGACY_KEYS`).
"""

from __future__ import annotations

import copy
from typing import Any

# Old dotted key -> new dotted key, for keys that only moved.
LEGACY_KEYS = {
    "guidance.guidance_scale": "guidance.guide.scale",
    "guidance.t_schedule": "guidance.timesteps.kind",
    "guidance.t_max_milestone": "guidance.timesteps.max_milestone",
    "guidance.bnf_intervals": "guidance.timesteps.intervals",
    "guidance.noise": "guidance.noise.kind",
    "guidance.noise_upsample": "guidance.noise.upsample",
    "guidance.noise_hold": "guidance.noise.hold",
    "guidance.noise_hold_from": "guidance.noise.hold_from",
    "guidance.inversion.scale": "guidance.noise.scale",
    "guidance.inversion.steps_per_t": "guidance.noise.steps_per_t",
    "guidance.inversion.tau": "guidance.noise.tau",
    "guidance.inversion.extra_noise": "guidance.noise.extra_noise",
    "guidance.baseline": "guidance.baseline.kind",
    "guidance.esd_lambda": "guidance.baseline.esd_lambda",
    "guidance.score_model.kind": "guidance.baseline.backbone",
    "guidance.score_model.memory": "guidance.baseline.memory",
    "guidance.score_model.camera_width": "guidance.baseline.camera_width",
    "guidance.score_model.uncond_prob": "guidance.baseline.uncond_prob",
    "guidance.score_model.lr": "guidance.baseline.lr",
    "guidance.score_model.lora_rank": "guidance.baseline.lora_rank",
    "guidance.score_model.channels": "guidance.baseline.channels",
    "guidance.score_clip": "guidance.post.score_clip",
    "guidance.convexity": "guidance.terms.convexity.weight",
    "guidance.convexity_until": "guidance.terms.convexity.until",
    "guidance.grad_consistency": "guidance.terms.consistency.weight",
    "guidance.neighbour_azimuth": "guidance.terms.consistency.neighbour_azimuth",
    "guidance.view_prompts": "prompts.view_prompts",
    "guidance.front_halfwidth": "prompts.front_halfwidth",
    "guidance.view_words": "prompts.view_words",
    "guidance.aux_views": "prompts.aux_views",
    "guidance.prompt_debias": "prompts.debias.mode",
    "guidance.mlm": "prompts.debias.mlm",
    "guidance.keep_words": "prompts.debias.keep_words",
    "guidance.debias_threshold": "prompts.debias.threshold",
}
# The video and mesh options of `output` became the `video` and `mesh` sections.
OUTPUT_KEYS = {"video_frames": "video.frames", "video_resolution": "video.resolution", "video_fps": "video.fps",
               "video_elevation": "video.elevation", "video_panels": "video.panels",
               "mesh_format": "mesh.format", "mesh_resolution": "mesh.resolution", "mesh_threshold": "mesh.threshold"}
LEGACY_KEYS.update({f"output.{old}": new for old, new in OUTPUT_KEYS.items()})
_RECTIFIER_KEYS = ("enabled", "mode", "pose_classes", "pose_features", "pose_templates", "classifier",
                   "tau_patch", "tau_pose", "ema_rate", "ema_buckets", "template_steps")
LEGACY_KEYS.update({f"guidance.rectifier.{k}": f"guidance.terms.rectifier.{k}" for k in _RECTIFIER_KEYS})
# Old keys whose new home exists only for one kind of piece: dropped when that kind is not chosen.
_KIND_OF = {"guidance.timesteps.": ("guidance.timesteps.kind", {"intervals": "bnf"}),
            "guidance.noise.": ("guidance.noise.kind", {"upsample": "consistent", "hold": "consistent",
                                                        "hold_from": "consistent", "scale": "inversion",
                                                        "steps_per_t": "inversion", "tau": "inversion",
                                                        "extra_noise": "inversion"}),
            "guidance.baseline.": ("guidance.baseline.kind", {k: "score_model" for k in (
                "esd_lambda", "backbone", "memory", "camera_width", "uncond_prob", "lr", "lora_rank", "channels")})}
_OLD_MARKERS = ("guidance_scale", "t_schedule", "t_min", "t_max", "perp_neg", "esd_lambda", "view_prompts")


def is_legacy(data: Any) -> bool:
    guidance = data.get("guidance") if isinstance(data, dict) else None
    return isinstance(guidance, dict) and any(k in guidance for k in _OLD_MARKERS)


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _put(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _kind_allows(new_key: str, flat_new: dict[str, Any]) -> bool:
    for prefix, (kind_key, needs) in _KIND_OF.items():
        if new_key.startswith(prefix):
            wanted = needs.get(new_key[len(prefix):])
            return wanted is None or flat_new.get(kind_key) == wanted
    return True


def migrate_output(data: dict) -> dict:
    """Old `output.video_*` / `output.mesh_*` keys moved to their sections."""
    output = data.get("output")
    if not isinstance(output, dict) or not set(output) & set(OUTPUT_KEYS):
        return data
    data = copy.deepcopy(data)
    for old, new in OUTPUT_KEYS.items():
        if old in data["output"]:
            _put(data, new, data["output"].pop(old))
    return data


def migrate(data: dict) -> dict:
    """An old-format config mapping in the current layout (a current one is returned unchanged)."""
    data = migrate_output(data)
    if not is_legacy(data):
        return data
    data = copy.deepcopy(data)
    old = flatten({"guidance": data.pop("guidance")})
    flat_new: dict[str, Any] = {}
    t_min, t_max = old.pop("guidance.t_min", 0.02), old.pop("guidance.t_max", 0.98)
    flat_new["guidance.timesteps.t_range"] = [t_min, t_max]
    perp_neg = old.pop("guidance.perp_neg", False)
    flat_new["guidance.guide.kind"] = "perp_neg" if perp_neg else "cfg"
    if "guidance.weighting" in old:
        flat_new["guidance.weighting"] = old.pop("guidance.weighting")
    for key, value in old.items():
        flat_new[LEGACY_KEYS.get(key, key)] = value
    for key, value in flat_new.items():
        if _kind_allows(key, flat_new):
            _put(data, key, value)
    resolution = data.get("render", {}).get("resolution")
    if resolution == 0:  # "0 = the prior's" became None
        data["render"]["resolution"] = None
    return data


def legacy_key(dotted: str) -> str:
    """The current key for an old dotted key (`--set guidance.esd_lambda=0.3` keeps working)."""
    return LEGACY_KEYS.get(dotted, dotted)
