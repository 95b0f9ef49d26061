"""The built-in animals: a cat, a dog and a bunny, the subjects of the Janus literature's prompts
("a smiling cat", "a smiling dog" in D-SDS and ESD; "a rabbit with long ears", "a baby bunny" in
D-SDS).

Modelled in t3d's world frame (+z up, the face towards +x). Each has a face at the front (eyes, a
nose and a smile) that a Janus artefact duplicates, ears, a body, legs or feet, and a tail at the
back, and each is told from the others at 32 px by its silhouette and colours: the cat is a
ginger standing cat with pointed ears and a long raised tail; the dog a brown standing dog with a
long snout, floppy dark ears, a red collar and a pink tongue; the bunny a grey-brown sitting
rabbit with tall ears (pink inside, so only the front shows pink) and a white tail.
"""

from __future__ import annotations

import torch

from t3d.priors.shapes import Part, ProceduralObject, capsule, ellipsoid, round_cone, sphere

EYE = (0.04, 0.04, 0.05)
FACE = "face"  # the label of the parts that make the face: eyes, nose, mouth
MOUTH = (0.25, 0.05, 0.05)


def _smile(x: float, z: float, half_width: float, drop: float, radius: float) -> list[Part]:
    """A mouth: two capsules meeting below the corners, a V-shaped smile seen from the front."""
    left, middle, right = (x, half_width, z), (x + 0.01, 0.0, z - drop), (x, -half_width, z)
    return [Part(capsule(left, middle, radius), MOUTH, FACE), Part(capsule(middle, right, radius), MOUTH, FACE)]


def _legs(front_x: float, back_x: float, half_gap: float, top: float, bottom: float, radius: float,
          color) -> list[Part]:
    return [Part(capsule((x, y, top), (x, y, bottom), radius), color)
            for x in (front_x, back_x) for y in (half_gap, -half_gap)]


def _cat() -> ProceduralObject:
    ginger, cream, pink = (0.95, 0.55, 0.18), (0.98, 0.92, 0.80), (0.95, 0.55, 0.62)
    tail = [(-0.42, 0.0, 0.0), (-0.60, 0.0, 0.12), (-0.66, 0.0, 0.32), (-0.60, 0.0, 0.48)]
    parts = [
        Part(ellipsoid((-0.10, 0.0, -0.05), (0.40, 0.21, 0.21)), ginger),  # body
        Part(sphere((0.33, 0.0, 0.22), 0.20), ginger),  # head
        Part(ellipsoid((0.49, 0.0, 0.15), (0.07, 0.11, 0.07)), cream),  # muzzle
        Part(sphere((0.555, 0.0, 0.19), 0.03), pink, FACE),  # nose
        Part(sphere((0.48, 0.085, 0.28), 0.04), EYE, FACE),
        Part(sphere((0.48, -0.085, 0.28), 0.04), EYE, FACE),
        # Pointed ears: round cones narrowing to a tip above the head.
        Part(round_cone((0.30, 0.11, 0.36), (0.30, 0.15, 0.54), 0.075, 0.01), ginger),
        Part(round_cone((0.30, -0.11, 0.36), (0.30, -0.15, 0.54), 0.075, 0.01), ginger),
        *_legs(0.15, -0.33, 0.11, -0.12, -0.52, 0.055, ginger),
        *_smile(0.53, 0.10, 0.06, 0.035, 0.016),
        # The tail rises behind the body; its tip is dark.
        *[Part(round_cone(tail[i], tail[i + 1], 0.045, 0.04), ginger) for i in range(2)],
        Part(round_cone(tail[2], tail[3], 0.04, 0.035), (0.45, 0.22, 0.08)),
    ]
    return ProceduralObject("cat", ("cat", "cats", "kitten", "kittens", "kitty", "kitties", "tabby"),
                            tuple(parts), scale=0.95, part="face")


