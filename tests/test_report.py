"""The report writer: every file is there and the Markdown table holds the numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from talk2face.evaluation.report import _PALETTE, attribute_bars, image_grid, markdown_table, write_report


def _results() -> dict:
    return {
        "meta": {"model": "runs/tiny", "data": "data/synface"},
        "age": {
            "metrics": {"model": {"MAE": 3.25, "CS@5": 0.8125}, "mean age (baseline)": {"MAE": 19.5, "CS@5": 0.125}},
            "age_pairs": {"true": [10, 40, 70], "predicted": torch.tensor([12.0, 37.5, 71.0])},
        },
        "attributes": {
            "metrics": {"model": {"mean acc": 0.9731, "balanced acc": 0.9512}, "majority": {"mean acc": 0.7, "balanced acc": 0.5}},
            "per_attribute": {"model": {"Smiling": 0.99, "Eyeglasses": 0.95}, "majority": {"Smiling": 0.6, "Eyeglasses": 0.8}},
        },
        "caption": {"metrics": {"model": {"BLEU-4": 0.4321, "CIDEr-D": 1.2345, "METEOR": float("nan")}}},
        "edit": {"error": "the model was not trained for editing"},
    }


def test_write_report_files_and_numbers(tmp_path):
    samples = torch.rand(6, 3, 16, 16) * 2 - 1
    written = write_report(_results(), tmp_path, images={"text_to_face": samples, "grid": image_grid(samples, 2)})
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "report.json", "report.md", "age_age_scatter.png", "attributes_attribute_accuracy.png",
        "text_to_face.png", "grid.png",
    }
    assert set(written.values()) == {tmp_path / n for n in names}
    md = (tmp_path / "report.md").read_text()
    for number in ("3.2500", "0.8125", "19.50", "0.9731", "0.4321", "1.2345"):
        assert number in md
    assert "| | MAE | CS@5 |" in md and "| model | 3.2500 | 0.8125 |" in md and "| mean age (baseline) | 19.50 |" in md
    assert "Not run: the model was not trained for editing" in md
    assert "![age: predicted vs true age](age_age_scatter.png)" in md
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["age"]["age_pairs"]["predicted"] == [12.0, 37.5, 71.0]
    assert report["caption"]["metrics"]["model"]["METEOR"] is None  # NaN is not JSON
    with Image.open(tmp_path / "age_age_scatter.png") as im:
        assert im.size == (420, 420)


def test_image_grid_layout_and_labels():
    tiles = [Image.new("RGB", (10, 12), (i * 40, 0, 0)) for i in range(5)]
    grid = image_grid(tiles, rows=2)
    assert grid.size == (3 * 12 + 2, 2 * 14 + 2)  # 3 columns, 2 px borders
    assert grid.getpixel((2 + 12 + 1, 3)) == (40, 0, 0)  # second tile in the first row
    labelled = image_grid(tiles, rows=1, labels=["a"] * 5)
    assert labelled.size[1] > 14
    with pytest.raises(ValueError, match="labels"):
        image_grid(tiles, rows=1, labels=["a"])


def test_markdown_table_fills_missing_cells():
    table = markdown_table({"model": {"a": 1.0}, "baseline": {"b": 2}})
    assert table.splitlines() == ["| | a | b |", "|---|---:|---:|", "| model | 1.0000 | – |", "| baseline | – | 2 |"]


def test_attribute_bars_are_as_long_as_their_values():
    image = np.asarray(attribute_bars({"model": {"Smiling": 1.0}, "majority": {"Smiling": 0.5}}))
    lengths = [int((image == colour).all(-1).sum(1).max()) for colour in _PALETTE[:2]]  # longest run per row colour
    assert lengths[0] == pytest.approx(2 * lengths[1], abs=2) and lengths[1] > 100  # 1.0 draws twice 0.5
