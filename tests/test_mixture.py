"""Mixture files: parsing, validation with clear errors, and `data inspect` on a mixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from talk2face.cli import main
from talk2face.data.mixture import load_mixture
from talk2face.data.record import TASKS
from talk2face.errors import UserError


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A folder with a tiny UTKFace copy + its source YAML, and a captioned imagefolder."""
    for name in ("25_0_2_20170116174525125.jpg.chip.jpg", "61_1_0_20170109150557335.jpg.chip.jpg"):
        path = tmp_path / "utk" / "UTKFace" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(path, "JPEG")
    (tmp_path / "utkface.yaml").write_text("type: utkface\nroot: utk\nsplit_ratios: [1.0, 0.0, 0.0]\n")
    folder = tmp_path / "captioned" / "train"
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(folder / "a.png")
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "captions": ["a man"]}) + "\n")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_mixture_resolves_sources_weights_and_tasks(data: Path) -> None:
    spec = write(data / "mix.yaml", """
sources:
  - {source: captioned, weight: 3, tasks: [caption, text_to_face]}
  - {source: utkface.yaml, weight: 1.0, tasks: [age]}
  - source: {type: utkface, root: utk}
    name: utk-inline
    tasks: [attributes]
""")
    mix = load_mixture(spec)
    assert [s.name for s in mix.sources] == ["captioned", "utkface", "utk-inline"]
    assert [s.weight for s in mix.sources] == [3.0, 1.0, 1.0]  # weight defaults to 1
    assert mix.probabilities() == pytest.approx([0.6, 0.2, 0.2])
    assert mix.sources[1].source.root == (data / "utk").resolve()
    ages = sorted(r.age for r in mix.sources[1].source.records("train"))
    assert ages == [25, 61]
    assert [r.captions for r in mix.sources[0].source.records("train")] == [["a man"]]


@pytest.mark.parametrize("entry, message", [
    ("{source: utkface.yaml, tasks: [age, gender]}", r"sources\[0\].tasks: unknown task\(s\) \['gender'\]"),
    ("{source: utkface.yaml, tasks: []}", r"sources\[0\].tasks: expected a non-empty list"),
    ("{source: utkface.yaml, tasks: [age, age]}", r"sources\[0\].tasks: a task is listed twice"),
    ("{source: utkface.yaml}", r"sources\[0\]: missing key 'tasks'"),
    ("{tasks: [age]}", r"sources\[0\]: missing key 'source'"),
    ("{source: utkface.yaml, tasks: [age], weight: -1}", r"sources\[0\].weight: expected a positive number"),
    ("{source: utkface.yaml, tasks: [age], weight: .nan}", r"sources\[0\].weight: expected a positive number"),
    ("{source: utkface.yaml, tasks: [age], wieght: 2}", r"sources\[0\]: unknown key\(s\) \['wieght'\]"),
    ("{source: nope.yaml, tasks: [age]}", "data source not found: .*nope.yaml"),
    ("{source: {type: utkface}, tasks: [age]}", r"sources\[0\].source: missing key 'root'"),
    ("{source: {type: utkface, root: utk, colour: red}, tasks: [age]}", r"sources\[0\].source.*unknown key\(s\) \['colour'\]"),
    ("just-a-string", r"sources\[0\]: expected a mapping"),
])
def test_bad_entries_name_file_entry_and_key(data: Path, entry: str, message: str) -> None:
    spec = write(data / "mix.yaml", f"sources:\n  - {entry}\n")
    with pytest.raises(UserError, match=message) as err:
        load_mixture(spec)
    assert "mix.yaml" in str(err.value)


def test_bad_mixture_files(data: Path) -> None:
    with pytest.raises(UserError, match="mixture file not found"):
        load_mixture(data / "none.yaml")
    with pytest.raises(UserError, match="single key 'sources'"):
        load_mixture(write(data / "a.yaml", "sources: []\nseed: 1\n"))
    with pytest.raises(UserError, match="'sources' must be a non-empty list"):
        load_mixture(write(data / "b.yaml", "sources: []\n"))
    with pytest.raises(UserError, match=r"source name\(s\) \['utkface'\] appear twice"):
        load_mixture(write(data / "c.yaml", "sources:\n  - {source: utkface.yaml, tasks: [age]}\n"
                                            "  - {source: utkface.yaml, tasks: [attributes]}\n"))
    with pytest.raises(UserError, match="not valid YAML"):
        load_mixture(write(data / "d.yaml", "sources: [\n"))


def test_task_names_are_the_documented_six() -> None:
    assert TASKS == ("text_to_face", "caption", "age", "attributes", "edit", "edit_plan")


def test_inspect_mixture_warns_about_tasks_without_labels(data: Path, capsys) -> None:
    spec = write(data / "mix.yaml", "sources:\n"
                 "  - {source: captioned, weight: 1, tasks: [caption]}\n"
                 "  - {source: utkface.yaml, weight: 3, tasks: [age, caption]}\n")
    assert main(["data", "inspect", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "captioned        weight 1 (p=0.250)  tasks: caption" in out
    assert "utkface          weight 3 (p=0.750)  tasks: age, caption" in out
    assert "[train] 2 records" in out and "20-29: 1, 60-69: 1" in out
    assert "WARNING: utkface lists task 'caption' but none of its records has 'captions'" in out
    assert "WARNING: captioned" not in out
