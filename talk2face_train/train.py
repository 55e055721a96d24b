"""Train the decoder on every task at once.

    accelerate launch -m talk2face_train.train experiments/synface-small.yaml [--optim.lr=3e-4 ...]
    python -m talk2face_train.train experiments/synface-tiny.yaml --resume=latest

One flat loop for CPU, one GPU, many GPUs and nodes (the accelerate config decides). The training
data is a map-style dataset whose item i is a pure function of (seed, i), so resuming from a
checkpoint skips the batches already seen and continues the exact data order and LR schedule.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator, PartialState
from accelerate.utils import LoggerType, TorchDynamoPlugin, is_compiled_module, send_to_device, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from talk2face.cli import ConfigCommand, run_standalone
from talk2face import face_grid, prefix_lm, shipped
from talk2face.checkpoint import save_checkpoint_folder
from talk2face.config import load_config, to_dict
from talk2face.data.mixture import check_weight_and_tasks
from talk2face.data.record import ATTRIBUTES, TASKS
from talk2face_train.tokenized import label_summary, load_tokenized, row_to_record
from talk2face.errors import UserError
from talk2face.lexicon import WORD
from talk2face.modeling import build_model, init_image_embeddings
from talk2face_train.checkpoints import checkpoints_dir, find_checkpoint, read_state, save_state
from talk2face_train.optimizers import OPTIMIZERS, build_optimizers, check_sharding
from talk2face_train.precision import resolve as resolve_precision
from talk2face_train.precision import accelerator_for, step_probe
from talk2face_train.precision import validate as validate_precision
from talk2face_train.pretrained_lm import check_pretrained, load_pretrained, pretrained_tokenizer
from talk2face_train.schedule import warmup_cosine
from talk2face_train.sequences import MULTI_ANSWER, MultiTaskDataset, SequenceBuilder, WeightedRows, collate
from talk2face_train.streaming import StreamingMultiTaskDataset
from talk2face.templates import Templates
from talk2face.text_tokenizers import load_text_tokenizer
from talk2face.vocab import Vocab
from talk2face.vqgan import VQGAN

log = logging.getLogger(__name__)


@dataclass
class SourceConfig:
    tokenized: str  # a pre-tokenized Arrow folder written by `talk2face tokenize`
    weight: float = 1.0  # relative share of training examples drawn from this source
    tasks: list[str] = field(default_factory=lambda: list(TASKS))  # tasks this source can train


@dataclass
class DataConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    vqgan: str = ""  # the VQGAN folder the codes were made with; copied into the final model folder
    # a tokenizer.json, a SentencePiece tokenizer.model or a folder with one (talk2face.text_tokenizers),
    # e.g. trained by talk2face_train.text_tokenizer; not used with init_from (the LM's own is)
    text_tokenizer: str = str(shipped.TEXT_TOKENIZER)
    templates: str = str(shipped.TEMPLATES)  # one YAML file per task
    task_weights: dict[str, float] = field(default_factory=lambda: {t: 1.0 for t in TASKS})
    max_length: int = 256  # context of the decoder: the longest prompt + answer
    cfg_dropout: float = 0.1  # share of text_to_face/edit examples whose condition is dropped (for CFG)
    # weight of the mean loss on the codes of prompt faces, next to the answers' mean loss (0 = no
    # such loss): every face in the data then trains the image model, not only text-to-face targets
    prompt_face_loss: float = 0.0
    # the answers' loss: "answer" = mean over answers of each answer's mean token loss (a one-token
    # age counts as much as a 100-token attribute list in one multi_answer sequence); "token" = mean
    # over all answer tokens of the batch (transformers' own loss)
    answer_loss: str = "answer"
    # > 0: an age answer's loss is against a Gaussian of this many years around it (TrainingLoss)
    age_sigma: float = 0.0
    # answer_loss "answer": extra weight of each attribute yes/no slot, in answers (SequenceBuilder)
    decision_weight: float = 0.0
    # answer_loss "answer": extra weight of the target codes an edit changes (SequenceBuilder)
    edit_change_weight: float = 0.0
    # an edit's target face writes <same> in every cell its source face already has, so the edit
    # learns only what it changes, not how to copy the rest (talk2face.vocab; README, edits as changes)
    edit_same: bool = False
    # answer_loss "answer": task -> weight of each of its answers (default 1; SequenceBuilder)
    answer_weights: dict[str, float] = field(default_factory=dict)
    val_per_task: int = 64  # validation examples per task for the periodic validation loss
    task_per_batch: bool = True  # one task per micro-batch: ~1.5x fewer padding tokens on SynFace
    # read the sources in shuffled blocks of rows instead of indexing every row before the first
    # step: start-up and memory that do not grow with the data (talk2face_train/streaming.py)
    streaming: bool = False
    streaming_block: int = 4096  # data.streaming: rows per shuffled block
    # image-token embeddings start as a projection of the VQGAN's code vectors (modeling.py); on
    # SynFace at 1000 steps every task's validation loss was lower than from random rows
    codebook_embeddings: bool = True


@dataclass
class OptimConfig:
    # "adamw", or "muon": Muon on the layers' weight matrices, AdamW on embeddings, norms and
    # biases, both at `lr` (talk2face_train.optimizers; README, recipe experiments)
    name: str = "adamw"
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.0  # the cosine decays to lr * this
    weight_decay: float = 0.1  # on matrices only; norms and biases are not decayed
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_steps: int = 100  # linear warm-up
    max_steps: int = 1000  # optimizer steps
    grad_accum: int = 1  # micro-batches per optimizer step
    clip: float = 1.0  # gradient-norm clipping


@dataclass
class TrainConfig:
    model: str = "small"  # a key of talk2face.modeling.MODEL_PRESETS; not used with init_from
    # a local Hugging Face Llama causal-LM folder to start from: its config is the shape, its tokenizer
    # the text side, its weights the start (talk2face_train.pretrained_lm); "" = random weights
    init_from: str = ""
    # a learnt embedding of each image code's cell in the face grid (talk2face.face_grid)
    face_grid: bool = False
    # bidirectional attention over `<bos> prompt <sep>`, causal after it (talk2face.prefix_lm);
    # needs data.prompt_face_loss 0
    prefix_lm: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 32  # sequences per micro-batch per process
    seed: int = 0
    output_dir: str = "runs/synface-small"
    mixed_precision: str = "auto"  # "auto" (fp32 or bf16 autocast, measured: talk2face_train.precision) | "no" | "bf16"
    # the decoder compiled by torch.compile (accelerate's dynamo plugin, inductor, dynamic shapes):
    # the first steps compile (seconds to a minute), the later ones run faster (README, step cost)
    compile: bool = False
    save_every: int = 500  # steps between resumable checkpoints (accelerate save_state)
    keep_checkpoints: int = 2  # older resumable checkpoints are deleted
    # every this many steps also write a complete model folder to <output_dir>/evaluable/step_N,
    # kept for good: the learning curves (scripts/learning_curves.py) evaluate them (0 = never);
    # each names data.vqgan instead of copying it
    evaluable_every: int = 0
    eval_every: int = 250  # steps between validation-loss passes
    log_every: int = 10
    log_with: str | list[str] = "tensorboard"  # accelerate tracker name(s) ([tensorboard, wandb]), or "none"
    project: str = "talk2face"  # the trackers' project (tensorboard: the folder under output_dir)
    resume: str | None = None  # "latest", or a checkpoint folder to continue from
    num_workers: int = 0  # DataLoader workers; batches are cheap numpy concatenations


def build_data(cfg: TrainConfig, vocab: Vocab, templates: Templates, split: str, cfg_dropout: float):
    """The tables of records per source and the builder that turns them into sequences."""
    builder = SequenceBuilder(vocab, templates, max_length=cfg.data.max_length, cfg_dropout=cfg_dropout,
                              prompt_face_loss=cfg.data.prompt_face_loss > 0, decision_weight=cfg.data.decision_weight,
                              edit_change_weight=cfg.data.edit_change_weight, answer_weights=cfg.data.answer_weights)
    tables = {}
    for src in cfg.data.sources:
        check_weight_and_tasks(src.weight, src.tasks, f"data.sources[{src.tokenized}]", known=(*TASKS, MULTI_ANSWER))
        dataset, meta = load_tokenized(src.tokenized)
        if split not in dataset:
            raise UserError(f"{src.tokenized} has no {split!r} split (has {sorted(dataset)})")
        if meta["n_codes"] != vocab.n_codes:
            raise UserError(f"{src.tokenized} uses {meta['n_codes']} codes but the vocabulary has {vocab.n_codes}")
        check_vqgan(src.tokenized, meta, cfg.data.vqgan)
        tables[src.tokenized] = WeightedRows(dataset[split], src.weight, tuple(src.tasks), label_summary(meta, split))
    return builder, tables


def check_vqgan(tokenized: str, meta: dict, vqgan: str) -> None:
    """Refuse codes made by another VQGAN than the one the checkpoint will decode them with."""
    made_by = meta.get("vqgan_fingerprint")
    if made_by is None:
        raise UserError(f"{tokenized}/tokenize.json records no vqgan_fingerprint (tokenized by an older version): "
                        f"tokenize it again with {vqgan}")
    given = VQGAN.fingerprint(vqgan)
    if made_by != given:
        raise UserError(f"{tokenized} was tokenized by the VQGAN {meta.get('vqgan')} (weights {made_by}), but "
                        f"data.vqgan is {vqgan} (weights {given}): the codes would decode with the wrong codebook")


def trained_attributes(tables: dict[str, WeightedRows]) -> list[str]:
    """Attribute names with labels in any source that trains the attribute task (ATTRIBUTES order)."""
    known: set[str] = set()
    for source in tables.values():
        if "attributes" in source.tasks and len(source.rows):
            if source.labels is not None:  # counted by tokenize
                known.update(source.labels["attributes_known"])
            else:
                labelled = (np.asarray(source.rows.with_format("numpy")["attributes"]) >= 0).any(0)  # (N, 40) -> (40,)
                known.update(a for a, k in zip(ATTRIBUTES, labelled) if k)
    return [a for a in ATTRIBUTES if a in known]


def caption_words(tables: dict[str, WeightedRows]) -> list[str]:
    """The words of every training caption of the sources that train text-to-face or caption: what
    an unknown word of a user's description may be rewritten to (talk2face.lexicon)."""
    words: set[str] = set()
    for source in tables.values():
        if {"text_to_face", "caption"} & set(source.tasks) and len(source.rows):
            if source.labels is not None:  # collected by tokenize
                words.update(source.labels["caption_words"])
                continue
            for captions in source.rows["captions"]:
                words.update(w.lower() for c in captions or () for w in WORD.findall(c))
    return sorted(words)


