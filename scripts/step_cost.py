"""The cost of one training step of each recipe variant, timed side by side on the same batches.

    python scripts/step_cost.py --tokenized runs/demo/tokenized \
        "default=" "prefix_lm=--prefix_lm=true --data.prompt_face_loss=0" "compiled=+compile" "bf16=+bf16"

A variant is `name=FLAGS`: `experiments/synface-small.yaml` with those `--key=value` overrides
(`+compile` also wraps the decoder in `torch.compile`, `+bf16` runs the step under bf16
autocast). Each variant gets its own decoder and optimisers and the batches its own config builds
from the same seed; the steps (forward, backward, clip, optimiser steps, as in talk2face_train.train) are
interleaved round-robin so that a change in machine load hits every variant alike. Prints min and median seconds per
step after the warm-up steps. Time on an idle machine: the README's recipe table charges each
variant its measured cost.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from talk2face.config import load_config
from talk2face_train.sequences import collate
from talk2face.templates import Templates
from talk2face_train.train import TrainConfig, TrainingLoss, build_data, build_decoder, build_vocab, optimizers_for, training_set

REPO = Path(__file__).resolve().parents[1]


class Variant:
    """One recipe: its decoder, optimizer, loss and batches."""

    def __init__(self, spec: str, args: argparse.Namespace) -> None:
        self.name, _, flags = spec.partition("=")
        words = shlex.split(flags)
        self.compiled = "+compile" in words
        self.bf16 = "+bf16" in words
        overrides = [w for w in words if w not in ("+compile", "+bf16")] + [f"--data.sources=[{{tokenized: {args.tokenized}}}]"]
        self.cfg = cfg = load_config(TrainConfig, str(REPO / "experiments" / "synface-small.yaml"), overrides)
        vocab = build_vocab(cfg)
        torch.manual_seed(cfg.seed)
        self.model = build_decoder(cfg, vocab).train()
        self.step_model = torch.compile(self.model, dynamic=True) if self.compiled else self.model
        self.optimizers = optimizers_for(cfg.optim, self.model)
        self.loss_of = TrainingLoss.from_config(cfg.data, vocab)
        builder, tables = build_data(cfg, vocab, Templates.load(cfg.data.templates), "train", cfg.data.cfg_dropout)
        dataset = training_set(cfg, builder, tables, (args.warmup + args.steps) * cfg.batch_size)
        self.batches = list(DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=partial(collate, pad_id=vocab.pad_id)))
        self.seconds: list[float] = []

    def step(self, i: int) -> None:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss_of(self.step_model, self.batches[i])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip)
        for optimizer in self.optimizers:
            optimizer.step()
        self.model.zero_grad(set_to_none=True)
        self.seconds.append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=FLAGS, e.g. 'prefix_lm=--prefix_lm=true --data.prompt_face_loss=0'")
    parser.add_argument("--tokenized", required=True, help="a pre-tokenized folder (talk2face tokenize)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps per variant (compilation)")
    args = parser.parse_args(argv)
    variants = [Variant(spec, args) for spec in args.variants]
    for i in range(args.warmup + args.steps):
        for v in variants:
            v.step(i)
    results = {}
    print(f"seconds per training step ({args.steps} after {args.warmup} warm-up, interleaved, "
          f"{torch.get_num_threads()} threads):")
    base = None
    for v in variants:
        timed = v.seconds[args.warmup:]
        median = statistics.median(timed)
        base = base or median
        results[v.name] = {"min_s": min(timed), "median_s": median, "ratio": median / base}
        print(f"  {v.name:<16} min {min(timed):.3f}  median {median:.3f}  x{median / base:.2f} of the first")
    return results


if __name__ == "__main__":
    main()