def _dog() -> ProceduralObject:
    brown, tan, dark = (0.55, 0.33, 0.15), (0.85, 0.68, 0.45), (0.25, 0.13, 0.06)
    parts = [
        Part(ellipsoid((-0.12, 0.0, -0.05), (0.42, 0.23, 0.23)), brown),  # body
        Part(sphere((0.30, 0.0, 0.25), 0.19), brown),  # head
        Part(round_cone((0.38, 0.0, 0.20), (0.58, 0.0, 0.18), 0.11, 0.08), tan),  # snout
        Part(sphere((0.66, 0.0, 0.21), 0.045), EYE, FACE),  # nose
        Part(sphere((0.44, 0.09, 0.33), 0.038), EYE, FACE),
        Part(sphere((0.44, -0.09, 0.33), 0.038), EYE, FACE),
        # Floppy ears hang down the sides of the head.
        Part(ellipsoid((0.26, 0.19, 0.24), (0.07, 0.035, 0.14)), dark),
        Part(ellipsoid((0.26, -0.19, 0.24), (0.07, 0.035, 0.14)), dark),
        Part(ellipsoid((0.60, 0.0, 0.08), (0.05, 0.045, 0.06)), (0.95, 0.45, 0.55)),  # tongue out
        *_smile(0.62, 0.14, 0.05, 0.03, 0.016),
        Part(ellipsoid((0.22, 0.0, 0.07), (0.09, 0.19, 0.05)), (0.85, 0.08, 0.08)),  # red collar
        *_legs(0.14, -0.36, 0.12, -0.12, -0.52, 0.06, brown),
        Part(round_cone((-0.50, 0.0, 0.05), (-0.64, 0.0, 0.34), 0.05, 0.03), brown),  # raised tail
    ]
    return ProceduralObject("dog", ("dog", "dogs", "puppy", "puppies", "pup", "doggy", "doggie", "hound"),
                            tuple(parts), scale=0.95, part="face")


def _bunny_ear_color(y_centre: float):
    """Grey-brown ear, pink on its front face (x > the ear's mid-plane, near its middle)."""

    def color(p: torch.Tensor) -> torch.Tensor:
        out = torch.tensor([0.60, 0.52, 0.46], dtype=p.dtype, device=p.device).expand(p.shape[0], 3).clone()
        inner = (p[:, 0] > 0.13) & ((p[:, 1] - y_centre).abs() < 0.045) & (p[:, 2] > 0.40)
        out[inner] = torch.tensor([0.96, 0.62, 0.70], dtype=p.dtype, device=p.device)
        return out

    return color


def _bunny() -> ProceduralObject:
    fur, white = (0.60, 0.52, 0.46), (0.97, 0.97, 0.97)
    parts = [
        Part(ellipsoid((-0.12, 0.0, -0.20), (0.34, 0.28, 0.30)), fur),  # sitting body
        Part(sphere((0.20, 0.0, 0.14), 0.21), fur),  # head
        Part(ellipsoid((0.36, 0.0, 0.08), (0.07, 0.12, 0.07)), white),  # white cheeks / muzzle
        Part(sphere((0.425, 0.0, 0.12), 0.03), (0.95, 0.45, 0.55), FACE),  # pink nose
        Part(sphere((0.34, 0.10, 0.21), 0.04), EYE, FACE),
        Part(sphere((0.34, -0.10, 0.21), 0.04), EYE, FACE),
        *_smile(0.42, 0.05, 0.045, 0.025, 0.014),
        # Tall ears, flat front to back, pink on the front.
        Part(ellipsoid((0.12, 0.09, 0.56), (0.04, 0.075, 0.24)), _bunny_ear_color(0.09)),
        Part(ellipsoid((0.12, -0.09, 0.56), (0.04, 0.075, 0.24)), _bunny_ear_color(-0.09)),
        Part(ellipsoid((0.12, 0.13, -0.46), (0.16, 0.06, 0.05)), fur),  # hind feet
        Part(ellipsoid((0.12, -0.13, -0.46), (0.16, 0.06, 0.05)), fur),
        Part(capsule((0.18, 0.08, -0.12), (0.22, 0.08, -0.44), 0.045), fur),  # front legs
        Part(capsule((0.18, -0.08, -0.12), (0.22, -0.08, -0.44), 0.045), fur),
        Part(sphere((-0.47, 0.0, -0.28), 0.10), white),  # cotton tail
    ]
    return ProceduralObject("bunny", ("bunny", "bunnies", "rabbit", "rabbits", "hare", "bunnyrabbit"),
                            tuple(parts), scale=0.88, part="face")


ANIMALS: tuple[ProceduralObject, ...] = (_cat(), _dog(), _bunny())
