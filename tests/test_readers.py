"""Each reader on tiny fixtures written in the exact upstream formats, good and bad."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from PIL import Image

from talk2face.cli import main
from talk2face.data.captions import read_captions
from talk2face.data.record import ATTRIBUTES, SPLITS
from talk2face.data.sources import DataWarning, hash_split, open_source, safe_relpath
from talk2face.data.utkface import parse_name
from talk2face.errors import UserError


def write_image(path: Path, color: tuple[int, int, int] = (200, 150, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 10), color).save(path, "JPEG")


def attr_line(name: str, positives: set[str]) -> str:
    """A row as CelebA prints it: the file name, then each value right-aligned in 2 columns."""
    return name + " " + " ".join(f"{1 if a in positives else -1:2d}" for a in ATTRIBUTES)


def write_attr_file(path: Path, rows: dict[str, set[str]]) -> None:
    # Line 2 of the real file ends with a trailing space; keep it to test that quirk.
    lines = [str(len(rows)), " ".join(ATTRIBUTES) + " "] + [attr_line(n, p) for n, p in rows.items()]
    path.write_text("\n".join(lines) + "\n")


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def read_all(source) -> dict[str, list]:
    return {split: list(source.records(split)) for split in SPLITS}


# ---------------------------------------------------------------------------- CelebA

CELEBA_ROWS = {
    "000001.jpg": {"Smiling", "Young", "Wearing_Lipstick"},
    "000002.jpg": {"Male", "Eyeglasses"},
    "000003.jpg": {"Male", "No_Beard", "Young"},
    "000004.jpg": {"Blond_Hair"},
}


@pytest.fixture
def celeba(tmp_path: Path) -> Path:
    root = tmp_path / "celeba"
    for name in CELEBA_ROWS:
        write_image(root / "img_align_celeba" / name)
    write_attr_file(root / "list_attr_celeba.txt", CELEBA_ROWS)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    (root / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 8692\n000004.jpg 5805\n")
    return root


def test_celeba_reads_attributes_splits_and_identities(celeba: Path, tmp_path: Path) -> None:
    spec = write_yaml(tmp_path / "celeba.yaml", f"type: celeba\nroot: {celeba}\nidentities: identity_CelebA.txt\n")
    source = open_source(spec)
    records = read_all(source)
    assert [r.id for r in records["train"]] == ["000001.jpg", "000002.jpg"]
    assert [r.id for r in records["validation"]] == ["000003.jpg"]
    assert [r.id for r in records["test"]] == ["000004.jpg"]
    first = records["train"][0]
    assert first.image == "img_align_celeba/000001.jpg" and source.image_path(first).is_file()
    assert len(first.attributes) == 40
    assert {n for n, v in first.attributes.items() if v} == CELEBA_ROWS["000001.jpg"]
    assert first.identity == "celeba/2880" and first.source == "celeba"
    assert first.age is None and first.captions is None


def test_celeba_root_relative_to_yaml(celeba: Path) -> None:
    spec = write_yaml(celeba.parent / "sources.yaml", "type: celeba\nroot: celeba\nname: faces\n")
    source = open_source(spec)
    assert source.root == celeba.resolve() and source.name == "faces"
    assert len(list(source.records("train"))) == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda lines: lines.__setitem__(3, lines[3].rsplit(" ", 1)[0]), "list_attr_celeba.txt:4: expected a file name and 40"),
    (lambda lines: lines.__setitem__(2, lines[2].replace("-1", " 0", 1)), "list_attr_celeba.txt:3: attribute values must be 1 or -1"),
    (lambda lines: lines.__setitem__(0, "five"), "list_attr_celeba.txt:1: expected the number of rows"),
    (lambda lines: lines.__setitem__(0, "7"), "line 1 says 7 rows but the file has 4"),
    (lambda lines: lines.__setitem__(1, lines[1].replace("Smiling", "Smilling")), "list_attr_celeba.txt:2: expected CelebA attribute names"),
])
def test_celeba_malformed_attribute_file_names_file_and_line(celeba: Path, mutate, message: str) -> None:
    path = celeba / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    mutate(lines)
    path.write_text("\n".join(lines) + "\n")
    spec = write_yaml(celeba / "s.yaml", "type: celeba\nroot: .\n")
    with pytest.raises(UserError, match=message):
        read_all(open_source(spec))


def test_celeba_malformed_partition_line(celeba: Path) -> None:
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg\n")
    with pytest.raises(UserError, match=r"list_eval_partition.txt:2: expected 2 whitespace-separated fields"):
        open_source(write_yaml(celeba / "s.yaml", "type: celeba\nroot: .\n"))
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 5\n")
    with pytest.raises(UserError, match="partition of 000002.jpg must be 0, 1 or 2"):
        open_source(celeba / "s.yaml")


def test_missing_image_is_skipped_and_counted_or_raises(celeba: Path) -> None:
    (celeba / "img_align_celeba" / "000002.jpg").unlink()
    source = open_source(write_yaml(celeba / "s.yaml", "type: celeba\nroot: .\n"))
    with pytest.warns(DataWarning, match=r"1 missing image \(e.g. img_align_celeba/000002.jpg\)"):
        train = list(source.records("train"))
    assert [r.id for r in train] == ["000001.jpg"]
    assert source.stats["train"].skipped == {"missing image": 1}
    strict = open_source(write_yaml(celeba / "strict.yaml", "type: celeba\nroot: .\non_missing: raise\n"))
    with pytest.raises(UserError, match=r"list_attr_celeba.txt:4: missing image: .*000002.jpg"):
        list(strict.records("train"))


def test_unreadable_image_is_caught_with_verify_images(celeba: Path) -> None:
    (celeba / "img_align_celeba" / "000001.jpg").write_bytes(b"not a jpeg at all")
    lenient = open_source(write_yaml(celeba / "a.yaml", "type: celeba\nroot: .\n"))
    assert len(list(lenient.records("train"))) == 2  # existence only: cheap, the default
    checked = open_source(write_yaml(celeba / "b.yaml", "type: celeba\nroot: .\nverify_images: true\n"))
    with pytest.warns(DataWarning, match="unreadable image"):
        assert [r.id for r in checked.records("train")] == ["000002.jpg"]


def test_unknown_option_names_key_and_file(celeba: Path) -> None:
    spec = write_yaml(celeba / "typo.yaml", "type: celeba\nroot: .\npartiton: list_eval_partition.txt\n")
    with pytest.raises(UserError, match=r"typo.yaml.*unknown key\(s\) \['partiton'\]"):
        open_source(spec)
    with pytest.raises(UserError, match=r"bad.yaml.*on_missing must be 'skip' or 'raise'"):
        open_source(write_yaml(celeba / "bad.yaml", "type: celeba\nroot: .\non_missing: ignore\n"))
    with pytest.raises(UserError, match=r"t.yaml: 'type' must be one of"):
        open_source(write_yaml(celeba / "t.yaml", "type: celebb\nroot: .\n"))
    with pytest.raises(UserError, match=r"partition: file not found.*partition: null"):
        open_source(write_yaml(celeba / "p.yaml", "type: celeba\nroot: .\npartition: nope.txt\n"))


# ---------------------------------------------------------------------------- CelebA-HQ

HQ_TO_CELEBA = {0: "000003.jpg", 1: "000001.jpg", 2: "000004.jpg", 3: "000002.jpg"}


@pytest.fixture
def celebahq(tmp_path: Path, celeba: Path) -> Path:
    root = tmp_path / "CelebAMask-HQ"
    for idx in HQ_TO_CELEBA:
        write_image(root / "CelebA-HQ-img" / f"{idx}.jpg")
    rows = [f"{idx:<12}{int(f[:-4]) - 1:<12}{f:<12}" for idx, f in HQ_TO_CELEBA.items()]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("idx         orig_idx    orig_file   \n" + "\n".join(rows) + "\n")
    write_attr_file(root / "CelebAMask-HQ-attribute-anno.txt",
                    {f"{idx}.jpg": CELEBA_ROWS[f] for idx, f in HQ_TO_CELEBA.items()})
    return root


def test_celebahq_attributes_and_celeba_partition_through_mapping(celebahq: Path, celeba: Path) -> None:
    spec = write_yaml(celebahq / "hq.yaml", "type: celebahq\nroot: .\n"
                      f"celeba_partition: {celeba}/list_eval_partition.txt\n"
                      f"celeba_identities: {celeba}/identity_CelebA.txt\n")
    records = read_all(open_source(spec))
    # HQ 1 -> 000001 (train), 3 -> 000002 (train), 0 -> 000003 (val), 2 -> 000004 (test)
    assert [r.id for r in records["train"]] == ["1", "3"]
    assert [r.id for r in records["validation"]] == ["0"]
    assert [r.id for r in records["test"]] == ["2"]
    zero = records["validation"][0]
    assert zero.image == "CelebA-HQ-img/0.jpg"
    assert {n for n, v in zero.attributes.items() if v} == CELEBA_ROWS["000003.jpg"]
    assert zero.extra == {"celeba_file": "000003.jpg"} and zero.identity == "celeba/8692"


def test_celebahq_celeba_attributes_through_mapping(celebahq: Path, celeba: Path) -> None:
    spec = write_yaml(celebahq / "hq.yaml", "type: celebahq\nroot: .\nattributes: null\n"
                      f"celeba_attributes: {celeba}/list_attr_celeba.txt\n")
    records = [r for s in SPLITS for r in open_source(spec).records(s)]
    assert len(records) == 4
    for r in records:
        assert {n for n, v in r.attributes.items() if v} == CELEBA_ROWS[HQ_TO_CELEBA[int(r.id)]]


def test_celebahq_hash_split_is_deterministic_and_complete(celebahq: Path) -> None:
    spec = write_yaml(celebahq / "hq.yaml", "type: celebahq\nroot: .\nsplit_ratios: [0.5, 0.25, 0.25]\n")
    first, second = read_all(open_source(spec)), read_all(open_source(spec))
    assert {s: [r.id for r in rs] for s, rs in first.items()} == {s: [r.id for r in rs] for s, rs in second.items()}
    assert sorted(r.id for rs in first.values() for r in rs) == ["0", "1", "2", "3"]
    for split, rs in first.items():
        assert all(hash_split(f"celebahq/{r.id}", [0.5, 0.25, 0.25]) == split for r in rs)


def test_celebahq_bad_mapping_and_options(celebahq: Path) -> None:
    mapping = celebahq / "CelebA-HQ-to-CelebA-mapping.txt"
    lines = mapping.read_text().splitlines()
    mapping.write_text("\n".join(lines[:2] + ["2 x 000004.jpg"]) + "\n")
    spec = write_yaml(celebahq / "hq.yaml", "type: celebahq\nroot: .\n")
    with pytest.raises(UserError, match=r"CelebA-HQ-to-CelebA-mapping.txt:3: expected 'idx orig_idx orig_file'"):
        open_source(spec)
    mapping.write_text("index orig\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(UserError, match=r"mapping.txt:1: expected the header"):
        open_source(spec)
    with pytest.raises(UserError, match=r"split_ratios must be three"):
        open_source(write_yaml(celebahq / "r.yaml", "type: celebahq\nroot: .\nsplit_ratios: [0.5, 0.6, 0.1]\n"))


# ---------------------------------------------------------------------------- caption sets


@pytest.fixture
def mmceleba(celebahq: Path) -> Path:
    """Multi-Modal-CelebA-HQ's text folder next to the CelebA-HQ images."""
    folder = celebahq / "text" / "celeba-caption"
    folder.mkdir(parents=True)
    for idx in HQ_TO_CELEBA:
        lines = [f"The person number {idx} has caption {k}." for k in range(10)]
        (folder / f"{idx}.txt").write_text("\n".join(lines) + "\n")
    (celebahq / "train.txt").write_text("0\n1.jpg\n2\n")
    (celebahq / "test.txt").write_text("3\n")
    return celebahq


