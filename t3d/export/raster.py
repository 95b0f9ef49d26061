"""A small vectorised CPU triangle rasteriser (torch): which triangle covers each pixel centre.

Used twice: to find the 3D surface point behind every texel of a UV atlas (no depth), and to
render exported meshes through t3d's cameras for the mesh check (inverse-depth z-buffer).

Pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5). A centre is covered by a
triangle when it lies strictly inside, or exactly on an edge that the *fill rule* gives to this
triangle: the centre is treated as if nudged by an infinitesimal (1, delta) step, delta << 1
(toward +x first, then +y). That nudged point lies strictly inside exactly one triangle of any
tiling, so pixels on shared edges and at shared vertices are covered exactly once (the classic
"top-left" rule up to the axis convention). Edge functions are computed from each edge's
lexicographically smaller end in float64, so the two triangles sharing an edge see exactly
opposite values and can never both (or neither) claim a centre near the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_CANDIDATES = 2**22  # pixel-triangle pairs tested at once (bounds the memory of one chunk)


@dataclass
class Raster:
    face: torch.Tensor  # (H, W) long: covering triangle, -1 where none
    bary: torch.Tensor  # (H, W, 3) float32 barycentric weights of the triangle's 3 vertices (0 where none)
    depth: torch.Tensor | None = None  # (H, W) float32 view depth of the covering point (inf where none)


def _edge_functions(tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """(N, 3) edge function of edge k (vertex k -> k+1) at the points, positive on its left."""
    out = []
    for k in range(3):
        start, end = tri[:, k], tri[:, (k + 1) % 3]
        # Canonical direction: from the lexicographically smaller end, so a shared edge gives both
        # of its triangles bit-exact negatives of one another.
        flip = (start[:, 0] > end[:, 0]) | ((start[:, 0] == end[:, 0]) & (start[:, 1] > end[:, 1]))
        a = torch.where(flip[:, None], end, start)
        b = torch.where(flip[:, None], start, end)
        canon = (b[:, 0] - a[:, 0]) * (py - a[:, 1]) - (b[:, 1] - a[:, 1]) * (px - a[:, 0])
        out.append(torch.where(flip, -canon, canon))
    return torch.stack(out, dim=-1)


def _owns_ties(edge: torch.Tensor) -> torch.Tensor:
    """Whether a centre exactly on an edge (ex, ey), interior on its left, counts as inside.

    The left side's edge function has gradient (-ey, ex); the (1, delta) nudge enters the
    interior when -ey + delta * ex > 0.
    """
    return (edge[..., 1] < 0) | ((edge[..., 1] == 0) & (edge[..., 0] > 0))


def _orientation(tri: torch.Tensor) -> torch.Tensor:
    """(N,) sign of the doubled signed area (v1 - v0) x (v2 - v0): +1 counter-clockwise in (x, y)."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return torch.sign(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def _candidates(tri: torch.Tensor, height: int, width: int):
    """Every (triangle, pixel) pair whose pixel centre lies in the triangle's bounding box."""
    lo, hi = tri.amin(dim=1), tri.amax(dim=1)
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, width).long()
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, width - 1).long()
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, height).long()
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, height - 1).long()
    w, h = (x1 - x0 + 1).clamp_min(0), (y1 - y0 + 1).clamp_min(0)
    count = w * h
    owner = torch.repeat_interleave(torch.arange(len(tri)), count)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(int(count.sum())) - start[owner]
    return owner, x0[owner] + local % w[owner], y0[owner] + local // w[owner]


def _chunks(tri: torch.Tensor, height: int, width: int):
    """Split triangle indices so each chunk tests at most MAX_CANDIDATES pairs (one huge one alone)."""
    span = tri.amax(dim=1) - tri.amin(dim=1)
    area = ((span[:, 0].clamp(0, width) + 1) * (span[:, 1].clamp(0, height) + 1)).cumsum(0)
    begin = 0
    while begin < len(tri):
        base = area[begin - 1] if begin else 0.0
        end = int(torch.searchsorted(area, base + MAX_CANDIDATES, right=True))
        end = max(end, begin + 1)
        yield begin, end
        begin = end


def covered_pairs(xy: torch.Tensor, height: int, width: int):
    """Yield, chunk by chunk, every (triangle, pixel) pair whose pixel centre the triangle covers.

    `xy` is (F, 3, 2) pixel coordinates (x = column, y = row). Each chunk is (triangle index,
    column, row, barycentric weights (N, 3) float64), triangles in increasing index order.
    Degenerate (zero-area) triangles cover nothing.
    """
    tri = xy.detach().to(torch.float64).cpu()
    for begin, end in _chunks(tri, height, width):
        part = tri[begin:end]
        owner, px, py = _candidates(part, height, width)
        if owner.numel() == 0:
            continue
        t = part[owner]
        edges = _edge_functions(t, px.double() + 0.5, py.double() + 0.5)
        # Clockwise triangles have their interior on the right of their edges: negate those.
        orient = _orientation(part)[owner][:, None]
        owns = _owns_ties((t[:, [1, 2, 0]] - t) * orient[..., None])
        signed = edges * orient
        inside = ((signed > 0) | ((signed == 0) & owns)).all(dim=1) & (orient[:, 0] != 0)
        edges = edges[inside]
        # The three edge functions sum to twice the signed area; vertex k's weight is the
        # function of the edge opposite it over that area.
        weights = edges[:, [1, 2, 0]] / edges.sum(dim=1, keepdim=True)
        yield owner[inside] + begin, px[inside], py[inside], weights


def rasterize(xy: torch.Tensor, height: int, width: int, depth: torch.Tensor | None = None) -> Raster:
    """The covering triangle and its barycentrics at every pixel centre (see `covered_pairs`).

    With `depth` (F, 3) positive view depths, the nearest triangle wins (inverse depth is linear
    in screen space) and barycentrics are perspective-correct; without it, overlaps go to the
    lowest triangle index.
    """
    inv_z = None if depth is None else 1.0 / depth.detach().to(torch.float64).cpu()
    best = torch.full((height * width,), -torch.inf, dtype=torch.float64)
    face = torch.full((height * width,), -1, dtype=torch.long)
    bary = torch.zeros(height * width, 3, dtype=torch.float64)
    for owner, px, py, weights in covered_pairs(xy, height, width):
        key = torch.zeros(len(owner), dtype=torch.float64)
        if inv_z is not None:
            iz = inv_z[owner]
            key = (weights * iz).sum(dim=1)
            weights = weights * iz / key[:, None]
        _merge(best, face, bary, py * width + px, key, owner, weights)
    depth_map = None
    if inv_z is not None:
        depth_map = torch.where(face >= 0, 1.0 / best, torch.inf).float().view(height, width)
    return Raster(face.view(height, width), bary.view(height, width, 3).float(), depth_map)


def _merge(best, face, bary, pixel, key, owner, weights) -> None:
    """Keep, per pixel, the candidate with the largest key (ties: lowest triangle index)."""
    chunk_best = torch.full_like(best, -torch.inf).scatter_reduce(0, pixel, key, "amax")
    top = key == chunk_best[pixel]
    sentinel = torch.iinfo(torch.long).max
    chunk_face = torch.full_like(face, sentinel).scatter_reduce(0, pixel[top], owner[top], "amin")
    win = top & (owner == chunk_face[pixel])
    pixel, key, owner, weights = pixel[win], key[win], owner[win], weights[win]
    # Earlier chunks hold lower triangle indices, so they keep the pixel on an exact tie.
    better = key > best[pixel]
    pixel = pixel[better]
    best[pixel], face[pixel], bary[pixel] = key[better], owner[better], weights[better]
