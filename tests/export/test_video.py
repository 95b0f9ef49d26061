"""Orbit videos: size and panels as configured, H.264 mp4, optional GIF."""

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from t3d.errors import T3dError
from t3d.export.config import VideoConfig
from t3d.export.video import render_run_video
from t3d.video import read_video_frames
from tests.helpers.export import sphere_scene


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    cfg = VideoConfig(resolution=32, frames=4, fps=8, panels=("rgb", "normal", "depth"), gif=True, gif_resolution=16)
    path = render_run_video(sphere_scene(), folder / "orbit.mp4", cfg)
    return folder, path


def test_mp4_has_the_requested_frames_size_and_panels(video):
    folder, path = video
    assert path == folder / "orbit.mp4"
    frames = read_video_frames(path)
    assert frames.shape == (4, 32, 3 * 32, 3)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")  # plays in browsers


def test_panels_show_colour_camera_space_normals_and_depth(video):
    _, path = video
    frame = read_video_frames(path)[0].astype(int)
    rgb, normal, depth = frame[:, :32], frame[:, 32:64], frame[:, 64:]
    # H.264 at this size blurs colours by up to ~15 levels: compare with margins far wider.
    assert (rgb[1, 1] > 235).all() and (normal[1, 1] > 235).all() and (depth[1, 1] > 235).all()  # white background
    # The ball's centre faces the camera: camera-space normal (0, 0, 1) -> rgb (128, 128, 255).
    assert abs(normal[16, 16, 0] - 128) < 30 and abs(normal[16, 16, 1] - 128) < 30 and normal[16, 16, 2] > 220
    # Its right edge faces camera-right (+x -> red high), its top edge faces up (+y -> green high).
    assert normal[16, 24, 0] > normal[16, 8, 0] + 60 and normal[9, 16, 1] > normal[23, 16, 1] + 60
    # Depth: the nearest point (the centre) is the brightest of the ball.
    assert depth[16, 16].sum() > depth[16, 25].sum()


def test_gif_is_written_beside_with_its_own_panel_size(video):
    folder, _ = video
    gif = iio.imread(folder / "orbit.gif", index=None)
    assert gif.shape[:3] == (4, 16, 3 * 16)


def test_bad_video_options_are_one_line_errors(tmp_path):
    for cfg, message in [(VideoConfig(panels=("rgb", "albedo")), "chosen from rgb, normal, depth, got rgb,albedo"),
                         (VideoConfig(panels=()), "got none"), (VideoConfig(frames=0), "frames.* must be between 1"),
                         (VideoConfig(elevation=float("nan")), "finite")]:
        with pytest.raises(T3dError, match=message):
            render_run_video(sphere_scene(), tmp_path / "v.mp4", cfg)
    assert list(tmp_path.iterdir()) == []
    assert np.isfinite(VideoConfig().elevation)
