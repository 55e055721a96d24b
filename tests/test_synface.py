"""SynFace: labels match pictures, captions are true, splits are clean, output is reproducible."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
from PIL import Image

from talk2face.cli import main
from talk2face.data.record import ATTRIBUTES
from talk2face.data.sources import read_imagefolder
from talk2face.data.synface import (
    SYN_ATTRIBUTES, YOUNG_BELOW, check_consistent, contact_sheet, generate, heldout_prompts,
    make_captions, make_records, render_face, sample_edit, sample_params,
)
from talk2face.data.synface.freestyle import HELDOUT_PHRASES, heldout_prompt_claims
from talk2face.data.synface.params import HAIR_COLORS


def faces(n: int, seed: int = 0):
    return [sample_params(np.random.default_rng([seed, i]), f"t{i}") for i in range(n)]


def pixels(params, size: int = 64) -> np.ndarray:
    return np.asarray(render_face(params, size), dtype=np.int16)  # (H, W, 3)


def plain(params, **changes):
    """The same person without accessories that cover the face, plus `changes`."""
    base = dict(Eyeglasses=False, Wearing_Hat=False, Bangs=False, Smiling=False,
                Mouth_Slightly_Open=False)
    base.update(changes)
    return params.with_labels(**base)


def adult(male: bool, seed: int = 3):
    """A consistent adult (age 30) with hair, from a sampled identity."""
    for p in faces(200, seed):
        if p.has("Male") == male and not p.has("Bald") and not p.full_beard and not p.has("Goatee"):
            return p.with_labels(age=30, Gray_Hair=False, Mustache=False,
                                 Wearing_Lipstick=False, Wearing_Necktie=False)
    raise AssertionError("no such face")


def test_attribute_names_are_celeba_and_enough():
    assert set(SYN_ATTRIBUTES) <= set(ATTRIBUTES)
    assert len(SYN_ATTRIBUTES) >= 20


def test_sampled_faces_are_consistent_and_balanced():
    sample = faces(1500)
    for p in sample:
        assert check_consistent(p) == [], p
        assert 1 <= p.age <= 90
    rates = {k: np.mean([p.has(k) for p in sample]) for k in SYN_ATTRIBUTES}
    limited = {"Mustache", "Goatee", "Bald", "No_Beard", "Wearing_Necktie"}  # one sex / age only
    for name, rate in rates.items():
        lo, hi = (0.07, 0.9) if name in limited else (0.15, 0.65)
        assert lo <= rate <= hi, (name, rate)
    # identity varies independently of labels: equal labels, different faces
    assert len({p.identity.eye_color for p in sample}) >= 5
    assert len({p.identity.hair_style for p in sample}) >= 5


def test_consistency_check_catches_broken_labels():
    p = adult(male=False)
    assert check_consistent(p.with_labels(Mustache=True))  # a woman with a mustache
    assert check_consistent(p.with_labels(Bald=True))  # bald woman with a hair colour
    assert check_consistent(p.with_labels(age=20, Gray_Hair=True, Black_Hair=False,
                                          Blond_Hair=False, Brown_Hair=False))


def test_render_sizes_and_range():
    p = faces(1)[0]
    for size in (32, 64, 100, 256):
        im = render_face(p, size)
        assert im.size == (size, size) and im.mode == "RGB"
    for bad in (31, 257):
        with pytest.raises(ValueError, match="size"):
            render_face(p, bad)


def test_eyeglasses_change_the_eye_region_only_mostly():
    p = plain(adult(male=True))
    without, with_ = pixels(p), pixels(p.with_labels(Eyeglasses=True))
    diff = np.abs(with_ - without).sum(-1) > 30  # (H, W)
    eyes = diff[24:38, 14:50].sum()
    assert eyes > 40, eyes
    assert diff[44:, :].sum() < 5  # nothing below the nose changes


def test_smiling_changes_the_mouth_region():
    p = plain(adult(male=False))
    diff = np.abs(pixels(p.with_labels(Smiling=True)) - pixels(p)).sum(-1) > 30
    assert diff[40:52, 20:44].sum() > 15
    assert diff[:30, :].sum() == 0  # eyes and hair untouched


def test_gray_hair_pixels_are_grey():
    p = plain(adult(male=False)).with_labels(age=60)
    gray = p.with_labels(Gray_Hair=True, Black_Hair=False, Blond_Hair=False, Brown_Hair=False)
    blond = p.with_labels(Gray_Hair=False, Black_Hair=False, Blond_Hair=True, Brown_Hair=False)
    g, b = pixels(gray), pixels(blond)
    hair = np.abs(g - b).sum(-1) > 60  # pixels that are hair in both renders
    assert hair.sum() > 150
    rgb = g[hair]  # (N, 3)
    spread = rgb.max(-1) - rgb.min(-1)
    assert np.median(spread) <= 6, np.median(spread)
    assert np.median(b[hair].max(-1) - b[hair].min(-1)) > 40  # the blond render is not grey


def test_age_is_visible():
    p = plain(adult(male=True))
    child, young, old = (pixels(p.with_labels(age=a, Bushy_Eyebrows=False)) for a in (4, 25, 75))
    d_child = np.abs(child - young).sum(-1).mean()
    d_old = np.abs(old - young).sum(-1).mean()
    assert d_child > 8 and d_old > 3, (d_child, d_old)


def test_each_drawn_attribute_changes_the_picture():
    p = plain(adult(male=True), Chubby=False)
    flips = {k for k in SYN_ATTRIBUTES if k not in ("Young", "No_Beard", "Male", *HAIR_COLORS, "Bald",
                                                    "Wearing_Lipstick", "Pale_Skin")}
    for name in sorted(flips):
        q = p.with_labels(**{name: not p.has(name)})
        diff = (np.abs(pixels(q) - pixels(p)).sum(-1) > 40).sum()
        assert diff >= 6, (name, diff)


def _mentions_true(params, mentions):
    for m in mentions:
        name, want = (m[1:], False) if m.startswith("!") else (m, True)
        assert name in ATTRIBUTES, m
        assert params.attributes[name] == want, (m, params.age)


def test_captions_are_true_of_the_face():
    for i, p in enumerate(faces(300, seed=5)):
        texts, mentions = make_captions(p, np.random.default_rng(i))
        assert len(texts) >= 10 and len(set(texts)) == len(texts)
        for text, m in zip(texts, mentions):
            assert m, text
            _mentions_true(p, m)
            low = text.lower()
            # an independent read of the text, not of the mention lists
            words = set(re.findall(r"[a-z-]+", low))
            if words & {"man", "boy", "he", "his"}:
                assert p.has("Male"), text
            if words & {"woman", "girl", "she", "her"}:
                assert not p.has("Male"), text
            if re.search(r"(?<!no )\b(eye)?glasses|spectacles", low):
                assert p.has("Eyeglasses"), text
            if "no glasses" in low:
                assert not p.has("Eyeglasses"), text
            if re.search(r"(?<!no )\bbeard\b", low) and "bearded" not in low:
                assert p.full_beard, text
            for num in re.findall(r"\b(\d+)[- ]year", low):
                assert int(num) == p.age, text
            if "young" in words:
                assert p.age < YOUNG_BELOW, text


def test_caption_styles_and_age_words_occur():
    texts = [t for i, p in enumerate(faces(60, seed=1)) for t in make_captions(p, np.random.default_rng(i))[0]]
    assert any(re.match(r"^(This|The) (man|woman|person|boy|girl)", t) for t in texts)  # MM-CelebA-HQ
    assert any("; " in t or (", " in t and t[0].islower()) for t in texts)  # terse lists
    assert any(re.search(r"in (his|her) (twenties|thirties|forties|fifties|sixties|seventies)", t) for t in texts)
    assert any(re.search(r"\d+-year-old", t) for t in texts)
    assert any(t.startswith(("no ", "No ")) or " no " in t for t in texts)  # negations


def test_heldout_prompts_never_occur_in_training_captions():
    train_text = []
    for i in range(150):
        for params, record in make_records(7, i, with_edit=False):
            train_text += record.captions
            prompts = heldout_prompts(record, np.random.default_rng(i))
            assert len(prompts) == 5
            assert not set(prompts) & set(record.captions)
    joined = "\n".join(train_text).lower()
    for name, phrases in HELDOUT_PHRASES.items():
        for phrase in phrases:
            assert phrase.lower() not in joined, (name, phrase)
    for word in ("lady", "gentleman", "grandma", "grandpa", "specs", "locks", "youngster"):
        assert word not in joined
    assert not re.search(r"\baged \d", joined)


def test_edits_change_exactly_one_label():
    seen = set()
    for i, p in enumerate(faces(400, seed=2)):
        edit = sample_edit(p, np.random.default_rng(i))
        assert edit is not None
        seen.add(edit.attribute)
        assert edit.instructions and all(isinstance(t, str) and t for t in edit.instructions)
        assert check_consistent(edit.params) == []
        assert edit.params.identity == p.identity
        changed = {k for k in SYN_ATTRIBUTES if edit.params.attributes[k] != p.attributes[k]}
        if edit.attribute == "age":
            assert changed <= {"Young"} and abs(edit.value - p.age) >= 10
        else:
            assert changed == {edit.attribute} and edit.params.attributes[edit.attribute] == edit.value
        if edit.attribute in ("Mustache", "No_Beard"):
            assert p.has("Male")
    assert len(seen) >= 12


def test_edit_record_points_at_its_source_and_differs_only_as_told(tmp_path):
    generate(40, 64, seed=3, out_dir=tmp_path, workers=1, progress=False)
    records = {r.id: r for s in ("train", "validation", "test") for r in read_imagefolder(tmp_path, s)}
    edited = [r for r in records.values() if r.edit is not None]
    assert edited
    for r in edited:
        src = next(s for s in records.values() if s.image == r.edit.source)
        assert src.identity == r.identity and src.split == r.split and src.extra == r.extra
        changed = {k for k in r.attributes if r.attributes[k] != src.attributes[k]}
        if r.edit.attribute == "age":
            assert r.age == r.edit.value and changed <= {"Young"}
        else:
            assert changed == {r.edit.attribute} and r.age == src.age
        a = np.asarray(Image.open(tmp_path / r.image), np.int16)
        b = np.asarray(Image.open(tmp_path / src.image), np.int16)
        assert np.abs(a - b).sum() > 0


def test_generate_splits_counts_and_reproducible_bytes(tmp_path):
    counts = generate(80, 48, seed=11, out_dir=tmp_path / "a", workers=1, progress=False)
    assert sum(counts.values()) == 80 and all(counts.values())
    generate(80, 48, seed=11, out_dir=tmp_path / "b", workers=2, progress=False)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 83
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    idents = {s: {r.identity for r in read_imagefolder(tmp_path / "a", s)} for s in counts}
    assert not idents["train"] & idents["validation"]
    assert not idents["train"] & idents["test"]
    assert not idents["validation"] & idents["test"]
    other = generate(10, 48, seed=12, out_dir=tmp_path / "c", workers=1, progress=False)
    assert sum(other.values()) == 10
    assert (tmp_path / "c/train/s12-0000000.png").read_bytes() != (tmp_path / "a/train/s11-0000000.png").read_bytes()


def test_interrupted_run_leaves_no_metadata(tmp_path, monkeypatch):
    calls = []

    def failing_render(params, size):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return render_face(params, size)

    # the package re-exports the function `generate`, which hides the module of the same name
    generate_module = importlib.import_module("talk2face.data.synface.generate")
    monkeypatch.setattr(generate_module, "render_face", failing_render)
    with pytest.raises(KeyboardInterrupt):
        generate(30, 32, seed=0, out_dir=tmp_path, workers=1, progress=False)
    assert not list(tmp_path.rglob("metadata.jsonl"))


def test_cli_writes_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "sf"
    assert main(["synth", "--n", "24", "--size", "32", "--out", str(out), "--workers", "1",
                 "--contact-sheet", str(tmp_path / "sheet.png")]) == 0
    assert (out / "train" / "metadata.jsonl").exists() and (tmp_path / "sheet.png").exists()
    capsys.readouterr()
    assert main(["synth", "--n", "24", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and str(out) in err
    assert main(["synth", "--n", "8", "--size", "32", "--out", str(out), "--overwrite", "--workers", "1"]) == 0
    assert sum(1 for s in ("train", "validation", "test") for _ in read_imagefolder(out, s)) == 8
    assert len(list(out.rglob("*.png"))) == 8  # the old images are gone
    for argv, word in ((["--size", "16"], "--size"), (["--size", "300"], "--size"), (["--n", "0"], "--n"),
                       (["--edit-fraction", "1.5"], "--edit-fraction"), (["--workers", "-1"], "--workers")):
        assert main(["synth", "--out", str(tmp_path / "new"), *argv]) == 2
        assert word in capsys.readouterr().err


def test_hf_datasets_loads_the_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    counts = generate(60, 32, seed=4, out_dir=tmp_path, workers=1, progress=False)
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path), cache_dir=str(tmp_path / ".cache"))
    assert {k: len(v) for k, v in ds.items()} == counts
    row = ds["train"][0]
    assert row["image"].size == (32, 32) and row["attributes"]["Male"] in (True, False)
    assert any(r is not None for r in ds["train"]["edit"])


def test_contact_sheet(tmp_path):
    generate(16, 32, seed=0, out_dir=tmp_path / "sf", workers=1, progress=False)
    records = list(read_imagefolder(tmp_path / "sf", "train"))[:10]
    sheet = contact_sheet(records, tmp_path / "sf", tmp_path / "sheet.png", columns=5, cell=64)
    assert sheet.size[0] == 5 * 64 and sheet.size[1] > 2 * 64
    assert (tmp_path / "sheet.png").exists()


def test_heldout_prompts_claim_the_sex_and_age_they_state():
    for i in range(40):
        for _, record in make_records(3, i, with_edit=False):
            for text, said in heldout_prompt_claims(record, np.random.default_rng(i), n=3):
                a = record.attributes
                claims = {m.lstrip("!"): not m.startswith("!") for m in said}
                assert all(a[k] == v for k, v in claims.items()), (text, said)  # every claim true
                gendered = re.search(r"\b(lady|gentleman|guy|gal|lad|lass|grandpa|grandma)\b", text)
                assert ("Male" in claims) == bool(gendered), text


def test_heldout_instructions_ask_every_editable_change_in_words_no_training_instruction_uses():
    from talk2face.data.synface.edits import _INSTRUCTIONS, EDITABLE
    from talk2face.data.synface.freestyle import heldout_instruction

    rng = np.random.default_rng(0)
    training = {i.format(obj="them", pos="their", sub="they") for adds, drops in _INSTRUCTIONS.values() for i in (*adds, *drops)}
    for attribute in EDITABLE:
        if attribute == "age":
            assert heldout_instruction("age", 40, rng) is None
            continue
        for value in (True, False):
            said = {heldout_instruction(attribute, value, rng) for _ in range(20)}
            assert None not in said and not said & training
            assert all(bool(re.search(r"without|minus|lose", s)) != value for s in said)  # asks for it, or for its absence