def validation_batches(cfg: TrainConfig, vocab: Vocab, templates: Templates) -> dict[str, dict[str, torch.Tensor]]:
    """A fixed batch of validation sequences per trained task (no condition dropout); multi_answer
    also validates its reading tasks one by one, in the single-question form inference uses."""
    builder, tables = build_data(cfg, vocab, templates, "validation", cfg_dropout=0.0)
    rng = np.random.default_rng(cfg.seed)
    trained = [t for t, w in cfg.data.task_weights.items() if w > 0]
    if MULTI_ANSWER in trained:
        trained += [t for t in builder.reading_tasks if t not in trained]
    per_task: dict[str, list] = {t: [] for t in trained}
    for source in tables.values():
        for row in source.rows.select(range(min(len(source.rows), 4 * cfg.data.val_per_task))):
            record = row_to_record(row)
            for task in per_task:
                if task in source.tasks and len(per_task[task]) < cfg.data.val_per_task and builder.supports(task, record):
                    per_task[task].append(builder.build(task, record, rng))
    return {t: collate(ex, vocab.pad_id) for t, ex in per_task.items() if ex}


@torch.no_grad()
def validation_loss(model, accelerator: Accelerator, batches: dict[str, dict[str, torch.Tensor]], batch_size: int) -> dict[str, float]:
    """Mean target-token loss per task on the fixed validation batches."""
    model.eval()
    losses = {}
    for task, batch in batches.items():
        total, count = 0.0, 0
        for start in range(0, len(batch["input_ids"]), batch_size):
            chunk = {k: v[start : start + batch_size].to(accelerator.device) for k, v in batch.items()}
            with accelerator.autocast():
                logits = model(input_ids=chunk["input_ids"], attention_mask=chunk["attention_mask"]).logits
            targets = chunk["labels"][:, 1:]  # (B, T-1)
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
            )
            total += nll.item()
            count += int((targets != -100).sum())
        losses[task] = total / max(count, 1)
    model.train()
    return losses