def test_mmcelebahq_captions_attributes_and_plain_text_splits(mmceleba: Path) -> None:
    spec = write_yaml(mmceleba / "mm.yaml", "type: mmcelebahq\nroot: .\n"
                      "split_files: {train: train.txt, test: test.txt}\n")
    records = read_all(open_source(spec))
    listed_train = sorted(r.id for r in records["train"] + records["validation"])  # validation: a hashed share of train
    assert listed_train == ["0", "1", "2"] and [r.id for r in records["test"]] == ["3"]
    three = records["test"][0]
    assert len(three.captions) == 10 and three.captions[4] == "The person number 3 has caption 4."
    assert {n for n, v in three.attributes.items() if v} == CELEBA_ROWS["000002.jpg"]
    assert three.source == "mmcelebahq"


def test_mmcelebahq_unlisted_empty_and_bad_split_files(mmceleba: Path) -> None:
    (mmceleba / "train.txt").write_text("0\n1\n")  # 2 is in no list
    (mmceleba / "text" / "celeba-caption" / "1.txt").write_text("\n  \n")
    source = open_source(write_yaml(mmceleba / "mm.yaml", "type: mmcelebahq\nroot: .\n"
                                    "split_files: {train: train.txt, test: test.txt}\n"))
    with pytest.warns(DataWarning):
        assert [r.id for r in source.records("train")] == ["0"]
    assert source.stats["train"].skipped == {"image in no split list": 1, "empty caption file": 1}
    (mmceleba / "train.txt").write_text("0\n3\n")
    with pytest.raises(UserError, match=r"test.txt:1: image 3 is also listed for train"):
        open_source(mmceleba / "mm.yaml")
    (mmceleba / "train.txt").write_text("0\nzero.jpg\n")
    with pytest.raises(UserError, match=r"train.txt:2: expected a CelebA-HQ image index"):
        open_source(mmceleba / "mm.yaml")
    with pytest.raises(UserError, match=r"split_files: unknown split\(s\) \['val'\]"):
        open_source(write_yaml(mmceleba / "v.yaml", "type: mmcelebahq\nroot: .\nsplit_files: {val: test.txt}\n"))


