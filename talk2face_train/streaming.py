"""Training that streams its sources (data.streaming): no index of every row, start-up and memory
that do not grow with the data.

`MultiTaskDataset` finds, before the first step, every row that can train each task: a pass over
the label columns of every row, and an index as long as the data. `StreamingMultiTaskDataset`
reads each source in blocks of rows instead (the streaming shuffle of WebDataset and `datasets`:
shuffled blocks, shuffled rows within a block):

- the (task, source) of every item is drawn from the seed alone, a plan of `PLAN_ITEMS` items at a
  time, with the task and source weights of the map-style set (one task per `task_block` items);
- each (source, task) pair reads a `RowStream`: epoch e visits the source's blocks in an order
  drawn from (seed, pair, e), and the rows of a block that can train the task in an order drawn
  from (seed, pair, e, block); only the block in use is held;
- item i takes the next row of its pair's stream. How many items each pair served before item i
  follows from the plans, so a run resumed at item i seeks every stream there and continues the
  exact order, reading only label columns of the blocks it passes, never a row.

Which sources can train a task comes from the label counts `talk2face tokenize` writes
(tokenize.json "labels"), so nothing is scanned at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from talk2face.errors import UserError
from talk2face_train.sequences import (
    MULTI_ANSWER, SequenceBuilder, TaskSampler, WeightedRows, can_train, source_trains, trainable_rows,
    trainable_weights,
)
from talk2face_train.tokenized import to_record

PLAN_ITEMS = 4096  # items whose (task, source) one plan draws at once


def counted(counts: Mapping[str, Any], labels: Sequence[str]) -> bool:
    """Whether tokenize's label counts of a split say some row has each of `labels`."""
    return all(counts.get(label, 0) > 0 for label in labels)


class RowStream:
    """The rows of one source that can train one task, in an endless seeded order (module docstring).

    Args:
        rows: the source's rows (a memory-mapped `datasets.Dataset`, or any sequence of records).
        task: the task the rows must be able to train.
        builder: the SequenceBuilder (what the task requires).
        block_rows: rows per shuffled block.
        key: the stream's seed (data seed, source, task).
        position: the row of the stream to start at (`seek`).
    """

    def __init__(self, rows: Any, task: str, builder: SequenceBuilder, block_rows: int, key: tuple[int, ...],
                 position: int = 0) -> None:
        self.rows, self.task, self.builder, self.key = rows, task, builder, key
        self.block_rows = block_rows
        self.n_blocks = math.ceil(len(rows) / block_rows)
        self.counts: dict[int, int] = {}  # block -> its rows that can train the task (one int per block)
        self.last: tuple[int, np.ndarray] = (-1, np.zeros(0, np.int64))
        self.seek(position)

    def _order(self, epoch: int) -> np.ndarray:
        """(n_blocks,) the blocks in epoch `epoch`'s order."""
        return np.random.default_rng([*self.key, epoch]).permutation(self.n_blocks)

    def _eligible(self, block: int) -> np.ndarray:
        """(n,) the block's rows that can train the task, ascending (the last block asked is kept:
        `seek` counts a block, then reads the one it stops in)."""
        if self.last[0] != block:
            start = block * self.block_rows
            part = range(start, min(start + self.block_rows, len(self.rows)))
            part_rows = self.rows.select(part) if hasattr(self.rows, "select") else [self.rows[i] for i in part]
            self.last = block, np.flatnonzero(trainable_rows(part_rows, [self.task], self.builder)[self.task]) + start
            self.counts[block] = len(self.last[1])
        return self.last[1]

    def _block(self, epoch: int, block: int) -> np.ndarray:
        """(n,) the block's rows that can train the task, in epoch `epoch`'s order."""
        rows = self._eligible(block)
        return rows[np.random.default_rng([*self.key, epoch, block]).permutation(len(rows))]

    def _count(self, block: int) -> int:
        return self.counts[block] if block in self.counts else len(self._eligible(block))

    def seek(self, k: int) -> None:
        """Stand before the k-th row of the stream (0 = the start of epoch 0)."""
        epoch = 0
        while True:
            order = self._order(epoch)
            for position, block in enumerate(order):
                count = self._count(block)
                if k < count:
                    self.epoch, self.order, self.position = epoch, order, position
                    self.block, self.offset = self._block(epoch, block), k
                    return
                k -= count
            per_epoch = sum(self.counts.values())  # every block is counted after one epoch
            if per_epoch == 0:
                raise UserError(f"data.streaming: no row of the source can train {self.task!r}")
            epoch, k = epoch + 1 + k // per_epoch, k % per_epoch

    def __next__(self) -> int:
        while self.offset == len(self.block):  # the block is used up (or holds no eligible row)
            self.position += 1
            if self.position == self.n_blocks:
                self.epoch, self.order, self.position = self.epoch + 1, self._order(self.epoch + 1), 0
                if sum(self.counts.values()) == 0:
                    raise UserError(f"data.streaming: no row of the source can train {self.task!r}")
            self.block, self.offset = self._block(self.epoch, self.order[self.position]), 0
        self.offset += 1
        return int(self.block[self.offset - 1])


