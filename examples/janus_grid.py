"""The Janus benchmark's image grid: one row per method, one column per object, each cell the
run's views at azimuths 0, 90, 180 and 270 (front, left side, back, right side), labelled with
its verdict. A run without its views on disk (not run yet, or failed) leaves a grey cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOUR_VIEWS_FILE = "eval/four_views.png"
FOUR_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)


def four_view_indices(views: int) -> list[int]:
    """Orbit indices of azimuths 0/90/180/270 in an orbit of `views` starting at azimuth 0."""
    return [round(az / 360.0 * views) % views for az in FOUR_AZIMUTHS]


def save_four_views(run_dir: Path, orbit_rgb, views: int) -> Path:
    """Keep the four views of a scored orbit beside the run, for the grid."""
    from t3d.evaluate.runner import sheet_tiles
    from t3d.video import contact_sheet, save_png

    tiles = sheet_tiles(orbit_rgb[four_view_indices(views)], min_size=64)
    return save_png(contact_sheet(tiles, columns=4, pad=1), run_dir / FOUR_VIEWS_FILE)


def _verdict(janus: dict) -> str:
    if janus["success"]:
        return "success"
    if janus["janus"]:
        return "janus"
    return "no face" if janus["faces"] == 0 else "other"


def _label(text: str, width: int, height: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(img).multiline_text((4, 3), text, fill=(0, 0, 0))
    return np.asarray(img)


def grid_image(records: dict[tuple[str, str], dict], methods: list[str], objects: list[str], out: Path) -> np.ndarray:
    """records[(method, object)] = a benchmark record (its run folder under `out`)."""
    import imageio.v3 as iio

    from t3d.video import contact_sheet, side_by_side

    cells: dict[tuple[str, str], np.ndarray] = {}
    for key, record in records.items():
        path = out / record["key"] / FOUR_VIEWS_FILE
        if path.exists():
            cells[key] = np.asarray(iio.imread(path))[..., :3]
    size = next(iter(cells.values())).shape if cells else (66, 261, 3)
    caption_h, label_w = 28, 70
    header = [_label("", label_w, 14)] + [_label(f"{o}  (0, 90, 180, 270 deg)", size[1], 14) for o in objects]
    rows = [side_by_side(*header)]
    for m in methods:
        row = [_label(m, label_w, size[0] + caption_h)]
        for o in objects:
            record = records.get((m, o))
            image = cells.get((m, o), np.full(size, 200, np.uint8))
            caption = "not run"
            if record is not None:
                j = record["janus"]
                caption = (f"{_verdict(j)}: faces {j['faces']}, front {j['front_views']}/{j['views']}\n"
                           f"pose acc {j['pose_accuracy']:.2f}, seed {record['seed']}")
            row.append(np.concatenate([image, _label(caption, size[1], caption_h)], axis=0))
        rows.append(side_by_side(*row))
    return contact_sheet(rows, columns=1, pad=2)
