"""The duplicated-part count: withheld, not misread as 0, when a side part's own view is taken
for its mirror side (the mug's handle), and counted as before everywhere else."""

import torch

from t3d.evaluate.janus import count_part, janus_score, score_predictions

from tests.evaluate.test_janus import PictureScene, small_prior

ORBIT = torch.arange(36, dtype=torch.float32) * 10.0
ORBIT = torch.remainder(ORBIT + 180.0, 360.0) - 180.0

# Predicted azimuths of two real mugs whose contact sheets show one handle (600 steps, seed 0, the
# pre-animals prior): sds and dsds. Their handle side (60-110 degrees) was classified on the mirror
# side (-30 to -120), so the plain arc count read 0 handles.
SDS_MUG = [0, 10, 10, 20, 0, -20, -30, -30, -60, -60, -90, 120, 130, 130, 140, 170, 170, 170, -180, -170,
           -160, -150, -150, -40, -40, -40, -50, -50, -50, -50, -50, -40, -30, -20, -20, -10]
DSDS_MUG = [0, 0, 10, 20, 20, 40, 50, -40, -60, -110, -120, -120, 120, 130, 140, 150, 160, 160, 170, -180,
            -170, -160, -150, -140, -130, -130, -90, -70, -70, -70, -60, -50, -40, -30, -20, -10]


def test_the_reproduced_mugs_no_longer_read_zero_handles():
    for predicted in (SDS_MUG, DSDS_MUG):
        score = score_predictions(ORBIT, torch.tensor(predicted, dtype=torch.float32), 10.0, part=("handle", 90.0))
        assert score.parts is None and "mirror side -90" in score.part_note
        assert score.faces == 1  # the logo (the face count) is read as before


def test_a_handle_side_seen_as_its_mirror_withholds_the_count():
    prior = small_prior()
    # The handle side (60-120) shows the handle-less side's references: the old count read 0.
    mirrored_side = lambda az: -az if 45 < az < 135 else az
    score = janus_score(PictureScene(prior, mirrored_side, "a mug"), prior, "a mug", views=12)
    assert score.part == "handle" and score.parts is None and score.part_note
    honest = janus_score(PictureScene(prior, lambda az: az, "a mug"), prior, "a mug", views=12)
    assert honest.parts == 1 and honest.part_note is None


def test_the_other_side_seen_as_the_handle_side_still_counts_two():
    """The opposite confusion is what a two-handled mug looks like, so it is still counted."""
    predicted = ORBIT.clone()
    other_side = (ORBIT > -120) & (ORBIT < -60)
    predicted[other_side] = -ORBIT[other_side]
    parts, note = count_part(ORBIT, predicted, 90.0, 22.5, 90.0)
    assert parts == 2 and note is None


def test_a_part_on_the_mirror_plane_is_always_counted():
    """Faces and beaks (azimuth 0) are their own mirror: a face everywhere is 4 faces, not withheld."""
    parts, note = count_part(ORBIT, torch.zeros(36), 0.0, 22.5, 90.0)
    assert parts == 4 and note is None