class StreamingMultiTaskDataset(IterableDataset):
    """Iterable training set of `length` items, from item `start` on (module docstring).

    Args:
        tables: source name -> its WeightedRows; `labels` (tokenize.json's label counts of the
            split) says which tasks it has rows for.
        task_weights, builder, seed, length, task_block: as in MultiTaskDataset.
        block_rows: rows per shuffled block of a source (the memory a stream holds).
        batch_size: the DataLoader's batch size (per process).
        process, processes: this process's rank and the number of data-parallel processes. Batch b
            of the stream (items [b * batch_size, (b + 1) * batch_size)) is process b mod processes',
            as accelerate's batch sampler shards a map-style set; within a process, DataLoader
            worker w builds its batches j = w mod workers, which the DataLoader returns in order.
            So each process builds and pads only its own batches.
    """

    def __init__(
        self, tables: Mapping[str, WeightedRows], task_weights: Mapping[str, float], builder: SequenceBuilder,
        seed: int, length: int, task_block: int = 1, block_rows: int = 4096, batch_size: int = 1,
        process: int = 0, processes: int = 1,
    ) -> None:
        self.tables, self.builder, self.seed, self.length = dict(tables), builder, int(seed), int(length)
        self.task_block, self.block_rows, self.batch_size = int(task_block), int(block_rows), int(batch_size)
        self.process, self.processes = process, processes
        self.start = 0  # the first item to yield (a resumed run sets it)
        templates = builder.templates
        unknown = sorted(set(task_weights) - set(templates.tasks) - {MULTI_ANSWER})
        if unknown:
            raise UserError(f"task_weights names unknown task(s) {unknown}; templates define {templates.tasks} "
                            f"(and the composite {MULTI_ANSWER!r})")
        self.sources: dict[str, list[str]] = {}  # task -> the sources that train it
        for name, table in self.tables.items():
            if table.labels is None:
                raise UserError(f"data.streaming: {name} has no label counts in its tokenize.json (tokenized by an "
                                "older version): tokenize it again")
            for task in source_trains(task_weights, table.tasks, builder):
                if table.weight > 0 and can_train(task, builder, partial(counted, table.labels)):
                    self.sources.setdefault(task, []).append(name)
        self.sampler = TaskSampler(trainable_weights(task_weights, set(self.sources)))
        self.cumulative = {task: np.cumsum([self.tables[s].weight for s in names]) / sum(self.tables[s].weight for s in names)
                           for task, names in self.sources.items()}
        self.pairs = [(task, source) for task in self.sampler.tasks for source in self.sources[task]]
        self.plan_items = task_block * math.ceil(PLAN_ITEMS / task_block)

    def plan(self, b: int) -> np.ndarray:
        """(plan_items,) the index in `pairs` of items [b * plan_items, (b + 1) * plan_items)."""
        rng = np.random.default_rng([self.seed, b, self.task_block])
        n_tasks = len(self.sampler.tasks)
        tasks = np.repeat(rng.choice(n_tasks, size=self.plan_items // self.task_block, p=self.sampler.probs), self.task_block)
        draws = rng.random(self.plan_items)  # (plan_items,) the source draw of every item
        first = np.cumsum([0] + [len(self.sources[t]) for t in self.sampler.tasks])  # pair index of each task's first source
        pairs = np.empty(self.plan_items, dtype=np.int64)
        for t, task in enumerate(self.sampler.tasks):
            mine = tasks == t
            pairs[mine] = first[t] + np.searchsorted(self.cumulative[task], draws[mine], side="right").clip(max=len(self.sources[task]) - 1)
        return pairs

    def served_before(self, i: int) -> np.ndarray:
        """(len(pairs),) how many of items [0, i) each pair served."""
        blocks, rest = divmod(i, self.plan_items)
        counts = sum((np.bincount(self.plan(b), minlength=len(self.pairs)) for b in range(blocks)), np.zeros(len(self.pairs), np.int64))
        return counts + np.bincount(self.plan(blocks)[:rest], minlength=len(self.pairs))

    def __len__(self) -> int:
        """The items this process yields."""
        return (self.length - self.start) // self.processes

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        streams = [RowStream(self.tables[source].rows, task, self.builder, self.block_rows, (self.seed, p), int(served))
                   for p, ((task, source), served) in enumerate(zip(self.pairs, self.served_before(self.start)))]
        plan, plan_index = None, -1
        for i in range(self.start, self.length):
            if i // self.plan_items != plan_index:
                plan_index = i // self.plan_items
                plan = self.plan(plan_index)
            p = int(plan[i % self.plan_items])
            row = next(streams[p])
            batch = (i - self.start) // self.batch_size  # `start` begins a batch of every process
            if batch % self.processes == self.process and batch // self.processes % workers == worker:
                task, source = self.pairs[p]
                record = to_record(self.tables[source].rows[row])
                yield self.builder.build(task, record, np.random.default_rng([self.seed, i]))
