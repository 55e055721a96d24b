"""Regions of in-place edits: which code cells an attribute edit regenerates, and how it is asked for."""

import pytest

from talk2face.edit_regions import regenerated_cells, target_phrase
from talk2face.errors import UserError


def test_eyeglasses_regenerate_the_eye_rows_only():
    cells = regenerated_cells("Eyeglasses", (8, 8)).reshape(8, 8)  # region: rows 0.25-0.6 of the face
    assert cells[2:5].all() and not cells[:2].any() and not cells[5:].any()


def test_a_box_in_the_lower_middle_and_an_attribute_without_a_region():
    cells = regenerated_cells("Big_Nose", (8, 8)).reshape(8, 8)  # (0.3, 0.35, 0.7, 0.75)
    assert cells[2:6, 2:6].all() and cells.sum() == 16
    assert regenerated_cells("Gray_Hair", (4, 4)).all()  # hair colour may change anywhere


def test_target_phrases():
    assert target_phrase("Eyeglasses", True) == "glasses" and target_phrase("Eyeglasses", False) == "no glasses"
    assert target_phrase("Smiling", False) == "serious expression" and target_phrase("Bangs", True) == "bangs"
    with pytest.raises(UserError):
        target_phrase("smiling", True)
