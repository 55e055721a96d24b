"""The streaming training set: a seeded order that resumes exactly, every eligible row once per
epoch, the weights of the map-style set, workers, and reading only the blocks it passes."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest
from datasets import Dataset
from torch.utils.data import DataLoader

from talk2face.data.record import TASKS
from talk2face.errors import UserError
from talk2face_train.sequences import MULTI_ANSWER, WeightedRows, collate
from talk2face_train.streaming import RowStream, StreamingMultiTaskDataset
from talk2face_train.tokenized import FEATURES, record_to_row, summarize_labels

import test_sequences
from test_sequences import builder, make_record

vocab, templates = test_sequences.vocab, test_sequences.templates  # its fixtures



def weighted(records, weight=1.0, tasks=None) -> WeightedRows:
    """Arrow rows of `records`, with the label summary tokenize writes."""
    rows = Dataset.from_list([record_to_row(r, r.image, r.edit.source if r.edit else None) for r in records], features=FEATURES)
    return WeightedRows(rows, weight, tasks, summarize_labels(rows))


def tables():
    return {"full": weighted([make_record(i, edit=i % 3 == 0) for i in range(23)]),
            "ages": weighted([make_record(100 + i, captions=False, attributes=False) for i in range(11)], 3.0)}


def items(ds) -> list[list[int]]:
    return [item["input_ids"].tolist() for item in ds]


def test_a_resumed_stream_continues_the_exact_order(vocab, templates):
    weights = {t: 1.0 for t in (*TASKS, MULTI_ANSWER)}
    ds = StreamingMultiTaskDataset(tables(), weights, builder(vocab, templates, 0.1), seed=3, length=150, task_block=4,
                                   block_rows=5)
    full = items(ds)
    assert items(ds) == full  # a pure function of the seed
    for start in (4, 60, 148):  # inside the first epoch of every stream, and several epochs later
        ds.start = start
        assert items(ds) == full[start:]
    other = StreamingMultiTaskDataset(tables(), weights, builder(vocab, templates, 0.1), seed=4, length=150, task_block=4,
                                      block_rows=5)
    assert items(other) != full


def test_every_row_that_can_train_the_task_comes_once_per_epoch(vocab, templates):
    records = [make_record(i, edit=i % 3 == 0) for i in range(23)]
    rows = weighted(records).rows
    stream = RowStream(rows, "edit", builder(vocab, templates), block_rows=4, key=(0, 0))
    edits = [i for i, r in enumerate(records) if r.edit is not None]  # 8 rows
    epochs = [[next(stream) for _ in edits] for _ in range(3)]
    assert all(sorted(epoch) == edits for epoch in epochs)
    assert epochs[0] != epochs[1]  # each epoch its own order
    later = RowStream(rows, "edit", builder(vocab, templates), block_rows=4, key=(0, 0), position=13)
    assert [next(later) for _ in range(11)] == sum(epochs, [])[13:24]


def test_tasks_and_sources_are_drawn_by_their_weights(vocab, templates, caplog):
    with caplog.at_level(logging.WARNING):
        ds = StreamingMultiTaskDataset(tables(), {"age": 1.0, "caption": 1.0, "edit": 1.0}, builder(vocab, templates),
                                       seed=0, length=8 * 500, task_block=8)
    plan = np.concatenate([ds.plan(0)])  # 4096 items
    pairs = Counter(ds.pairs[p] for p in plan)
    assert {source for task, source in pairs if task == "caption"} == {"full"}
    tasks = Counter({t: sum(n for (task, _), n in pairs.items() if task == t) for t in ds.sampler.tasks})
    assert all(abs(n / len(plan) - 1 / 3) < 0.05 for n in tasks.values()), tasks
    # age: the source weights 1 : 3
    assert abs(pairs["age", "ages"] / tasks["age"] - 0.75) < 0.05
    assert all(len(set(ds.pairs[p][0] for p in plan[b:b + 8])) == 1 for b in range(0, len(plan), 8))  # one task per block
    assert "edit" not in caplog.text  # "full" has edits
    only_ages = {"ages": tables()["ages"]}
    with caplog.at_level(logging.WARNING):
        ds = StreamingMultiTaskDataset(only_ages, {"age": 1.0, "edit": 1.0}, builder(vocab, templates), seed=0, length=8)
    assert "'edit' has weight" in caplog.text and ds.sampler.tasks == ["age"]


def test_processes_and_workers_each_build_their_own_batches_of_one_stream(vocab, templates):
    def batches(process=0, processes=1, workers=0):
        ds = StreamingMultiTaskDataset(tables(), {t: 1.0 for t in TASKS}, builder(vocab, templates), seed=1, length=48,
                                       task_block=4, block_rows=5, batch_size=4, process=process, processes=processes)
        ds.start = 24  # three steps of 2 processes in: a process's first batch is still its own
        loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=lambda e: collate(e, vocab.pad_id))
        return [b["input_ids"].tolist() for b in loader]

    one = batches()
    assert len(one) == 6
    assert batches(workers=2) == one
    ranks = [batches(process=r, processes=2, workers=2) for r in range(2)]
    assert [b for pair in zip(*ranks) for b in pair] == one  # step s: rank r has global batch 2 s + r


class CountingRows:
    """Arrow rows that count what a reader takes: whole rows, and rows whose label columns it reads."""

    def __init__(self, rows: Dataset) -> None:
        self.rows, self.scanned, self.taken = rows, 0, 0

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, indices):
        self.scanned += len(indices)
        return self.rows.select(indices)

    def __getitem__(self, i):
        self.taken += 1
        return self.rows[i]


def test_a_start_reads_one_block_per_stream_and_a_resume_only_label_columns(vocab, templates):
    source = weighted([make_record(i % 50) for i in range(2000)])
    rows = CountingRows(source.rows)
    big = {"big": WeightedRows(rows, 1.0, None, source.labels)}
    ds = StreamingMultiTaskDataset(big, {"age": 1.0, "caption": 1.0}, builder(vocab, templates), seed=0, length=10**6,
                                   block_rows=64)
    first = next(iter(ds))
    assert first["input_ids"][0] == vocab.bos_id
    assert rows.taken == 1 and rows.scanned == 2 * 64  # the first block of each of the 2 streams
    rows.scanned = rows.taken = 0
    ds.start = 500_000  # many epochs in: each stream counts every block once, one int per block, and skips
    next(iter(ds))
    assert rows.taken == 1 and rows.scanned <= 2 * (2000 + 2 * 64)


def test_a_source_without_label_counts_or_rows_for_a_task_is_refused(vocab, templates):
    source = tables()["full"]
    old = {"old": WeightedRows(source.rows, 1.0, None, None)}
    with pytest.raises(UserError, match="tokenize it again"):
        StreamingMultiTaskDataset(old, {"age": 1.0}, builder(vocab, templates), seed=0, length=8)
    # counts that promise captions the rows do not have: the stream says so instead of looping
    lying = {"x": WeightedRows(tables()["ages"].rows, 1.0, None, {"captions": 5, "age": 11})}
    ds = StreamingMultiTaskDataset(lying, {"caption": 1.0}, builder(vocab, templates), seed=0, length=8)
    with pytest.raises(UserError, match="no row of the source can train 'caption'"):
        next(iter(ds))
