"""Editing without edit pairs: regenerate only the code cells an attribute lives in.

Real face data sets have no before/after pairs, so the `edit` task cannot be trained on them.
The fallback (`Talk2Face.edit_in_place`) keeps the source face's codes outside the region where
the attribute shows on an aligned face crop, samples the cells inside it with the text-to-face
task prompted for the wanted value, and keeps the candidate the model's own attribute classifier
scores highest. These regions are where SynFace draws each attribute; aligned CelebA-style crops
put the eyes, mouth and hair in about the same places.
"""

from __future__ import annotations

import numpy as np

from talk2face.errors import UserError

Box = tuple[float, float, float, float]  # (left, top, right, bottom), fractions of the image side

# Where each attribute may change pixels; an attribute not listed (hair colour, skin, age, sex)
# may change them anywhere.
EDIT_REGIONS: dict[str, Box] = {
    "Smiling": (0.2, 0.55, 0.8, 0.95), "Mouth_Slightly_Open": (0.2, 0.55, 0.8, 0.95),
    "Wearing_Lipstick": (0.2, 0.55, 0.8, 0.95), "Mustache": (0.15, 0.5, 0.85, 1.0),
    "Goatee": (0.15, 0.55, 0.85, 1.0), "No_Beard": (0.05, 0.45, 0.95, 1.0),
    "Eyeglasses": (0.1, 0.25, 0.9, 0.6), "Bushy_Eyebrows": (0.1, 0.2, 0.9, 0.5),
    "Arched_Eyebrows": (0.1, 0.2, 0.9, 0.5), "Narrow_Eyes": (0.1, 0.25, 0.9, 0.55),
    "Rosy_Cheeks": (0.05, 0.4, 0.95, 0.8), "Big_Nose": (0.3, 0.35, 0.7, 0.75),
    "Wearing_Earrings": (0.0, 0.35, 1.0, 0.85), "Bangs": (0.05, 0.0, 0.95, 0.45),
    "Wearing_Hat": (0.0, 0.0, 1.0, 0.45),
}

# How a caption says an attribute is there / is not (the words SynFace's captions use).
_PRESENT = {"Eyeglasses": "glasses", "Wearing_Hat": "hat", "Wearing_Earrings": "earrings",
            "Wearing_Lipstick": "lipstick", "Wearing_Necklace": "necklace", "Wearing_Necktie": "tie",
            "No_Beard": "clean-shaven", "Mouth_Slightly_Open": "mouth slightly open"}
_ABSENT = {"Smiling": "serious expression", "No_Beard": "beard", "Male": "woman", "Young": "old"}


def regenerated_cells(attribute: str, grid_size: tuple[int, int]) -> np.ndarray:
    """(h*w,) bool, row-major like the codes: True for the cells that overlap `attribute`'s region."""
    if attribute not in EDIT_REGIONS:
        return np.ones(grid_size[0] * grid_size[1], dtype=bool)
    left, top, right, bottom = EDIT_REGIONS[attribute]
    h, w = grid_size
    rows = (np.arange(h) + 1) / h > top  # a cell [r/h, (r+1)/h) overlaps [top, bottom)
    rows &= np.arange(h) / h < bottom
    cols = ((np.arange(w) + 1) / w > left) & (np.arange(w) / w < right)
    return (rows[:, None] & cols[None, :]).reshape(-1)


def target_phrase(attribute: str, value: bool) -> str:
    """Words for the text-to-face prompt that ask for `attribute` = `value` ("glasses", "no hat")."""
    if not attribute or not attribute[0].isupper():
        raise UserError(f"not a CelebA attribute name: {attribute!r}")
    present = _PRESENT.get(attribute, attribute.lower().replace("_", " "))
    if value:
        return present
    return _ABSENT.get(attribute, f"no {present}")
