"""Sequence building, CFG dropout, batching, task sampling and the deterministic multi-task dataset."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer

from talk2face_train.tokenized import FEATURES, label_mask, record_to_row
from talk2face.data.record import ATTRIBUTES, EditInfo, FaceRecord
from talk2face.errors import UserError
from talk2face_train.sequences import (
    IGNORE, MULTI_ANSWER, MultiTaskDataset, SequenceBuilder, TaskSampler, WeightedRows, collate,
)
from talk2face.data.record import TASKS
from talk2face.templates import Templates
from talk2face.vocab import Vocab

REPO = Path(__file__).resolve().parents[1]


def make_record(i: int, captions: bool = True, age: bool = True, attributes: bool = True, edit: bool = False) -> FaceRecord:
    rng = np.random.default_rng(i)
    return FaceRecord(
        image=rng.integers(0, 16, 64).astype(np.uint16), id=f"r{i}", age=int(rng.integers(1, 91)) if age else None,
        attributes={a: bool(rng.integers(2)) for a in ATTRIBUTES[:20]} if attributes else None,
        captions=[f"a person number {i}", "a smiling woman with blond hair"] if captions else None,
        edit=EditInfo(rng.integers(0, 16, 64).astype(np.uint16), ["make her smile"], "Smiling", True) if edit else None,
    )


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab(Tokenizer.from_file(str(REPO / "tokenizers" / "synface" / "tokenizer.json")), n_codes=16)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load(REPO / "templates")


def builder(vocab, templates, cfg_dropout=0.0, max_length=512) -> SequenceBuilder:
    return SequenceBuilder(vocab, templates, max_length=max_length, cfg_dropout=cfg_dropout)


@pytest.mark.parametrize("task", TASKS)
def test_layout_and_labels_masked_exactly_on_the_prompt(task, vocab, templates):
    b = builder(vocab, templates)
    record = make_record(0, edit=True)
    out = b.build(task, record, np.random.default_rng(1))
    ids, labels = out["input_ids"], out["labels"]
    assert ids.dtype == labels.dtype == np.int64 and ids.shape == labels.shape
    sep = int(np.flatnonzero(ids == vocab.sep_id)[0])
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert (labels[: sep + 1] == IGNORE).all()
    np.testing.assert_array_equal(labels[sep + 1:], ids[sep + 1:])
    rng = np.random.default_rng(1)
    rng.random()  # the builder's condition-dropout draw comes first
    sample = templates.render(task, record, rng)
    prompt = vocab.encode(sample.prompt, sample.prompt_faces)
    assert sep == len(prompt) + 1  # the same draws give the same prompt
    answer = ids[sep + 1: -1]
    if task in ("text_to_face", "edit"):
        assert answer[0] == vocab.boi_id and answer[-1] == vocab.eoi_id
        np.testing.assert_array_equal(vocab.ids_to_codes(answer[1:-1]), record.image)
    else:
        assert templates.parse(task, vocab.decode_text(answer)).ok


def test_cfg_dropout_rate_and_what_is_dropped(vocab, templates):
    b = builder(vocab, templates, cfg_dropout=0.25)
    rng = np.random.default_rng(0)
    record = make_record(3, edit=True)
    uncond = vocab.encode(templates.render("text_to_face", record, rng, unconditional=True).prompt)
    n = 2000
    dropped = 0
    for _ in range(n):
        ids = b.build("text_to_face", record, rng)["input_ids"]
        dropped += len(ids) == len(uncond) + 3 + 66 and (ids[1: len(uncond) + 1] == uncond).all()
    assert abs(dropped / n - 0.25) < 0.04  # binomial sd ~0.01
    # edit keeps the source face and drops the instruction
    edits = [templates.render("edit", record, rng, unconditional=True), b.render("edit", record, rng)]
    np.testing.assert_array_equal(edits[0].prompt_faces[0], record.edit.source)
    assert "smile" not in edits[0].prompt
    # tasks without an unconditional prompt are never dropped
    assert all("<face>" in b.render("caption", record, rng).prompt for _ in range(50))


def test_too_long_names_lengths(vocab, templates):
    b = builder(vocab, templates, max_length=40)
    with pytest.raises(UserError, match=r"text_to_face sequence of record 'r0' has \d+ tokens \(prompt \d+, answer 66.*max_length is 40"):
        b.build("text_to_face", make_record(0), np.random.default_rng(0))


def test_collate_pads_right(vocab, templates):
    b = builder(vocab, templates)
    rng = np.random.default_rng(0)
    examples = [b.build(t, make_record(i), rng) for i, t in enumerate(["age", "text_to_face", "attributes"])]
    batch = collate(examples, vocab.pad_id, pad_to_multiple_of=8)
    lengths = [len(e["input_ids"]) for e in examples]
    B, T = batch["input_ids"].shape
    assert B == 3 and T % 8 == 0 and T >= max(lengths)
    for row, (e, n) in enumerate(zip(examples, lengths)):
        assert batch["input_ids"][row, :n].tolist() == e["input_ids"].tolist()
        assert (batch["input_ids"][row, n:] == vocab.pad_id).all()
        assert (batch["labels"][row, n:] == IGNORE).all()
        assert batch["attention_mask"][row].sum() == n


def test_task_sampler_follows_weights():
    s = TaskSampler({"age": 3.0, "caption": 1.0, "edit": 0.0})
    rng = np.random.default_rng(0)
    draws = [s.sample(rng) for _ in range(4000)]
    assert "edit" not in draws and abs(draws.count("age") / 4000 - 0.75) < 0.03
    with pytest.raises(UserError):
        TaskSampler({"age": 0.0})
    with pytest.raises(UserError):
        TaskSampler({"age": -1.0})


def _tables():
    return {
        "full": WeightedRows([make_record(i, edit=i % 2 == 0) for i in range(8)]),
        "ages_only": WeightedRows([make_record(100 + i, captions=False, attributes=False) for i in range(8)]),
    }


def test_dataset_item_is_a_function_of_seed_and_index(vocab, templates):
    weights = {t: 1.0 for t in TASKS}
    a = MultiTaskDataset(_tables(), weights, builder(vocab, templates, 0.1), seed=7, length=64)
    b = MultiTaskDataset(_tables(), weights, builder(vocab, templates, 0.1), seed=7, length=64)
    c = MultiTaskDataset(_tables(), weights, builder(vocab, templates, 0.1), seed=8, length=64)
    order = [37, 2, 63, 2, 0]  # any access order, repeated access
    for i in order:
        assert a[i]["input_ids"].tolist() == b[i]["input_ids"].tolist()
    assert any(a[i]["input_ids"].tolist() != c[i]["input_ids"].tolist() for i in range(8))
    with pytest.raises(IndexError):
        a[64]


def test_tasks_only_use_records_that_have_what_they_need(vocab, templates, caplog):
    tables = _tables()
    ds = MultiTaskDataset(tables, {"age": 1.0, "caption": 1.0, "edit": 1.0}, builder(vocab, templates), seed=0, length=10)
    assert [s for s, _ in ds.eligible["caption"]] == ["full"]
    assert sorted(s for s, _ in ds.eligible["age"]) == ["ages_only", "full"]
    assert ds.eligible["edit"][0][1].tolist() == [0, 2, 4, 6]
    # per-source weights and tasks
    spec = {"full": WeightedRows(tables["full"].rows, 1.0, ("caption",)),
            "ages_only": WeightedRows(tables["ages_only"].rows, 3.0, ("age", "edit"))}
    with caplog.at_level(logging.WARNING):
        ds = MultiTaskDataset(spec, {"age": 1.0, "caption": 1.0, "edit": 1.0}, builder(vocab, templates), 0, 10)
    assert "edit" in caplog.text and "edit" not in ds.sampler.tasks
    with pytest.raises(UserError, match="every task weight is 0"):
        MultiTaskDataset({"ages_only": tables["ages_only"]}, {"caption": 1.0}, builder(vocab, templates), 0, 10)
    with pytest.raises(UserError, match="unknown task"):
        MultiTaskDataset(tables, {"gender": 1.0}, builder(vocab, templates), 0, 10)


def test_pretokenized_arrow_rows(vocab, templates):
    records = [make_record(i, captions=i % 2 == 0, age=i % 3 != 0, edit=i == 1) for i in range(6)]
    rows = [record_to_row(r, r.image, r.edit.source if r.edit else None) for r in records]
    table = Dataset.from_list(rows, features=FEATURES).select([5, 4, 3, 2, 1, 0])
    for label in ("captions", "age", "attributes", "edit"):
        assert label_mask(table, label).tolist() == [r.has(label) for r in reversed(records)]
    ds = MultiTaskDataset({"arrow": WeightedRows(table)}, {t: 1.0 for t in TASKS}, builder(vocab, templates), seed=0, length=40)
    batch = collate([ds[i] for i in range(40)], vocab.pad_id)
    assert batch["input_ids"].shape[0] == 40 and torch.all(batch["input_ids"][:, 0] == vocab.bos_id)


def test_task_block_gives_one_task_per_batch_and_keeps_the_mixture(vocab, templates):
    weights = {"age": 1.0, "caption": 1.0}
    ds = MultiTaskDataset(_tables(), weights, builder(vocab, templates), seed=0, length=8 * 40, task_block=8)
    tasks = [ds.task_of(i) for i in range(len(ds))]
    blocks = [set(tasks[b : b + 8]) for b in range(0, len(tasks), 8)]
    assert all(len(b) == 1 for b in blocks)
    counts = Counter(next(iter(b)) for b in blocks)
    assert set(counts) == {"age", "caption"} and min(counts.values()) >= 10
    # every item is built for its block's task: an age answer is one number token + <eos>
    for i in range(16):
        supervised = int((ds[i]["labels"] != -100).sum())
        assert (supervised == 2) == (tasks[i] == "age")


def test_multi_answer_reads_one_face_for_every_labelled_reading_task(vocab, templates):
    b = builder(vocab, templates)
    record = make_record(3)
    out = b.build(MULTI_ANSWER, record, np.random.default_rng(0))
    ids, labels = out["input_ids"], out["labels"]
    assert (ids == vocab.boi_id).sum() == 1  # the face once
    seps, eoss = np.flatnonzero(ids == vocab.sep_id), np.flatnonzero(ids == vocab.eos_id)
    assert len(seps) == len(eoss) == 3 and ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    answers = [vocab.decode_text(ids[s + 1:e]) for s, e in zip(seps, eoss)]
    attributes = templates.get("attributes").attributes.render(record.attributes)
    assert sorted(answers) == sorted([str(record.age), attributes, answers[[a in record.captions for a in answers].index(True)]])
    supervised = np.flatnonzero(labels != IGNORE)  # exactly the answers and their <eos>
    expected = np.concatenate([np.arange(s + 1, e + 1) for s, e in zip(seps, eoss)])
    np.testing.assert_array_equal(supervised, expected)
    # each answer weighs 1 in all (its tokens 1 / its length): the age "34 <eos>" as much as the attribute list
    weights = out["answer_weights"]
    assert weights.sum() == pytest.approx(3) and (weights[labels == IGNORE] == 0).all()
    for s, e in zip(seps, eoss):
        assert weights[s + 1:e + 1] == pytest.approx(np.full(e - s, 1 / (e - s)))
    # the first question is the single-question form inference uses, the face in its prompt
    assert np.flatnonzero(ids == vocab.boi_id)[0] < seps[0]
    # every task comes first in some sequences; a record with one reading label is not eligible
    firsts = Counter()
    for seed in range(60):
        o = b.build(MULTI_ANSWER, record, np.random.default_rng(seed))["input_ids"]
        s, e = np.flatnonzero(o == vocab.sep_id)[0], np.flatnonzero(o == vocab.eos_id)[0]
        answer = vocab.decode_text(o[s + 1:e])
        firsts["age" if answer == str(record.age) else "attributes" if answer == attributes else "caption"] += 1
    assert set(firsts) == {"age", "attributes", "caption"} and min(firsts.values()) > 8
    assert not b.supports(MULTI_ANSWER, make_record(4, captions=False, attributes=False))


def test_prompt_face_labels_cover_exactly_the_prompt_codes(vocab, templates):
    b = SequenceBuilder(vocab, templates, max_length=512, prompt_face_loss=True)
    record = make_record(5, edit=True)
    for task in ("caption", "edit", "text_to_face"):
        out = b.build(task, record, np.random.default_rng(2))
        ids, faces, labels = out["input_ids"], out["face_labels"], out["labels"]
        sep = int(np.flatnonzero(ids == vocab.sep_id)[0])
        prompt_codes = np.flatnonzero(vocab.is_image(ids[:sep]))
        np.testing.assert_array_equal(np.flatnonzero(faces != IGNORE), prompt_codes)
        np.testing.assert_array_equal(faces[prompt_codes], ids[prompt_codes])
        assert (labels[:sep + 1] == IGNORE).all()  # the answers' labels are unchanged
    batch = collate([b.build("caption", record, np.random.default_rng(0)), b.build("age", record, np.random.default_rng(0))], vocab.pad_id)
    assert batch["face_labels"].shape == batch["labels"].shape and (batch["face_labels"] != IGNORE).sum() == 2 * 64


def test_decision_weight_goes_to_the_yes_no_slots_of_attribute_lists_only(vocab, templates):
    record = make_record(6)
    plain = SequenceBuilder(vocab, templates, max_length=512).build("attributes", record, np.random.default_rng(0))
    weighted = SequenceBuilder(vocab, templates, max_length=512, decision_weight=1.0).build(
        "attributes", record, np.random.default_rng(0))
    slots = np.isin(plain["input_ids"], [vocab.token_id("yes"), vocab.token_id("no")]) & (plain["labels"] != IGNORE)
    np.testing.assert_allclose(weighted["answer_weights"][slots], plain["answer_weights"][slots] + 1.0)
    np.testing.assert_array_equal(weighted["answer_weights"][~slots], plain["answer_weights"][~slots])
    assert slots.sum() == sum(1 for a in record.attributes)  # one slot per labelled attribute
    age = SequenceBuilder(vocab, templates, max_length=512, decision_weight=1.0).build("age", record, np.random.default_rng(0))
    assert age["answer_weights"].sum() == 1.0  # other answers keep their weight


def test_edit_change_weight_goes_to_the_target_codes_the_edit_changes(vocab, templates):
    record = make_record(7, edit=True)
    plain = SequenceBuilder(vocab, templates, max_length=512, cfg_dropout=0.0).build("edit", record, np.random.default_rng(0))
    weighted = SequenceBuilder(vocab, templates, max_length=512, cfg_dropout=0.0, edit_change_weight=3.0).build(
        "edit", record, np.random.default_rng(0))
    sep = int(np.flatnonzero(plain["input_ids"] == vocab.sep_id)[0])
    target_codes = sep + 1 + np.flatnonzero(vocab.is_image(plain["input_ids"][sep + 1:]))  # (64,) positions
    changed = record.edit.source != record.image  # (64,) the result against the face before the edit
    assert 0 < changed.sum() < 64
    np.testing.assert_allclose(weighted["answer_weights"][target_codes[changed]], 4.0 * plain["answer_weights"][target_codes[changed]])
    rest = np.ones(len(plain["input_ids"]), bool)
    rest[target_codes[changed]] = False
    np.testing.assert_array_equal(weighted["answer_weights"][rest], plain["answer_weights"][rest])
    caption = SequenceBuilder(vocab, templates, max_length=512, edit_change_weight=3.0).build("caption", record, np.random.default_rng(0))
    assert caption["answer_weights"].sum() == pytest.approx(1.0)  # other tasks keep their weight


def test_with_a_same_token_an_edit_target_writes_only_the_cells_it_changes(vocab, templates):
    same_vocab = Vocab(Tokenizer.from_file(str(REPO / "tokenizers" / "synface" / "tokenizer.json")), n_codes=16,
                       same_token=True)
    record = make_record(7, edit=True)
    plain = SequenceBuilder(vocab, templates, max_length=512, cfg_dropout=0.0).build("edit", record, np.random.default_rng(0))
    out = SequenceBuilder(same_vocab, templates, max_length=512, cfg_dropout=0.0).build("edit", record, np.random.default_rng(0))
    sep = int(np.flatnonzero(out["input_ids"] == same_vocab.sep_id)[0])
    np.testing.assert_array_equal(out["input_ids"][: sep + 1], plain["input_ids"][: sep + 1])  # the prompt keeps the source
    target = out["input_ids"][sep + 2 : sep + 2 + 64]  # (64,) after <sep> <boi>
    changed = record.edit.source != record.image
    assert 0 < changed.sum() < 64
    assert (target[~changed] == same_vocab.same_id).all()
    np.testing.assert_array_equal(same_vocab.ids_to_codes(target[changed]), record.image[changed])
    np.testing.assert_array_equal(out["labels"][sep + 1 :], out["input_ids"][sep + 1 :])  # every cell is supervised
    caption = SequenceBuilder(same_vocab, templates, max_length=512).build("caption", record, np.random.default_rng(0))
    assert same_vocab.same_id not in caption["input_ids"]  # a face elsewhere is written whole


def test_answer_weights_scale_one_task_s_answers_in_a_multi_answer_sequence(vocab, templates):
    record = make_record(8)
    plain = SequenceBuilder(vocab, templates, max_length=512).build(MULTI_ANSWER, record, np.random.default_rng(0))
    weighted = SequenceBuilder(vocab, templates, max_length=512, answer_weights={"caption": 3.0}).build(
        MULTI_ANSWER, record, np.random.default_rng(0))
    assert plain["answer_weights"].sum() == pytest.approx(3.0)  # age, attributes, caption: one each
    assert weighted["answer_weights"].sum() == pytest.approx(5.0)  # the caption counts three times
    with pytest.raises(UserError, match="answer_weights"):
        SequenceBuilder(vocab, templates, max_length=512, answer_weights={"caption": -1.0})
