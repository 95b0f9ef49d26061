"""The CPU triangle rasteriser: exact coverage (fill rule), barycentrics, and the depth test."""

import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay

from t3d.export.raster import covered_pairs, rasterize


def coverage_count(xy: torch.Tensor, size: int) -> torch.Tensor:
    """How many triangles claim each pixel centre."""
    count = torch.zeros(size * size, dtype=torch.long)
    for _, px, py, _ in covered_pairs(xy, size, size):
        count.index_add_(0, py * size + px, torch.ones_like(px))
    return count.view(size, size)


def grid_layout(cells: int, spacing: float, offset: float, flip_pattern: bool):
    """A square of cells x cells squares, each cut into two triangles (diagonals alternate)."""
    coords = torch.arange(cells + 1, dtype=torch.float64) * spacing + offset
    verts = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1).reshape(-1, 2)
    faces = []
    for i in range(cells):
        for j in range(cells):
            a = i * (cells + 1) + j
            b, c, d = a + 1, a + cells + 1, a + cells + 2
            if (i + j) % 2 == flip_pattern:
                faces += [[a, b, d], [a, d, c]]
            else:
                faces += [[a, b, c], [b, d, c]]
    return verts, torch.tensor(faces)


@pytest.mark.parametrize("flip", [False, True])
def test_tiling_with_vertices_and_edges_on_pixel_centres_covers_each_centre_once(flip):
    # Vertices sit exactly on pixel centres (x.5) and the diagonals run through centres, so every
    # tie the fill rule has to break occurs: shared edges, shared vertices, the square's border.
    # The square spans [0.5, 8.5]^2: the fill rule keeps its left/top border (centres at 0.5) and
    # no centre lies on its right/bottom border, so all 64 centres of the 8 x 8 image are inside.
    verts, faces = grid_layout(4, 2.0, 0.5, flip)
    counts = coverage_count(verts[faces], 8)
    assert (counts == 1).all(), counts


def test_fan_around_a_centre_and_reversed_winding_cover_each_centre_once():
    # 8 triangles around the pixel centre (4.5, 4.5), half of them wound clockwise.
    centre = torch.tensor([4.5, 4.5], dtype=torch.float64)
    ring = torch.tensor([[0.5, 0.5], [4.5, 0.5], [8.5, 0.5], [8.5, 4.5], [8.5, 8.5], [4.5, 8.5], [0.5, 8.5], [0.5, 4.5]],
                        dtype=torch.float64)
    tris = []
    for k in range(8):
        a, b = ring[k], ring[(k + 1) % 8]
        tris.append(torch.stack([centre, a, b]) if k % 2 else torch.stack([centre, b, a]))
    counts = coverage_count(torch.stack(tris), 8)
    assert (counts == 1).all(), counts


def test_random_triangulation_on_a_quarter_pixel_lattice_covers_each_centre_once():
    # Delaunay triangulation of the image corners plus random points on a 1/4-pixel lattice:
    # many edges and vertices fall exactly on centres. The hull is the full image square.
    rng = np.random.default_rng(0)
    size = 16
    inner = rng.integers(1, 4 * size, (60, 2)) / 4.0
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
    points = np.unique(np.concatenate([corners, inner]), axis=0)
    tri = Delaunay(points)
    xy = torch.from_numpy(points[tri.simplices])
    counts = coverage_count(xy, size)
    assert (counts == 1).all(), counts


def test_degenerate_triangles_cover_nothing():
    flat = torch.tensor([[[0.5, 0.5], [4.5, 4.5], [8.5, 8.5]]], dtype=torch.float64)
    assert coverage_count(flat, 8).sum() == 0


def test_barycentrics_reproduce_the_pixel_centre():
    tri = torch.tensor([[[1.2, 0.7], [14.1, 3.3], [5.6, 13.9]]], dtype=torch.float64)
    raster = rasterize(tri, 16, 16)
    rows, cols = torch.nonzero(raster.face >= 0, as_tuple=True)
    assert len(rows) > 50
    point = (raster.bary[rows, cols, :, None].double() * tri[0]).sum(dim=1)
    centres = torch.stack([cols + 0.5, rows + 0.5], dim=-1).double()
    # float32 barycentrics (2^-24 relative) times coordinates below 16: error < 16 * 3 * 6e-8 ~ 3e-6.
    assert torch.allclose(point, centres, atol=1e-5)
    # Three fp32 weights summing to 1: a few roundings of 6e-8.
    assert torch.allclose(raster.bary[rows, cols].sum(dim=-1), torch.ones(len(rows)), atol=1e-6)


def test_depth_test_keeps_the_nearest_triangle_and_interpolates_inverse_depth():
    square = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], dtype=torch.float64)
    xy = torch.stack([square, square])
    depth = torch.tensor([[3.0, 3.0, 3.0], [2.0, 2.0, 2.0]])  # the second triangle is nearer
    raster = rasterize(xy, 8, 8, depth)
    covered = raster.face >= 0
    assert (raster.face[covered] == 1).all()
    # 1 / sum(b_i / 2) in fp32: a few roundings of 2 (default rtol 1.3e-6 is ~5 ulps).
    assert torch.allclose(raster.depth[covered], torch.full_like(raster.depth[covered], 2.0))
    assert torch.isinf(raster.depth[~covered]).all()
    # A slanted triangle: inverse depth is linear in screen space, so at the pixel whose
    # barycentrics are (w0, w1, w2) the depth is 1 / sum(w_i / z_i) (perspective-correct weights).
    slanted = rasterize(square[None], 8, 8, torch.tensor([[1.0, 4.0, 2.0]]))
    rows, cols = torch.nonzero(slanted.face >= 0, as_tuple=True)
    b = slanted.bary[rows, cols]
    z = torch.tensor([1.0, 4.0, 2.0])
    # Perspective-correct weights b_i satisfy sum(b_i * z_i) = depth.
    # Both sides are 3-term fp32 sums and a reciprocal of values <= 4: a few ulps (rtol 1e-5 is ~80).
    assert torch.allclose((b * z).sum(dim=-1), slanted.depth[rows, cols], rtol=1e-5)
