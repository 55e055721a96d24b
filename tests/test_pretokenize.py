"""`talk2face tokenize`: schema, codes equal to encoding on the fly, odd images, resuming, errors,
records streamed a shard at a time, the label summary, and 2 CPU processes writing what 1 writes."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import subprocess
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Features, List, Value, load_from_disk
from PIL import Image

import talk2face_train.pretokenize as pretok
import talk2face_train.tokenized as tokenized
from talk2face.cli import main as cli_main
from talk2face.data.images import load_images
from talk2face.data.record import ATTRIBUTES, EditInfo, FaceRecord
from talk2face.data.sources import open_source
from talk2face.errors import UserError
from talk2face.lexicon import WORD
from talk2face.vqgan import VQGAN, VQGANConfig

from conftest import torchrun


def write_source(root: Path, n_train: int = 7, n_test: int = 3) -> Path:
    """An imagefolder with labels, edits (sources relative to the root, as SynFace writes them), and
    images that are not 16x16 RGB (grey, RGBA, 40x30)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        lines = []
        for i in range(n):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            if i == 1:
                image = image.convert("L")
            elif i == 2:
                image = image.convert("RGBA")
            elif i == 3:
                image = image.resize((40, 30))
            image.save(root / split / f"{i}.png")
            edit = EditInfo(source=f"{split}/{(i + 1) % n}.png", instructions=["make them smile"], attribute="Smiling",
                            value=True) if i % 3 == 0 else None
            record = FaceRecord(
                image=f"{i}.png", id=f"{split}-{i}", split=split, source="toy", age=20 + i if i % 2 else None,
                attributes={"Smiling": i % 2 == 0, "Male": True} if i != 4 else None,
                captions=[f"face {i}", "a face"], caption_attributes=[["Smiling"], []], identity=f"p{i}" if i else None,
                edit=edit,
            )
            lines.append(json.dumps(record.to_json()))
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def setup(tmp_path):
    torch.manual_seed(0)
    vq = VQGAN(VQGANConfig(image_size=16, ch=32, ch_mult=[1, 2], num_res_blocks=1, z_channels=8, n_codes=300,
                           embed_dim=4, legacy=False))
    with torch.no_grad():
        vq.quantize.embedding.weight.normal_()
    vq.save_pretrained(tmp_path / "vq")
    return tmp_path / "vq", write_source(tmp_path / "src"), tmp_path


def test_tokenize_schema_codes_and_records(setup):
    vq_dir, src, tmp = setup
    meta = pretok.tokenize(vq_dir, src, tmp / "out", batch_size=4, shard_size=3)
    assert meta["counts"] == {"train": 7, "test": 3} and meta["grid_size"] == [8, 8] and meta["n_codes"] == 300
    data, meta2 = tokenized.load_tokenized(tmp / "out")
    assert meta2 == meta and data["train"].features == tokenized.features((8, 8), 300)
    assert len(list((tmp / "out" / "train").glob("*.arrow"))) == 3  # one Arrow file per shard: readers stream them
    vq = VQGAN.from_pretrained(vq_dir)
    expected = vq.encode(load_images([src / "train" / f"{i}.png" for i in range(7)], 16)).numpy()
    assert str(data["train"].data.schema.field("codes").type) == "list<item: uint16>"  # on disk
    assert np.array_equal(np.array(data["train"]["codes"]), expected)

    rec = tokenized.row_to_record(data["train"][0], split="train")
    assert rec.id == "train-0" and rec.identity is None and rec.age is None and rec.source == "toy"
    assert rec.image.dtype == np.uint16 and np.array_equal(rec.image, expected[0])
    assert rec.attributes == {"Smiling": True, "Male": True}
    assert rec.captions == ["face 0", "a face"] and rec.caption_attributes == [["Smiling"], []]
    assert rec.edit.attribute == "Smiling" and rec.edit.value is True and rec.edit.instructions == ["make them smile"]
    assert np.array_equal(rec.edit.source, expected[1])  # the edit source is train/1.png

    row = data["train"][4]  # no attributes, no edit, age 24
    assert row["attributes"] == [-1] * len(ATTRIBUTES) and row["edit_source_codes"] == [] and row["edit_attribute"] == ""
    rec = tokenized.row_to_record(row)
    assert rec.attributes is None and rec.edit is None and rec.age is None and rec.identity == "p4"
    assert tokenized.row_to_record(data["train"][5]).age == 25