class _Hostile:
    """Pickles as a call of os.system: loading it with pickle.load would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_mmcelebahq_official_pickled_split_is_used_and_said(mmceleba: Path, capsys) -> None:
    for split, names in (("train", ["0", "1.jpg", "2"]), ("test", ["3"])):
        (mmceleba / split).mkdir()
        (mmceleba / split / "filenames.pickle").write_bytes(pickle.dumps(names, protocol=2))
    spec = write_yaml(mmceleba / "mm.yaml", "type: mmcelebahq\nroot: .\n")
    records = read_all(open_source(spec))
    assert sorted(r.id for r in records["train"] + records["validation"]) == ["0", "1", "2"]
    assert [r.id for r in records["test"]] == ["3"]
    assert main(["data", "inspect", str(spec)]) == 0
    assert ("split rule: split_files (train: train/filenames.pickle, test: test/filenames.pickle; validation: 5.3% "
            "of the train list") in capsys.readouterr().out
    (mmceleba / "test" / "filenames.pickle").unlink()
    (mmceleba / "train" / "filenames.pickle").unlink()
    assert main(["data", "inspect", str(spec)]) == 0
    assert "split rule: a SHA-1 hash of the HQ index" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (lambda marker: _Hostile(marker), r"refused.*global posix.system.*nothing in it ran"),
    (lambda marker: {"0": "train"}, r"expected a pickled list of file names, got dict"),
    (lambda marker: [0, 1], r"expected a pickled list of file names, got list"),
])
def test_mmcelebahq_pickle_that_is_not_a_name_list_is_refused(mmceleba: Path, tmp_path: Path, content, message) -> None:
    marker = tmp_path / "ran"
    (mmceleba / "train").mkdir()
    (mmceleba / "train" / "filenames.pickle").write_bytes(pickle.dumps(content(marker)))
    with pytest.raises(UserError, match=r"train/filenames.pickle: " + message):
        open_source(write_yaml(mmceleba / "mm.yaml", "type: mmcelebahq\nroot: .\n"))
    assert not marker.exists()


def test_caption_text_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "7.txt"
    path.write_bytes("She has \ufffd\ufffdbig lips.\n\n  He wears  glasses. \n".encode() + b"bad \xff byte\n")
    assert read_captions(path) == ["She has big lips.", "He wears glasses.", "bad byte"]


def test_celebatext_layout(celebahq: Path, tmp_path: Path) -> None:
    root = tmp_path / "CelebAText-HQ"
    for idx in (0, 2):
        write_image(root / "CelebAimg" / f"{idx}.jpg")
        (root / "captions").mkdir(parents=True, exist_ok=True)
        (root / "captions" / f"{idx}.txt").write_text("A woman with long hair.\nShe is smiling.\n")
    (root / "data_flist").mkdir()
    (root / "data_flist" / "train.flist").write_text("../data/CelebAText-HQ/0.jpg\n")
    (root / "data_flist" / "test.flist").write_text("../data/CelebAText-HQ/2.jpg\n")
    (root / "CelebAMask-HQ-attribute-anno.txt").write_bytes((celebahq / "CelebAMask-HQ-attribute-anno.txt").read_bytes())
    records = read_all(open_source(write_yaml(root / "t.yaml", "type: celebatext\nroot: .\n")))
    assert [r.id for r in records["train"]] == ["0"] and [r.id for r in records["test"]] == ["2"]
    assert records["train"][0].captions == ["A woman with long hair.", "She is smiling."]
    assert records["train"][0].image == "CelebAimg/0.jpg" and records["train"][0].attributes["Young"]


# ---------------------------------------------------------------------------- UTKFace

UTK_NAMES = ["25_0_2_20170116174525125.jpg.chip.jpg", "1_1_0_20170109191409424.jpg.chip.jpg",
             "80_1_1_20170110182345661.jpg.chip.jpg", "33_0_4_20170117193206215.jpg.chip.jpg",
             "47_0_3_20170119180112634.jpg"]
UTK_MALFORMED = ["39_1_20170116174525125.jpg.chip.jpg", "61_3_1_20170109150557335.jpg.chip.jpg"]


@pytest.fixture
def utkface(tmp_path: Path) -> Path:
    root = tmp_path / "utk"
    for name in UTK_NAMES + UTK_MALFORMED:
        write_image(root / "UTKFace" / name)
    (root / "UTKFace" / "README.txt").write_text("not an image")
    return root


def test_utkface_parses_names_and_skips_malformed(utkface: Path) -> None:
    source = open_source(write_yaml(utkface / "u.yaml", "type: utkface\nroot: .\n"))
    with pytest.warns(DataWarning, match="2 malformed name"):
        records = read_all(source)
    everything = {r.id: r for rs in records.values() for r in rs}
    assert sorted(everything) == sorted(UTK_NAMES)
    r = everything["25_0_2_20170116174525125.jpg.chip.jpg"]
    assert (r.age, r.attributes, r.extra) == (25, {"Male": True}, {"race": "Asian"})
    r = everything["80_1_1_20170110182345661.jpg.chip.jpg"]
    assert (r.age, r.attributes["Male"], r.extra["race"]) == (80, False, "Black")
    assert everything["47_0_3_20170119180112634.jpg"].extra["race"] == "Indian"
    for split, rs in records.items():
        assert all(hash_split(r.id, [0.8, 0.1, 0.1]) == split for r in rs)
    assert source.stats["test"].skipped == {"malformed name": 2}


def test_utkface_malformed_raise(utkface: Path) -> None:
    source = open_source(write_yaml(utkface / "u.yaml", "type: utkface\nroot: .\non_malformed: raise\n"))
    with pytest.raises(UserError, match=r"39_1_20170116174525125.jpg.chip.jpg: expected a name like age_gender_race"):
        list(source.records("train"))


def test_parse_name_rules() -> None:
    assert parse_name("116_1_0_20170120134921760.jpg.chip.jpg") == (116, False, "White")
    assert parse_name("26_1_4_20170117154823548.jpg.chip.jpg") == (26, False, "Others")
    for bad in ["39_1_20170116174525125.jpg.chip.jpg", "200_0_0_20170116174525125.jpg.chip.jpg",
                "25_2_0_1.jpg", "25_0_5_1.jpg", "a_0_0_1.jpg", "25_0_0_1.png"]:
        assert parse_name(bad) is None, bad


def test_hash_split_matches_ratios() -> None:
    names = [f"{i}_0_0_{i * 7919}.jpg.chip.jpg" for i in range(5000)]
    counts = {s: 0 for s in SPLITS}
    for n in names:
        counts[hash_split(n, [0.8, 0.1, 0.1])] += 1
    assert abs(counts["train"] / 5000 - 0.8) < 0.02
    assert abs(counts["validation"] / 5000 - 0.1) < 0.015 and abs(counts["test"] / 5000 - 0.1) < 0.015


# ---------------------------------------------------------------------------- imagefolder


def write_metadata(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_imagefolder_per_split_with_edit_source(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    write_image(root / "train" / "a.png")
    write_image(root / "train" / "b.png")
    write_metadata(root / "train" / "metadata.jsonl", [
        {"file_name": "a.png", "id": "a", "split": "train", "age": 30, "captions": ["a face"]},
        {"file_name": "b.png", "id": "b", "split": "train", "attributes": {"Smiling": True},
         "edit": {"source": "train/a.png", "instructions": ["make her smile"], "attribute": "Smiling", "value": True}},
        {"file_name": "b.png", "id": "c", "split": "train",
         "edit": {"source": "train/gone.png", "instructions": ["add glasses"], "attribute": "Eyeglasses", "value": True}},
    ])
    source = open_source(root)
    with pytest.warns(DataWarning, match=r"1 missing image \(e.g. train/gone.png\)"):
        a, b = source.records("train")  # c's edit source is missing: skipped
    assert a.image == "train/a.png" and a.age == 30 and a.captions == ["a face"]
    assert b.edit.source == "train/a.png" and (source.root / b.edit.source).is_file()
    assert list(source.records("test")) == []


def test_imagefolder_top_level_metadata_by_split_field(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for name in ("x.jpg", "sub/y.jpg"):
        write_image(root / name)
    write_metadata(root / "metadata.jsonl", [
        {"file_name": "x.jpg", "captions": ["someone"]},
        {"file_name": "./sub/y.jpg", "split": "test", "age": 4},
    ])
    source = open_source(root)
    (x,) = source.records("train")
    assert (x.id, x.image) == ("x.jpg", "x.jpg")
    (y,) = source.records("test")
    assert (y.id, y.image, y.age) == ("sub/y.jpg", "sub/y.jpg", 4)


@pytest.mark.parametrize("row, message", [
    ({"file_name": "../secret.png"}, "escapes the data root"),
    ({"file_name": "/etc/passwd"}, "escapes the data root"),
    ({"file_name": "C:/x.png"}, "escapes the data root"),
    ({"file_name": "a/../../b.png"}, "escapes the data root"),
    ({"file_name": "a.png", "edit": {"source": "../../a.png", "instructions": [], "attribute": "Smiling", "value": True}}, r"edit.source.*escapes"),
    ({"id": "a"}, "missing key 'file_name'"),
    ({"file_name": "a.png", "agee": 3}, r"unknown key\(s\) \['agee'\]"),
    ({"file_name": "a.png", "age": "thirty"}, "'age' must be a whole number"),
    ({"file_name": "a.png", "age": -1}, r"'age' must be a whole number of years 0..120 .*-1"),
    ({"file_name": "a.png", "age": 121}, r"0..120 .*121"),
    ({"file_name": "a.png", "age": 3000000000}, r"0..120 .*3000000000"),
    ({"file_name": "a.png", "age": 3e9}, r"0..120 .*3000000000.0"),
    ({"file_name": "a.png", "attributes": {"Smiling": 1}}, "'attributes' must map"),
    ({"file_name": "a.png", "attributes": {"Smilling": True}}, "unknown attribute names"),
    ({"file_name": "a.png", "captions": "a face"}, "'captions' must be a list"),
    ({"file_name": "a.png", "split": "dev"}, "split must be one of"),
    ("{not json", "not a JSON line"),
    ("[1, 2]", "expected a JSON object"),
])
def test_imagefolder_bad_lines_name_file_and_line(tmp_path: Path, row, message: str) -> None:
    root = tmp_path / "bad"
    write_image(root / "train" / "a.png")
    write_metadata(root / "train" / "metadata.jsonl", [{"file_name": "a.png"}, row])
    with pytest.raises(UserError, match=rf"metadata.jsonl:2\b.*{message}"):
        list(open_source(root).records("train"))


def test_imagefolder_from_yaml_with_options(tmp_path: Path) -> None:
    root = tmp_path / "f"
    write_metadata(root / "test" / "metadata.jsonl", [{"file_name": "gone.png"}])
    spec = write_yaml(tmp_path / "f.yaml", "type: imagefolder\nroot: f\nname: mine\non_missing: raise\n")
    source = open_source(spec)
    assert source.name == "mine" and list(source.records("train")) == []
    with pytest.raises(UserError, match=r"test/metadata.jsonl:1: missing image: .*gone.png"):
        list(source.records("test"))
    with pytest.raises(UserError, match=r"f.yaml: root is not a folder"):
        open_source(write_yaml(tmp_path / "f.yaml", "type: imagefolder\nroot: nope\n"))


def test_safe_relpath_normalises() -> None:
    assert safe_relpath("./a//b.png", "x") == "a/b.png"
    assert safe_relpath("a\\b.png", "x") == "a/b.png"


def test_imagefolder_missing_image_and_bad_split(tmp_path: Path) -> None:
    root = tmp_path / "f"
    write_image(root / "train" / "a.png")
    write_metadata(root / "train" / "metadata.jsonl", [{"file_name": "a.png"}, {"file_name": "gone.png"}])
    source = open_source(root)
    with pytest.warns(DataWarning, match="1 missing image"):
        assert [r.id for r in source.records("train")] == ["a.png"]
    with pytest.raises(UserError, match="split must be one of"):
        list(source.records("val"))
    with pytest.raises(UserError, match="data source not found"):
        open_source(tmp_path / "nowhere")


# ---------------------------------------------------------------------------- inspect


def test_inspect_prints_counts_per_split_and_label(utkface: Path, celeba: Path, capsys) -> None:
    spec = write_yaml(celeba / "c.yaml", "type: celeba\nroot: .\n")
    assert main(["data", "inspect", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "[train] 2 records" in out and "[validation] 1 records" in out and "[test] 1 records" in out
    assert "records with: captions 0, age 0, attributes 2, edit 0" in out
    assert "Young" in out and "     1   50%" in out  # Young: 000001 yes, 000002 no
    assert '"id": "000001.jpg"' in out and "Smiling" in out  # the sample record

    spec = write_yaml(utkface / "u.yaml", "type: utkface\nroot: .\n")
    assert main(["data", "inspect", str(spec), "--split", "train", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "age histogram:" in out and "race:" in out and "[validation]" not in out
    assert "skipped 2 malformed name" in out


def test_inspect_reports_user_errors_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["data", "inspect", str(tmp_path / "missing.yaml")]) == 2
    assert "data source not found" in capsys.readouterr().err


def test_a_link_out_of_the_data_root_is_refused(tmp_path: Path, utkface: Path) -> None:
    outside = tmp_path / "elsewhere.jpg"
    write_image(outside)
    root = tmp_path / "linked"
    write_image(root / "train" / "a.png")
    (root / "train" / "b.png").symlink_to(outside)
    (root / "train" / "c.png").symlink_to(root / "train" / "a.png")  # a link that stays inside is fine
    write_metadata(root / "train" / "metadata.jsonl", [{"file_name": "c.png"}, {"file_name": "b.png"}])
    with pytest.raises(UserError, match=r"metadata.jsonl:2: .*b.png is a link to .*elsewhere.jpg, outside the data root"):
        list(open_source(root).records("train"))
    (utkface / "UTKFace" / "30_0_0_20170116174525125.jpg.chip.jpg").symlink_to(outside)
    with pytest.raises(UserError, match=r"30_0_0_.*is a link to .*elsewhere.jpg, outside the data root"):
        open_source(write_yaml(utkface / "u.yaml", "type: utkface\nroot: .\n"))


def test_split_lists_without_validation_keep_a_hashed_share_of_train_for_it(tmp_path: Path) -> None:
    from talk2face.data.celeba import CelebAHQLabels, CelebAHQOptions

    lists = {i: "train" for i in range(2000)} | {i: "test" for i in range(2000, 2100)}
    labels = CelebAHQLabels(tmp_path, CelebAHQOptions(split_files={"train": "t", "test": "s"}), {}, {}, lists, {}, {})
    splits = [labels.split_of(i) for i in range(2100)]
    assert splits[2000:] == ["test"] * 100  # the official test list is never touched
    assert 0.03 < splits[:2000].count("validation") / 2000 < 0.08  # ~5.3%: 0.05 of 0.95
    assert splits == [labels.split_of(i) for i in range(2100)]  # the same on every call and machine