@dataclass(frozen=True)
class TrainingLoss:
    """The loss of a batch: the answers' loss (DataConfig.answer_loss), plus `face_weight` x the
    mean loss on prompt-face codes, kept apart so that 64 prompt codes do not drown a one-token
    age answer. With `age_sigma` > 0 a number answer (an age) is scored against a Gaussian over
    the numbers 0..120 around it (label distribution learning for age, Gao et al. 2017): a
    prediction one year off is then nearly right, and each example teaches its neighbouring ages."""

    face_weight: float = 0.0
    per_answer: bool = True
    age_sigma: float = 0.0
    number_ids: torch.Tensor | None = None  # (121,) vocabulary ids of "0".."120"

    @classmethod
    def from_config(cls, data: DataConfig, vocab: Vocab) -> TrainingLoss:
        numbers = vocab.number_token_ids
        return cls(data.prompt_face_loss, data.answer_loss == "answer", data.age_sigma,
                   None if numbers is None else torch.from_numpy(numbers))

    def number_nll(self, logits: torch.Tensor, labels: torch.Tensor, nll: torch.Tensor) -> torch.Tensor:
        """(N, V) logits, (N,) labels, (N,) nll -> nll with number targets scored against a Gaussian."""
        numbers = self.number_ids.to(labels.device)
        value = torch.full((logits.shape[1],), -1, dtype=torch.long, device=labels.device)
        value[numbers] = torch.arange(len(numbers), device=labels.device)
        value = value[labels.clamp(min=0)]  # (N,) the number a label writes, -1 if none
        at = (labels >= 0) & (value >= 0)
        if not at.any():
            return nll
        log_p = logits[at].log_softmax(-1)[:, numbers]  # (n, 121)
        ages = torch.arange(len(numbers), device=labels.device, dtype=log_p.dtype)
        target = (-(ages - value[at, None]) ** 2 / (2 * self.age_sigma**2)).softmax(-1)  # (n, 121)
        return nll.masked_scatter(at, -(target * log_p).sum(-1))

    def __call__(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[:, :-1].float().flatten(0, 1)  # (B*(T-1), V): position t predicts token t+1
        labels = batch["labels"][:, 1:].flatten()
        nll = F.cross_entropy(logits, labels, ignore_index=-100, reduction="none")  # (B*(T-1),)
        if self.age_sigma > 0:
            nll = self.number_nll(logits, labels, nll)
        weights = batch["answer_weights"][:, 1:].flatten() if self.per_answer else (labels != -100).float()
        loss = (nll * weights).sum() / weights.sum()
        face_labels = batch.get("face_labels")
        if self.face_weight <= 0 or face_labels is None or not (face_labels != -100).any():
            return loss
        faces = F.cross_entropy(logits, face_labels[:, 1:].flatten(), ignore_index=-100)
        return loss + self.face_weight * faces


def build_vocab(cfg: TrainConfig) -> Vocab:
    """The unified vocabulary: the text tokenizer's pieces (the init_from LM's own, else
    data.text_tokenizer's), the specials and the codes of the data."""
    n_codes = load_tokenized(cfg.data.sources[0].tokenized)[1]["n_codes"]
    if cfg.init_from:
        text, source = pretrained_tokenizer(cfg.init_from), f"the tokenizer of init_from={cfg.init_from}"
    else:
        text, source = load_text_tokenizer(cfg.data.text_tokenizer, "data.text_tokenizer"), cfg.data.text_tokenizer
    vocab = Vocab(text, n_codes=n_codes, same_token=cfg.data.edit_same, source=source)
    if cfg.data.age_sigma > 0 and vocab.number_token_ids is None:
        longest = max(len(a) for a in vocab.age_ids)
        raise UserError(f"data.age_sigma={cfg.data.age_sigma} needs every age 0..120 to be one token, but {source} "
                        f"writes an age as up to {longest} tokens: set data.age_sigma=0")
    return vocab


def training_set(cfg: TrainConfig, builder: SequenceBuilder, tables: dict[str, WeightedRows], sequences: int,
                 process: int = 0, processes: int = 1) -> MultiTaskDataset | StreamingMultiTaskDataset:
    """`sequences` training sequences in the deterministic order of `cfg.seed` (whole micro-batches
    of one task with data.task_per_batch), streamed with data.streaming (process `process` of
    `processes` then reads only its own batches)."""
    task_block = cfg.batch_size if cfg.data.task_per_batch else 1
    if cfg.data.streaming:
        return StreamingMultiTaskDataset(tables, cfg.data.task_weights, builder, seed=cfg.seed, length=sequences,
                                         task_block=task_block, block_rows=cfg.data.streaming_block,
                                         batch_size=cfg.batch_size, process=process, processes=processes)
    return MultiTaskDataset(tables, cfg.data.task_weights, builder, seed=cfg.seed, length=sequences, task_block=task_block)


def build_decoder(cfg: TrainConfig, vocab: Vocab) -> torch.nn.Module:
    """The decoder `cfg` describes, before training: the preset freshly initialised (or the
    init_from LM, resized to the vocabulary), image rows, face grid, attention."""
    if not cfg.init_from:  # built before the VQGAN loads, which draws random numbers too: the same start as ever
        model = build_model(cfg.model, len(vocab), cfg.data.max_length, vocab.pad_id, vocab.bos_id, vocab.eos_id)
    vqgan = VQGAN.from_pretrained(cfg.data.vqgan) if cfg.data.codebook_embeddings or cfg.face_grid else None
    codebook = vqgan.quantize.embedding.weight if cfg.data.codebook_embeddings else None  # (K, D)
    if cfg.init_from:
        model = load_pretrained(cfg.init_from, vocab, cfg.data.max_length, codebook)
    elif codebook is not None:
        init_image_embeddings(model, codebook, vocab.image_token_range.start)
    if cfg.face_grid:
        face_grid.install(model, vocab.cell_token_range, vqgan.grid_size[0] * vqgan.grid_size[1])
    if cfg.prefix_lm:
        prefix_lm.install(model, vocab.sep_id)
    return model


def check_config(cfg: TrainConfig) -> None:
    """Refuse, before any work, the values training would fail on late or train wrongly with."""
    positive = {"batch_size": cfg.batch_size, "save_every": cfg.save_every, "eval_every": cfg.eval_every,
                "log_every": cfg.log_every, "keep_checkpoints": cfg.keep_checkpoints,
                "optim.max_steps": cfg.optim.max_steps, "optim.grad_accum": cfg.optim.grad_accum,
                "data.streaming_block": cfg.data.streaming_block}
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{key}={value}: must be at least 1")
    trackers(cfg.log_with)
    if not (math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0):
        raise UserError(f"optim.lr={cfg.optim.lr}: must be a positive number")
    if cfg.optim.name not in OPTIMIZERS:
        raise UserError(f"optim.name={cfg.optim.name!r} is not one of {list(OPTIMIZERS)}")
    validate_precision(cfg.mixed_precision)
    if not cfg.data.sources:
        raise UserError("data.sources is empty: name at least one pre-tokenized folder")
    unknown = sorted(set(cfg.data.answer_weights) - set(TASKS))
    if unknown:
        raise UserError(f"data.answer_weights names unknown task(s) {unknown}; tasks are {list(TASKS)}")
    if cfg.data.answer_loss not in ("answer", "token"):
        raise UserError(f"data.answer_loss={cfg.data.answer_loss!r} is not 'answer' or 'token'")
    if cfg.prefix_lm and cfg.data.prompt_face_loss > 0:
        raise UserError(f"prefix_lm=true with data.prompt_face_loss={cfg.data.prompt_face_loss}: a prompt code sees "
                        "itself through the prefix's bidirectional attention; set data.prompt_face_loss=0")
    if cfg.init_from:
        check_pretrained(cfg.init_from, cfg.data.max_length)
    out = Path(cfg.output_dir)
    earlier = [p.name for p in (out / "final", checkpoints_dir(out)) if p.exists()]
    if cfg.resume is None and earlier:
        raise UserError(f"output_dir={out} already holds a run ({', '.join(earlier)}): pass --resume=latest to "
                        "continue it, or choose another output_dir")


def trackers(log_with: str | list[str]) -> list[str]:
    """The accelerate trackers `log_with` names ("none": none), refused if accelerate has no such one."""
    # a command-line override of this str | list field arrives as its text (talk2face.config)
    names = yaml.safe_load(log_with) if isinstance(log_with, str) else log_with
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"log_with={log_with!r}: expected a tracker name or a list of them")
    names = [n for n in names if n != "none"]
    unknown = sorted(set(names) - set(LoggerType.list()))
    if unknown:
        raise UserError(f"log_with names unknown tracker(s) {unknown}; accelerate has {LoggerType.list()} (or none)")
    return names