def test_the_folder_says_its_grid_and_attribute_names_to_plain_datasets(setup):
    vq_dir, src, tmp = setup
    pretok.tokenize(vq_dir, src, tmp / "out", batch_size=4, shard_size=3)  # train: 3 shards assembled
    (tmp / "out" / tokenized.META_NAME).unlink()
    for split in load_from_disk(str(tmp / "out")).values():
        assert json.loads(split.features["codes"].feature.id) == {"grid_size": [8, 8], "n_codes": 300}
        assert json.loads(split.features["attributes"].feature.id) == list(ATTRIBUTES)


def test_a_folder_without_that_opens_from_tokenize_json_and_other_attributes_are_refused(setup):
    vq_dir, src, tmp = setup
    meta = pretok.tokenize(vq_dir, src, tmp / "out", batch_size=4)
    old = tmp / "old"  # as tokenized before: plain FEATURES, a tokenize.json without attribute names
    load_from_disk(str(tmp / "out")).cast(tokenized.FEATURES).save_to_disk(str(old))
    (old / tokenized.META_NAME).write_text(json.dumps({k: v for k, v in meta.items() if k != "attributes"}))
    data, old_meta = tokenized.load_tokenized(old)
    assert tokenized.description(data["train"]) == {} and old_meta == meta
    other = tmp / "other"  # a version whose attribute list differs
    renamed = Features({**tokenized.FEATURES, "attributes": List(Value("int8", id=json.dumps(["Smiling", "Male"])))})
    load_from_disk(str(tmp / "out")).cast(renamed).save_to_disk(str(other))
    (other / tokenized.META_NAME).write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"attribute columns are \['Smiling', 'Male'\], not this version's ATTRIBUTES"):
        tokenized.load_tokenized(other)


