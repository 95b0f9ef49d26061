"""mp4 writing/reading, PNGs and the image panels used in reports."""

import imageio.v3 as iio
import numpy as np
import pytest

from t3d.errors import T3dError
from t3d.video import colorize_depth, contact_sheet, read_video_frames, save_png, side_by_side, write_gif, write_video

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (40, 120, 200), (0, 0, 0)]


@pytest.mark.parametrize("h,w", [(32, 48), (33, 47)], ids=["even", "odd"])
def test_video_round_trip_keeps_frames_size_and_colours(tmp_path, h, w):
    frames = [np.full((h, w, 3), c, np.uint8) for c in COLOURS]
    path = write_video(frames, tmp_path / "orbit.mp4", fps=12)
    assert [p.name for p in tmp_path.iterdir()] == ["orbit.mp4"]  # atomic: no temp file left
    back = read_video_frames(path)
    # yuv420p needs even sizes: odd ones gain one replicated row/column, nothing is rescaled.
    assert back.shape == (len(COLOURS), h + h % 2, w + w % 2, 3) and back.dtype == np.uint8
    for frame, colour in zip(back, COLOURS):
        assert np.abs(frame.astype(int) - colour).max() <= 8  # H.264 quantisation and yuv420p chroma, not rounding


def test_video_accepts_float_frames(tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.float32)
    frames[:, :, :8] = 1.0  # left half white, right half black
    back = read_video_frames(write_video(frames, tmp_path / "f.mp4"))
    assert len(back) == 4
    assert back[:, :, :6].min() >= 240 and back[:, :, 10:].max() <= 15


def test_video_without_frames_is_a_user_error(tmp_path):
    with pytest.raises(T3dError):
        write_video([], tmp_path / "empty.mp4")
    assert not (tmp_path / "empty.mp4").exists()


def test_save_png_is_lossless_and_takes_floats(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    save_png(img, tmp_path / "a.png")
    assert np.array_equal(iio.imread(tmp_path / "a.png"), img)
    save_png(img / 255.0, tmp_path / "b.png")
    assert np.array_equal(iio.imread(tmp_path / "b.png"), img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_contact_sheet_lays_out_a_padded_grid():
    images = [np.full((10, 20, 3), i * 40, np.uint8) for i in range(5)]
    sheet = contact_sheet(images, columns=3, pad=2)
    assert sheet.shape == (2 * 10 + 3 * 2, 3 * 20 + 4 * 2, 3)
    assert (sheet[0] == 255).all()  # white border
    assert (sheet[2 + 10 + 2:2 + 20 + 2, 2 + 20 + 2:2 + 40 + 2] == 4 * 40).all()  # 5th image: row 1, col 1
    assert (sheet[14:24, 48:68] == 255).all()  # unused cell stays white
    assert contact_sheet(images[:2], columns=4, pad=0).shape == (10, 40, 3)


def test_side_by_side_concatenates_panels():
    rgb = np.zeros((8, 5, 3), np.uint8)
    depth = np.ones((8, 6, 3), np.float32)
    out = side_by_side(rgb, depth, np.zeros((8, 7), np.uint8))
    assert out.shape == (8, 18, 3) and out.dtype == np.uint8
    assert (out[:, :5] == 0).all() and (out[:, 5:11] == 255).all()


def test_colorize_depth_near_bright_far_dark_background_white():
    depth = np.tile(np.linspace(1.0, 3.0, 10, dtype=np.float32), (4, 1))
    mask = np.ones_like(depth, bool)
    mask[:, -1] = False
    out = colorize_depth(depth, mask)
    assert out.shape == (4, 10, 3) and out.dtype == np.uint8
    brightness = out[0, :-1].astype(int).sum(axis=1)
    assert (np.diff(brightness) < 0).all()  # monotone: nearer is brighter
    assert (out[:, -1] == 255).all()
    assert not (out[:, :-1] == 255).all(axis=-1).any()  # foreground never mistaken for background
    # Without a mask, zero / infinite depth is background.
    depth[0, 0], depth[1, 1] = 0.0, np.inf
    auto = colorize_depth(depth)
    assert (auto[0, 0] == 255).all() and (auto[1, 1] == 255).all()
    assert (colorize_depth(np.zeros((3, 3))) == 255).all()


def test_gif_round_trip_keeps_frames_and_loops(tmp_path):
    frames = [np.full((6, 10, 3), c, np.uint8) for c in COLOURS[:4]]
    path = write_gif(frames, tmp_path / "orbit.gif", fps=10)
    assert [p.name for p in tmp_path.iterdir()] == ["orbit.gif"]
    back = iio.imread(path, index=None)
    assert back.shape == (4, 6, 10, 3)
    for frame, colour in zip(back, COLOURS):
        assert np.abs(frame.astype(int) - colour).max() <= 2  # a flat frame fits one palette exactly
    assert iio.immeta(path)["loop"] == 0 and iio.immeta(path)["duration"] == 100
