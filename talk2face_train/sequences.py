"""Records -> training sequences: the builder, batching (padding or packing), the task sampler and
the map-style multi-task dataset.

One sequence is

    <bos> prompt <sep> target <eos>          labels: -100 on `<bos> prompt <sep>`, ids on `target <eos>`

(labels are aligned with input_ids; the HF causal LM shifts them itself). A face anywhere is
`<boi> <img_c1> ... <img_cN> <eoi>`; in a target all of it is supervised, so the model learns to
close a face after exactly N codes. With `prompt_face_loss` the codes of prompt faces get labels
of their own (`face_labels`, weighted apart from the answers in training), so every face in the
data trains the image model, not only text-to-face targets.

The composite task `multi_answer` reads one face several times: the first question is an ordinary
single-question sequence, and every further reading task the record has labels for follows with
its prompt minus the face (already in context), in shuffled order, loss on every answer:

    <bos> P1(face) <sep> A1 <eos> P2 <sep> A2 <eos> P3 <sep> A3 <eos>

One pass over the 64 codes then supervises age, attributes and caption at once, while each task
still comes first (the inference form) in a third of the sequences.

Padding, not packing: `collate` right-pads a batch to its longest sequence (with attention_mask).
With one task per micro-batch (data.task_per_batch) the lengths in a batch are close (see
`python scripts/seqlen.py`), so padding wastes little and keeps the stock model path: packed
rows would need restarting position ids and a block-diagonal 4D mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from talk2face.data.record import FaceRecord
from talk2face.errors import UserError
from talk2face.templates import FACE_TOKEN, Sample, Templates
from talk2face.vocab import Vocab
from talk2face_train.tokenized import label_mask, to_record

IGNORE = -100  # label of positions without loss (torch.nn.CrossEntropyLoss's ignore_index)
MULTI_ANSWER = "multi_answer"  # the composite task: one face, every reading task it has labels for
READING_TASKS = ("age", "attributes", "caption")  # the tasks multi_answer asks, when templates define them
log = logging.getLogger(__name__)


class SequenceBuilder:
    """Turns (task, record) into `input_ids` and `labels`, with condition dropout for CFG.

    Args:
        vocab: the unified vocabulary.
        templates: the task templates.
        max_length: the decoder's context; a longer sequence is an error naming the lengths.
        cfg_dropout: probability that a task with an `unconditional` prompt (text_to_face, edit)
            is rendered with that prompt instead (the condition is dropped; edit keeps the face).
        prompt_face_loss: also label the codes of prompt faces, as `face_labels` (module docstring).
        decision_weight: added to the `answer_weights` of each yes/no slot of an attribute list,
            in answers: 1.0 counts every decision as much as a whole age answer (by default a
            slot weighs 1/len of its ~100-token list, the attribute names taking the rest).
        answer_weights: task -> how many answers one answer of that task counts as (default 1):
            in a multi_answer sequence a caption weighs 1 against the attribute list's ~30 with
            `decision_weight: 1`, so captions are learnt last.
        edit_change_weight: the codes of an edit's target face that differ from its source face
            (the cells the instruction changes) weigh 1 + this times its other tokens: most target
            codes are copies of the prompt's, which teach the decoder to copy rather than to change.

    With a vocabulary that has `<same>` (data.edit_same), an edit's target face writes `<same>` in
    every cell its source face already has, and a code only where the edit changes the face.
    """

    def __init__(self, vocab: Vocab, templates: Templates, max_length: int, cfg_dropout: float = 0.1,
                 prompt_face_loss: bool = False, decision_weight: float = 0.0,
                 edit_change_weight: float = 0.0, answer_weights: Mapping[str, float] | None = None) -> None:
        if not 0.0 <= cfg_dropout <= 1.0:
            raise UserError(f"cfg_dropout must lie in [0, 1], got {cfg_dropout}")
        self.vocab = vocab
        self.templates = templates
        self.max_length = max_length
        self.cfg_dropout = cfg_dropout
        self.prompt_face_loss = prompt_face_loss
        self.decision_weight = decision_weight
        self.edit_change_weight = edit_change_weight
        self.answer_weights = dict(answer_weights or {})
        bad = {t: w for t, w in self.answer_weights.items() if not w >= 0}
        if bad:
            raise UserError(f"data.answer_weights must be >= 0, got {bad}")
        verbalizer = templates.get("attributes").attributes if "attributes" in templates.tasks else None
        self.decision_ids = [vocab.token_id(verbalizer.yes), vocab.token_id(verbalizer.no)] if verbalizer else []
        self.reading_tasks = [t for t in READING_TASKS if t in templates.tasks]

    def supports(self, task: str, record: FaceRecord) -> bool:
        """Whether `record` has every label `task` needs (for multi_answer: two reading tasks' labels)."""
        return bool(can_train(task, self, lambda labels: all(record.has(label) for label in labels)))

    def multi_answer_tasks(self, record: FaceRecord) -> list[str]:
        """The reading tasks `record` has labels for, in READING_TASKS order."""
        return [t for t in self.reading_tasks if self.templates.supports(t, record)]

    def render(self, task: str, record: FaceRecord, rng: np.random.Generator) -> Sample:
        """The rendered Sample, with the condition dropped with probability `cfg_dropout`."""
        # drawn for every task, so a task's random stream does not depend on cfg settings elsewhere
        drop = rng.random() < self.cfg_dropout
        uncond = drop and self.templates.get(task).unconditional is not None
        return self.templates.render(task, record, rng, unconditional=uncond)

    def build(self, task: str, record: FaceRecord, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One training sequence.

        Returns:
            {"input_ids": (L,) int64, "labels": (L,) int64}, L <= max_length.
        """
        if task == MULTI_ANSWER:
            tasks = self.multi_answer_tasks(record)
            order = [tasks[i] for i in rng.permutation(len(tasks))]
            samples = [self.render(t, record, rng) for t in order]
            for later in samples[1:]:  # the face is already in context: ask without it
                later.prompt = " ".join(later.prompt.replace(FACE_TOKEN, " ").split())
                later.prompt_faces = []
            return self.encode_segments(samples, name=f"record {record.id!r}")
        return self.encode(self.render(task, record, rng), name=f"record {record.id!r}")

    def encode(self, sample: Sample, name: str = "sample") -> dict[str, np.ndarray]:
        """A rendered Sample -> `input_ids`/`labels` (see the module docstring for the layout)."""
        return self.encode_segments([sample], name)

    def encode_segments(self, samples: Sequence[Sample], name: str = "sample") -> dict[str, np.ndarray]:
        """`<bos> P1 <sep> A1 <eos> P2 <sep> A2 <eos> ...`: loss on every answer and its <eos>."""
        v = self.vocab
        ids, labels, face_labels = [np.array([v.bos_id])], [np.array([IGNORE])], [np.array([IGNORE])]
        weights = [np.zeros(1)]  # 1 / answer length on an answer's tokens: each answer counts once
        n_prompt = n_answer = 0
        for sample in samples:
            prompt = v.encode(sample.prompt, sample.prompt_faces)  # (P,)
            target = v.encode(sample.target, sample.target_faces)  # (A,)
            answer = np.concatenate([target, [v.eos_id]])
            n_prompt, n_answer = n_prompt + len(prompt), n_answer + len(target)
            weight = np.full(len(answer), self.answer_weights.get(sample.task, 1.0) / len(answer))
            if self.decision_weight and sample.task == "attributes":
                weight[np.isin(answer, self.decision_ids)] += self.decision_weight
            if sample.task == "edit" and sample.prompt_faces and sample.target_faces:
                cells = np.flatnonzero(v.is_image(answer))  # (h*w,) positions of the target face's codes
                changed = sample.target_faces[0] != sample.prompt_faces[0]  # (h*w,) cells the edit changes
                weight[cells[changed]] *= 1.0 + self.edit_change_weight
                if v.same_id is not None:  # the target writes only the change
                    answer[cells[~changed]] = v.same_id
            ids += [prompt, [v.sep_id], answer]
            labels += [np.full(len(prompt) + 1, IGNORE), answer]
            weights += [np.zeros(len(prompt) + 1), weight]
            face_labels += [np.where(v.is_image(prompt), prompt, IGNORE), np.full(len(answer) + 1, IGNORE)]
        input_ids = np.concatenate(ids).astype(np.int64)  # (L,)
        if len(input_ids) > self.max_length:
            tasks = "+".join(s.task for s in samples)
            raise UserError(
                f"{tasks} sequence of {name} has {len(input_ids)} tokens (prompt {n_prompt}, answer {n_answer}, "
                f"{1 + 2 * len(samples)} specials) but max_length is {self.max_length}: raise data.max_length or shorten the text"
            )
        out = {"input_ids": input_ids, "labels": np.concatenate(labels).astype(np.int64),
               "answer_weights": np.concatenate(weights).astype(np.float32)}
        if self.prompt_face_loss:
            out["face_labels"] = np.concatenate(face_labels).astype(np.int64)
        return out


def collate(examples: Sequence[Mapping[str, np.ndarray]], pad_id: int, pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Right-pad a list of built sequences into a batch.

    Args:
        examples: dicts with "input_ids" and "labels" (optionally "face_labels", "answer_weights"), (L_i,) each.
        pad_id: the vocabulary's <pad> id.
        pad_to_multiple_of: round the batch length up (e.g. 8 for tensor cores).
    Returns:
        input_ids (B, T) int64 (pad_id after the end), labels and face_labels (B, T) (-100 after
        the end), answer_weights (B, T) float32 (0 after the end), attention_mask (B, T) int64.
    """
    if not examples:
        raise ValueError("collate needs at least one example")
    lengths = np.array([len(e["input_ids"]) for e in examples])
    T = int(-(-lengths.max() // pad_to_multiple_of) * pad_to_multiple_of)
    label_keys = [k for k in ("labels", "face_labels") if k in examples[0]]
    out = {"input_ids": np.full((len(examples), T), pad_id, dtype=np.int64)}  # (B, T)
    out.update({k: np.full((len(examples), T), IGNORE, dtype=np.int64) for k in label_keys})  # (B, T) each
    if "answer_weights" in examples[0]:
        out["answer_weights"] = np.zeros((len(examples), T), dtype=np.float32)  # (B, T)
    for row, e in enumerate(examples):
        for key in out:
            out[key][row, : len(e[key])] = e[key]
    out["attention_mask"] = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)  # (B, T)
    return {k: torch.from_numpy(v) for k, v in out.items()}


class TaskSampler:
    """Draws a task name with probability proportional to its weight.

    Args:
        weights: task -> weight >= 0; tasks with weight 0 are never drawn.
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        bad = {t: w for t, w in weights.items() if not w >= 0}
        if bad:
            raise UserError(f"task weights must be >= 0, got {bad}")
        self.tasks = [t for t, w in weights.items() if w > 0]
        if not self.tasks:
            raise UserError(f"every task weight is 0: {dict(weights)}")
        w = np.array([weights[t] for t in self.tasks], dtype=np.float64)
        self.probs = w / w.sum()

    def sample(self, rng: np.random.Generator) -> str:
        """One task name."""
        return self.tasks[int(rng.choice(len(self.tasks), p=self.probs))]


@dataclass(frozen=True)
class WeightedRows:
    """One source's rows as training draws them, with the two keys every weighted source has (a
    config's `data.sources` entry, a mixture file's entry): its weight and the tasks it may train."""

    rows: Sequence[Any]  # FaceRecords or pre-tokenized Arrow rows
    weight: float = 1.0  # relative share of the examples drawn from this source
    tasks: tuple[str, ...] | None = None  # the tasks it may train (None: every weighted task)
    labels: Mapping[str, Any] | None = None  # its split's label counts from tokenize.json (None: not recorded)


def source_trains(task_weights: Mapping[str, float], tasks: Sequence[str] | None, builder: SequenceBuilder) -> list[str]:
    """The weighted tasks a source whose entry lists `tasks` (None: every weighted task) trains:
    those it lists, and multi_answer where it lists every reading task."""
    tasks = tuple(task_weights) if tasks is None else tasks
    return [t for t in task_weights if t in tasks or (t == MULTI_ANSWER and set(builder.reading_tasks) <= set(tasks))]


def can_train(task: str, builder: SequenceBuilder, has_all: Callable[[Sequence[str]], Any]) -> Any:
    """Whether what `has_all(labels)` says has every one of `labels` (one row or a source: bool;
    many rows: (N,) bool) can train `task`: it has the labels the task requires, or for
    multi_answer those of at least two reading tasks."""
    requires = builder.templates.get
    if task == MULTI_ANSWER:
        return sum(np.asarray(has_all(requires(t).requires), dtype=int) for t in builder.reading_tasks) >= 2
    return has_all(requires(task).requires)


def trainable_weights(task_weights: Mapping[str, float], trainable: set[str]) -> dict[str, float]:
    """The task weights without the tasks no source can train, each weighted one dropped with a
    warning (e.g. edit on CelebA)."""
    for task, w in task_weights.items():
        if w > 0 and task not in trainable:
            log.warning("task %r has weight %s but no source has records for it; it is dropped", task, w)
    return {t: w for t, w in task_weights.items() if t in trainable}


def trainable_rows(rows: Sequence[Any], tasks: Sequence[str], builder: SequenceBuilder) -> dict[str, np.ndarray]:
    """task -> (N,) bool: which of `rows` can train the task (`can_train`). Each label column is
    read once (`label_mask`)."""
    masks: dict[str, np.ndarray] = {}

    def has_all(required: Sequence[str]) -> np.ndarray:
        ok = np.ones(len(rows), dtype=bool)
        for label in required:
            if label not in masks:
                masks[label] = label_mask(rows, label)
            ok &= masks[label]
        return ok

    return {task: can_train(task, builder, has_all) for task in tasks}


class MultiTaskDataset(Dataset):
    """Map-style training set: item i is a pure function of (seed, i), so a resumed run continues
    the exact same data order.

    Item i: a task drawn by `task_weights`; a source drawn by its weight among the sources that
    train that task and have records for it; a record drawn uniformly among that source's records
    that have what the task requires; then paraphrase, caption and condition dropout drawn by the
    builder. All draws come from one generator seeded with (seed, i).

    Args:
        tables: source name -> its WeightedRows.
        task_weights: task -> weight. A weighted task no source can train is dropped with a
            warning (e.g. edit on CelebA); none left is an error.
        builder: the SequenceBuilder.
        seed: the data seed.
        length: the number of items (steps x batch size for one run).
        task_block: consecutive items i // task_block share one task (drawn from (seed, block)).
            With task_block = the batch size, every batch holds one task, so right padding wastes
            almost nothing (per-task lengths differ by a few tokens; mixed batches are ~64% real
            tokens on SynFace). 1 = a task per item.
    """

    def __init__(
        self, tables: Mapping[str, WeightedRows], task_weights: Mapping[str, float], builder: SequenceBuilder,
        seed: int, length: int, task_block: int = 1,
    ) -> None:
        self.builder, self.seed, self.length = builder, int(seed), int(length)
        self.task_block = int(task_block)
        templates = builder.templates
        unknown = sorted(set(task_weights) - set(templates.tasks) - {MULTI_ANSWER})
        if unknown:
            raise UserError(f"task_weights names unknown task(s) {unknown}; templates define {templates.tasks} "
                            f"(and the composite {MULTI_ANSWER!r})")
        self.tables: dict[str, Sequence[Any]] = {name: source.rows for name, source in tables.items()}
        # source -> task -> indices of the rows that can train it
        masks = {name: {task: np.flatnonzero(ok) for task, ok in trainable_rows(
                     rows, source_trains(task_weights, tables[name].tasks, builder), builder).items()}
                 for name, rows in self.tables.items()}
        self.eligible: dict[str, list[tuple[str, np.ndarray]]] = {}  # task -> (source, its rows for the task)
        self.source_probs: dict[str, np.ndarray] = {}
        for task in task_weights:
            found = [(s, per[task]) for s, per in masks.items() if len(per.get(task, ())) and tables[s].weight > 0]
            if found:
                self.eligible[task] = found
                p = np.array([float(tables[s].weight) for s, _ in found])
                self.source_probs[task] = p / p.sum()
        self.sampler = TaskSampler(trainable_weights(task_weights, set(self.eligible)))

    def __len__(self) -> int:
        return self.length

    def task_of(self, i: int) -> str:
        """The task of item i when items come in blocks of one task (task_block > 1)."""
        return self.sampler.sample(np.random.default_rng([self.seed, i // self.task_block, self.task_block]))

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not 0 <= i < self.length:
            raise IndexError(f"item {i} out of range for a dataset of {self.length}")
        rng = np.random.default_rng([self.seed, i])
        task = self.sampler.sample(rng)  # drawn even when the block decides, so the stream stays the same
        if self.task_block > 1:
            task = self.task_of(i)
        sources = self.eligible[task]
        source, rows = sources[int(rng.choice(len(sources), p=self.source_probs[task]))]
        row = int(rows[int(rng.integers(len(rows)))])
        record = to_record(self.tables[source][row])
        return self.builder.build(task, record, rng)