def installed_trackers(names: list[str], warn: bool) -> list[str]:
    """The trackers whose package is installed: a missing one (the default tensorboard is an
    optional extra) costs one warning line, not the run."""
    missing = [n for n in names if n != "all" and importlib.util.find_spec(n) is None]
    if missing and warn:
        log.warning("log_with: %s not installed (pip install %s); training on without %s",
                    ", ".join(missing), " ".join(missing), "them" if len(missing) > 1 else "it")
    return [n for n in names if n not in missing]


def hyperparameters(config: dict, prefix: str = "") -> dict[str, bool | int | float | str | None]:
    """A nested config as the flat scalars trackers take: {"optim": {"lr": 1e-3}} -> {"optim.lr": 1e-3},
    list items by index ("data.sources.0.tokenized")."""
    flat: dict[str, bool | int | float | str | None] = {}
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            value = dict(enumerate(value))
        if isinstance(value, dict):
            flat.update(hyperparameters(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def optimizers_for(optim: OptimConfig, model: torch.nn.Module) -> list[torch.optim.Optimizer]:
    """The optimisers `optim` names for `model` (one, or Muon beside AdamW)."""
    return build_optimizers(model, optim.name, optim.lr, optim.weight_decay, tuple(optim.betas))


def save_model_folder(accelerator: Accelerator, model: torch.nn.Module, directory: Path, vocab: Vocab,
                      cfg: TrainConfig, card: dict, share_vqgan: bool) -> None:
    """Write the model folder of the prepared `model`. Every process calls this: gathering the full
    weights of a sharded model (FSDP, DeepSpeed ZeRO-3) is a collective; the main process writes."""
    # past the compiled wrapper, whose state dict would prefix every name with `_orig_mod.`
    state_dict = accelerator.get_state_dict(model._orig_mod if is_compiled_module(model) else model)
    if accelerator.is_main_process:
        save_checkpoint_folder(directory, accelerator.unwrap_model(model, keep_torch_compile=False), vocab, cfg.data.vqgan,
                               cfg.data.templates, to_dict(cfg), card, share_vqgan=share_vqgan, state_dict=state_dict)


@dataclass
class TrainResult:
    final_dir: Path  # the Talk2Face checkpoint folder
    losses: list[float]  # training loss per optimizer step run in this process
    tokens_per_s: float  # steady-state throughput (first steps excluded: allocation and warm-up)


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) the training described by `cfg`."""
    check_config(cfg)

    # the processes and device (the Accelerator waits for the precision); without a GPU, processes
    # started by torchrun join over gloo (accelerate's MULTI_CPU asks for cpu=True)
    state = PartialState(cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    vocab = build_vocab(cfg)
    templates = Templates.load(cfg.data.templates)

    builder, tables = build_data(cfg, vocab, templates, "train", cfg.data.cfg_dropout)
    micro_batches = cfg.optim.max_steps * cfg.optim.grad_accum * state.num_processes
    train_set = training_set(cfg, builder, tables, micro_batches * cfg.batch_size, state.process_index, state.num_processes)
    loader = DataLoader(
        train_set, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
        collate_fn=partial(collate, pad_id=vocab.pad_id),
    )
    val_batches = validation_batches(cfg, vocab, templates)

    model = build_decoder(cfg, vocab)
    loss_of = TrainingLoss.from_config(cfg.data, vocab)
    with state.main_process_first():  # the main process measures and records; the others read it
        first = list(itertools.islice(iter(train_set), cfg.batch_size))
        first_batch = {k: v.to(state.device) for k, v in collate(first, vocab.pad_id).items()}
        probe = step_probe(model, partial(optimizers_for, cfg.optim), lambda m: loss_of(m, first_batch),
                           state.device.type)
        precision = resolve_precision(cfg.mixed_precision, cfg.output_dir, probe, state.device.type, log=state.print)
    log_with = installed_trackers(trackers(cfg.log_with), warn=state.is_main_process)
    accelerator = accelerator_for(
        precision,
        gradient_accumulation_steps=cfg.optim.grad_accum,
        log_with=log_with or None,
        project_dir=cfg.output_dir,
        dynamo_plugin=TorchDynamoPlugin(backend="inductor", dynamic=True) if cfg.compile else None,
    )
    check_sharding(cfg.optim.name, accelerator.distributed_type)
    optimizers = optimizers_for(cfg.optim, model)
    # accelerate steps a prepared scheduler once per process per optimizer step.
    n = accelerator.num_processes
    schedulers = [torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: warmup_cosine(
        i, cfg.optim.warmup_steps * n, cfg.optim.max_steps * n, cfg.optim.min_lr_ratio)) for optimizer in optimizers]
    # a stream hands each process its own batches; accelerate would read it on the main process and
    # dispatch the batches, which needs every process's batch padded to one length
    if cfg.data.streaming:
        model, *prepared = accelerator.prepare(model, *optimizers, *schedulers)
    else:
        model, loader, *prepared = accelerator.prepare(model, loader, *optimizers, *schedulers)
    optimizers, schedulers = prepared[: len(optimizers)], prepared[len(optimizers) :]

    step = 0
    resume_from = find_checkpoint(cfg.output_dir, cfg.resume)
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        step = read_state(resume_from)["step"]
        accelerator.print(f"resumed from {resume_from} at step {step}")
    if cfg.data.streaming:  # the stream seeks its first item; skipping would build every batch before it
        train_set.start = step * cfg.optim.grad_accum * accelerator.num_processes * cfg.batch_size
        batches = (send_to_device(batch, accelerator.device) for batch in loader)
    else:
        batches = accelerator.skip_first_batches(loader, step * cfg.optim.grad_accum) if step else loader

    answered = set(train_set.sampler.tasks) - {MULTI_ANSWER}  # the tasks the model answers
    if MULTI_ANSWER in train_set.sampler.tasks:
        answered |= set(builder.reading_tasks)
    card = {
        "tasks": sorted(answered),
        "attributes": trained_attributes(tables),
        "caption_words": caption_words(tables),
        "max_length": cfg.data.max_length,
        # prefix-LM attention: load with talk2face.checkpoint.load_decoder, never a bare AutoModel
        "attention": "prefix_lm" if cfg.prefix_lm else "causal",
        "processes": accelerator.num_processes,  # data-parallel ranks (the global batch is this x batch_size)
    }
    if cfg.init_from:  # the pretrained LM it started from (talk2face_train.pretrained_lm)
        card["init_from"] = str(Path(cfg.init_from).resolve())

    def save(directory: Path, share_vqgan: bool) -> None:  # on every process (save_model_folder)
        card.update(step=step, trained_tokens=tokens)  # tokens this process trained on (all processes)
        save_model_folder(accelerator, model, directory, vocab, cfg, card, share_vqgan)

    if log_with:
        accelerator.init_trackers(cfg.project, config=hyperparameters(to_dict(cfg)))
    progress = tqdm(total=cfg.optim.max_steps, initial=step, desc="train", disable=not accelerator.is_local_main_process)
    losses: list[float] = []
    tokens, t0 = 0, time.perf_counter()
    steady_tokens, steady_t0, steady_t1 = 0, None, None  # throughput counted from the 3rd step on
    model.train()
    for batch in batches:
        with accelerator.accumulate(model):
            loss = loss_of(model, batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.optim.clip)
                # checked BEFORE the step: the weights (and any checkpoint of them) stay finite
                bad = accelerator.reduce(torch.stack([loss.detach().float(), grad_norm.float()]), "sum")
                if not torch.isfinite(bad).all():
                    raise RuntimeError(f"loss {loss.item()} / gradient norm {grad_norm.item()} at step {step + 1}: "
                                       f"stopped before the update, weights untouched (lower optim.lr?)")
            for optimizer, scheduler in zip(optimizers, schedulers):
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        batch_tokens = int(batch["attention_mask"].sum()) * accelerator.num_processes
        tokens += batch_tokens
        steady_tokens += batch_tokens if steady_t0 is not None else 0
        if not accelerator.sync_gradients:
            continue
        step += 1
        loss_value = accelerator.reduce(loss.detach(), "mean").item()
        losses.append(loss_value)
        if len(losses) == 2:
            steady_t0 = time.perf_counter()
        steady_t1 = time.perf_counter()
        tokens_per_s = tokens / (steady_t1 - t0)
        progress.update(1)
        progress.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens_per_s:,.0f}")
        if step % cfg.log_every == 0:
            accelerator.log({"train/loss": loss_value, "train/lr": schedulers[0].get_last_lr()[0], "train/tokens_per_s": tokens_per_s}, step=step)
        if step % cfg.eval_every == 0 or step == cfg.optim.max_steps:
            val = validation_loss(model, accelerator, val_batches, cfg.batch_size)
            accelerator.log({f"val/{t}": v for t, v in val.items()}, step=step)
            accelerator.print(f"step {step} validation loss: " + ", ".join(f"{t} {v:.3f}" for t, v in val.items()))
        if step % cfg.save_every == 0 and step < cfg.optim.max_steps:
            save_state(accelerator, cfg.output_dir, step, cfg.keep_checkpoints)
        if cfg.evaluable_every and step % cfg.evaluable_every == 0:
            save(Path(cfg.output_dir) / "evaluable" / f"step_{step:08d}", share_vqgan=True)
        if step >= cfg.optim.max_steps:
            break
    progress.close()
    steady_s = steady_t1 - steady_t0 if steady_t0 is not None else float("nan")

    final = Path(cfg.output_dir) / "final"
    accelerator.wait_for_everyone()
    save(final, share_vqgan=False)
    accelerator.print(f"saved {final}")
    accelerator.end_training()
    return TrainResult(final, losses, steady_tokens / steady_s)


def main(argv: list[str] | None = None) -> TrainResult:
    """Train from a YAML config plus `--key=value` overrides."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("--"):
        raise UserError("usage: python -m talk2face_train.train CONFIG.yaml [--key=value ...]")
    return train(load_config(TrainConfig, argv[0], argv[1:]))


command = ConfigCommand(main, TrainConfig)  # `talk2face train`


if __name__ == "__main__":  # a user's mistake prints one line and exits 2, never a traceback
    sys.exit(run_standalone(command, "python -m talk2face_train.train"))