def test_tokenize_resumes_after_interruption(setup, monkeypatch):
    vq_dir, src, tmp = setup
    pretok.tokenize(vq_dir, src, tmp / "straight", batch_size=2, shard_size=3)
    real = pretok.encode_records
    calls = []

    def interrupted(*args):
        calls.append(len(args[2]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(pretok, "encode_records", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    assert not (tmp / "out").exists() and (tmp / "out.partial" / "train" / "shard-00000").exists()
    calls.clear()
    monkeypatch.setattr(pretok, "encode_records", lambda *a: calls.append(len(a[2])) or real(*a))
    pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    assert calls == [3, 1, 3]  # train shards 2 and 3, test shard 1: shard 1 was not redone
    assert not (tmp / "out.partial").exists()
    a, meta_a = tokenized.load_tokenized(tmp / "straight")
    b, meta_b = tokenized.load_tokenized(tmp / "out")
    assert meta_b == meta_a  # the label summary too: the finished shard kept its own
    for split in ("train", "test"):
        assert a[split].to_list() == b[split].to_list()


def killed_after_one_shard(monkeypatch, *args, **kwargs) -> None:
    """`pretok.tokenize(*args, **kwargs)`, killed (a KeyboardInterrupt) once it has written one shard."""
    real = pretok.encode_records

    def kill(*args):
        raise KeyboardInterrupt

    def one_shard(*args):
        monkeypatch.setattr(pretok, "encode_records", kill)
        return real(*args)

    monkeypatch.setattr(pretok, "encode_records", one_shard)
    with pytest.raises(KeyboardInterrupt):
        pretok.tokenize(*args, **kwargs)
    monkeypatch.setattr(pretok, "encode_records", real)


def test_a_source_edited_after_a_kill_is_refused_not_mixed(setup, monkeypatch):
    vq_dir, src, tmp = setup
    killed_after_one_shard(monkeypatch, vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    meta = src / "train" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"face 5"', '"face five"'))  # a relabelled record
    with pytest.raises(UserError, match=r"changed since the unfinished run in .*out.partial began"):
        pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    meta.write_text(meta.read_text().replace('"face five"', '"face 5"'))
    Image.new("RGB", (16, 16)).save(src / "train" / "6.png")  # a replaced image
    with pytest.raises(UserError, match="changed since the unfinished run"):
        pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    assert not (tmp / "out").exists()


def test_a_second_run_into_the_same_out_is_refused(setup, capsys):
    vq_dir, src, tmp = setup
    with (tmp / "out.lock").open("w") as held:  # as a running tokenize holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli_main(["tokenize", "--vqgan", str(vq_dir), "--data", str(src), "--out", str(tmp / "out")]) == 2
        err = capsys.readouterr().err
        assert "another `talk2face tokenize` is writing" in err and "out.lock" in err and "Traceback" not in err
        assert not (tmp / "out.partial").exists()
    pretok.tokenize(vq_dir, src, tmp / "out", batch_size=4)  # once it is released
    assert (tmp / "out").is_dir() and not (tmp / "out.lock").exists()


def test_records_stream_one_shard_at_a_time(setup, monkeypatch):
    vq_dir, src, tmp = setup
    source = open_source(src)
    taken, alive = [], []

    def read(split, stats):  # the source's own reader, counting the records still alive as each is taken
        for record in source.read(split, stats):
            taken.append(weakref.ref(record))
            alive.append(sum(r() is not None for r in taken))
            yield record

    monkeypatch.setattr(pretok, "open_source", lambda data: dataclasses.replace(source, read=read))
    pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    assert max(alive) == 3  # one shard's records at a time; a list of a split would hold all 7 of train
    assert len(taken) == 2 * 10  # a survey pass and an encoding pass over the 7 + 3 records


def test_the_label_summary_is_what_a_scan_of_the_rows_gives(setup, monkeypatch):
    vq_dir, src, tmp = setup
    killed_after_one_shard(monkeypatch, vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    (tmp / "out.partial" / "train" / "shard-00000" / pretok.SHARD_LABELS).unlink()  # as an older version wrote it
    meta = pretok.tokenize(vq_dir, src, tmp / "out", batch_size=2, shard_size=3)
    data, _ = tokenized.load_tokenized(tmp / "out")
    for split, rows in data.items():
        records = [tokenized.row_to_record(row) for row in rows]
        scan = {label: sum(r.has(label) for r in records) for label in ("age", "attributes", "captions", "edit")}
        scan["attributes_known"] = [a for a in ATTRIBUTES if any(a in (r.attributes or {}) for r in records)]
        scan["caption_words"] = sorted({w.lower() for r in records for c in r.captions or [] for w in WORD.findall(c)})
        assert tokenized.label_summary(meta, split) == scan, split
    assert tokenized.label_summary(meta, "train") == {"age": 3, "attributes": 6, "captions": 7, "edit": 3,
                                                      "attributes_known": ["Male", "Smiling"], "caption_words": ["a", "face"]}
    assert meta["edits"] == {"train": 3, "test": 1}
    assert tokenized.label_summary({k: v for k, v in meta.items() if k != "labels"}, "train") is None  # tokenized before
    with pytest.raises(UserError, match=r"no split 'validation' in this tokenized folder \(it has \['test', 'train'\]\)"):
        tokenized.label_summary(meta, "validation")


def tokenize_on(processes: int, vq_dir: Path, src: Path, out: Path) -> subprocess.CompletedProcess:
    """`python -m talk2face_train.pretokenize` on `processes` CPU processes (torchrun), 2 records a shard."""
    return torchrun(processes, "-m", "talk2face_train.pretokenize", "--vqgan", str(vq_dir), "--data", str(src),
                    "--out", str(out), "--batch-size", "2", "--shard-size", "2", "--device", "cpu")


def test_two_cpu_processes_write_the_rows_of_one(setup):
    vq_dir, src, tmp = setup
    pretok.tokenize(vq_dir, src, tmp / "one", batch_size=2, shard_size=2)
    done = tokenize_on(2, vq_dir, src, tmp / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    one, meta_one = tokenized.load_tokenized(tmp / "one")
    two, meta_two = tokenized.load_tokenized(tmp / "two")
    assert meta_two == meta_one
    for split in ("train", "test"):
        assert two[split].to_list() == one[split].to_list()  # ids, codes, labels, in order
    # the main process encoded its 6 of the 10 images (train shards 0 and 2, test shard 0); process 1 the rest
    assert "| 6/6 [" in done.stderr and "/10 [" not in done.stderr
    assert len(done.stdout.strip().splitlines()) == 1  # one result line, not one per process
    assert not (tmp / "two.partial").exists() and not (tmp / "two.lock").exists()


def test_two_processes_finish_a_one_process_run_and_a_held_lock_stops_them_both(setup, monkeypatch):
    vq_dir, src, tmp = setup
    pretok.tokenize(vq_dir, src, tmp / "straight", batch_size=2, shard_size=2)
    killed_after_one_shard(monkeypatch, vq_dir, src, tmp / "out", batch_size=2, shard_size=2)
    with (tmp / "out.lock").open("w") as held:  # as another run's main process holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = tokenize_on(2, vq_dir, src, tmp / "out")
    # the main process found the lock held and told process 1, which wrote nothing either
    assert refused.returncode != 0 and "another `talk2face tokenize` is writing" in refused.stderr
    assert sorted(p.name for p in (tmp / "out.partial").rglob("shard-*")) == ["shard-00000"]
    done = tokenize_on(2, vq_dir, src, tmp / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 2/6 [" in done.stderr  # the main process's bar began past train shard 0, written by the 1-process run
    straight, meta_straight = tokenized.load_tokenized(tmp / "straight")
    out, meta_out = tokenized.load_tokenized(tmp / "out")
    assert meta_out == meta_straight
    for split in ("train", "test"):
        assert out[split].to_list() == straight[split].to_list()


def test_tokenize_errors(setup):
    vq_dir, src, tmp = setup
    (src / "train" / "5.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"train/5\.png"):
        pretok.tokenize(vq_dir, src, tmp / "out", shard_size=100)
    with pytest.raises(UserError, match="other settings"):
        pretok.tokenize(vq_dir, src, tmp / "out", shard_size=50)
    (tmp / "exists").mkdir()
    with pytest.raises(UserError, match="already exists"):
        pretok.tokenize(vq_dir, src, tmp / "exists")
    with pytest.raises(UserError, match="not a tokenized data folder"):
        tokenized.load_tokenized(tmp / "exists")


def test_cli(setup, capsys):
    vq_dir, src, tmp = setup
    assert cli_main(["tokenize", "--vqgan", str(vq_dir), "--data", str(src), "--out", str(tmp / "o"), "--batch-size", "5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["counts"] == {"train": 7, "test": 3}
    assert cli_main(["tokenize", "--vqgan", str(tmp / "nope"), "--data", str(src), "--out", str(tmp / "o2")]) == 2
    assert "not a VQGAN folder" in capsys.readouterr().err


def test_16_bit_grayscale_keeps_its_tones_and_exif_rotation_is_applied(tmp_path):
    from PIL import Image

    from talk2face.data.images import open_image

    gray = np.full((4, 6), 32768, dtype=np.uint16)  # mid-gray in 16 bits
    Image.fromarray(gray).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    assert np.asarray(open_image(tmp_path / "gray16.png"))[0, 0].tolist() == [128, 128, 128]  # not white

    photo = Image.new("RGB", (24, 16), "white")
    photo.paste((255, 0, 0), (0, 0, 8, 8))  # a red top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90 degrees clockwise
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    opened = open_image(tmp_path / "phone.jpg")
    assert opened.size == (16, 24)  # portrait, as shot
    assert np.asarray(opened)[0, -1, 0] > 200 and np.asarray(opened)[0, -1, 1] < 80  # the red corner moved to top right
