"""The Janus problem as a number, with ground truth from the analytic prior's posed references.

Render an orbit at one of the references' elevations and their framing, give each view the
azimuth of its nearest reference of the prompt's object (pixel distance), and compare with the
true azimuth:
- pose accuracy: share of views whose nearest reference lies within `tolerance` (45) degrees;
- front views: views that look like the front (nearest reference |azimuth| < 45); an honest
  object shows about 90/360 = 25% front views, a Janus object far more;
- front arcs: separate runs of front-looking views around the circle. This count is degenerate
  (1) when every view looks like the front, so we also count
- faces: arcs of views that see the face head-on: nearest reference within half a front bin
  (22.5 degrees, D-SDS's narrow front) of the 0-degree references. Exactly-0 would be brittle:
  a blurry but honest face often matches the 10-degree reference best. A real face is seen
  head-on over a narrow arc only, so an arc longer than one front bin (2 * 45 = 90 degrees)
  cannot be a single face: it counts one face per started 90 degrees (a face on every side of
  the circle = 4 faces, never 1). 0 faces = the face is not recognisable from any side.
- parts: the same count for the part the object's Janus artefact duplicates, seen head-on from
  its own azimuth (head and animals: face at 0; mug: handle at +90; bird: beak at 0), so a
  two-handled mug reads 2 even when its logo is honest. None for user reference folders (no part
  defined), and None with `part_note` when the count cannot be read: a part off the object's
  mirror plane (the mug's handle) is seen head-on from a side whose view is the mirror image of
  the opposite side except for that part. The mug's handle from +90 is an edge-on bar about 2 px
  wide at 32 px, so a soft render of its handle side is often classified as the handle-less -90
  side (measured in two runs whose contact sheets show one handle: sds and dsds, seed 0, views at
  60-110 degrees classified at -30 to -120), and the arc count then reads 0 handles. When a view
  of the part's own head-on window is classified into the mirror window, the count is withheld
  rather than reported as 0.
- janus: the front is duplicated: two or more faces, or more than half of the views look like
  the front;
- success (our stated rule, the papers judge it by eye): exactly one face AND at most half of
  the views look like the front. A run with 0 faces is neither Janus nor a success: its face is
  not recognisable from any side (e.g. a blurred or over-saturated result).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from t3d.scene.cameras import orbit_cameras, wrap_azimuth

MAX_FRONT_SHARE = 0.5  # success rule: more front views than this is a Janus object


@dataclass
class JanusScore:
    pose_accuracy: float
    front_views: int
    front_fraction: float
    front_arcs: int
    faces: int
    success: bool
    janus: bool
    views: int
    elevation: float
    part: str | None = None
    parts: int | None = None
    part_note: str | None = None  # why `parts` is None although the object has a part
    true_azimuth: list[float] = field(default_factory=list)
    predicted_azimuth: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def angular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return wrap_azimuth(a - b).abs()


def arcs(flags: list[bool]) -> list[int]:
    """Lengths of the runs of True on a circle (the last view neighbours the first)."""
    n = len(flags)
    if all(flags):
        return [n] if n else []
    start = flags.index(False)  # rotate so no run wraps around the end
    rolled = flags[start:] + flags[:start]
    lengths, run = [], 0
    for f in rolled + [False]:
        if f:
            run += 1
        elif run:
            lengths.append(run)
            run = 0
    return lengths


def count_arcs(flags: list[bool]) -> int:
    return len(arcs(flags))


def count_faces(head_on: list[bool], max_face_degrees: float = 90.0) -> int:
    """Separate faces among views matching the head-on reference; an arc wider than
    `max_face_degrees` holds one face per started `max_face_degrees` (see module doc)."""
    step = 360.0 / max(len(head_on), 1)
    return sum(math.ceil(length * step / max_face_degrees - 1e-9) for length in arcs(head_on))


def is_success(faces: int, front_fraction: float) -> bool:
    return faces == 1 and front_fraction <= MAX_FRONT_SHARE


def is_janus(faces: int, front_fraction: float) -> bool:
    return faces >= 2 or front_fraction > MAX_FRONT_SHARE


def pick_elevation(refs, wanted: float | None) -> float:
    """The reference elevation closest to `wanted` (default 15 degrees, a typical viewing angle):
    views must be compared with references taken at the same elevation."""
    elevs = refs.elevation.unique()
    target = 15.0 if wanted is None else float(wanted)
    return float(elevs[(elevs - target).abs().argmin()])


@torch.no_grad()
def classify_views(rgb: torch.Tensor, refs, elevation: float) -> torch.Tensor:
    """Azimuth (degrees) of the nearest posed reference at `elevation` for each view (V, 3, R, R)."""
    pool = refs.elevation == elevation
    if rgb.shape[-1] != refs.images.shape[-1]:
        rgb = torch.nn.functional.interpolate(rgb, size=refs.images.shape[-2:], mode="bilinear",
                                              align_corners=False, antialias=True)
    flat_views = rgb.reshape(rgb.shape[0], -1).float().cpu()
    flat_refs = refs.images[pool].reshape(int(pool.sum()), -1)
    nearest = torch.cdist(flat_views, flat_refs).argmin(dim=1)
    return refs.azimuth[pool][nearest]


def score_predictions(true_az: torch.Tensor, predicted: torch.Tensor, elevation: float,
                      front_halfwidth: float = 45.0, tolerance: float = 45.0,
                      part: tuple[str | None, float | None] = (None, None)) -> JanusScore:
    views = len(true_az)
    correct = angular_distance(predicted, true_az) < tolerance
    front = (predicted.abs() < front_halfwidth).tolist()
    head_on = (predicted.abs() <= front_halfwidth / 2).tolist()
    faces = count_faces(head_on, 2 * front_halfwidth)
    fraction = sum(front) / views
    part_name, part_az = part
    parts, note = None, None
    if part_name is not None:
        parts, note = count_part(true_az, predicted, float(part_az), front_halfwidth / 2, 2 * front_halfwidth)
    return JanusScore(correct.float().mean().item(), sum(front), fraction, count_arcs(front), faces,
                      is_success(faces, fraction), is_janus(faces, fraction), views, elevation, part_name, parts,
                      note, [round(a, 2) for a in true_az.tolist()], [round(a, 2) for a in predicted.tolist()])


def count_part(true_az: torch.Tensor, predicted: torch.Tensor, part_az: float, window: float,
               max_part_degrees: float) -> tuple[int | None, str | None]:
    """Arcs of views that see the part head-on (predicted within `window` of `part_az`), or
    (None, why) when a view of the part's own window was classified into its mirror window -part_az
    (the part's side taken for the side without it: see the module doc). A part on the mirror plane
    (azimuth 0 or 180: faces, beaks) is its own mirror and is always counted."""
    part = torch.tensor(part_az)
    sees_part = (angular_distance(predicted, part) <= window).tolist()
    if angular_distance(part, -part) > 2 * window:
        own_side = angular_distance(true_az, part) <= window
        mirrored = angular_distance(predicted, -part) <= window
        confused = int((own_side & mirrored).sum())
        if confused:
            return None, (f"{confused} view(s) within {window:g} deg of the part's azimuth {part_az:g} look like the "
                          f"mirror side {-part_az:g}: the part cannot be counted")
    return count_faces(sees_part, max_part_degrees), None


@torch.no_grad()
def janus_score(scene, prior, prompt: str, views: int = 36, elevation: float | None = None,
                rgb: torch.Tensor | None = None) -> JanusScore:
    """Pose accuracy of `scene` against the prior's posed references of `prompt`'s object.

    `rgb` may hold the orbit already rendered (views at `elevation`, starting at azimuth 0).
    """
    refs = prior.posed_references(prompt)
    elevation = pick_elevation(refs, elevation)
    cams = orbit_cameras(views, elevation, refs.distance, refs.fovy)
    if rgb is None:
        rgb = scene.render(cams, refs.images.shape[-1], chunk_rays=2**15).rgb
    predicted = classify_views(rgb.cpu(), refs, elevation)
    return score_predictions(cams.azimuth, predicted, elevation, refs.front_halfwidth,
                             part=(refs.part, refs.part_azimuth))
