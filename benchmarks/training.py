"""Training-speed benchmark: bf16 vs fp32, loop overhead, model FLOP utilisation.

    python -m benchmarks.training [--data DIR] [--steps 12]

Runs `talk2face_train.train` on the `synface-small` config side by side in one process:
1. the matmul rates of this machine, fp32 and bf16 (benchmarks.matmul; MFU is against the best),
2. `talk2face_train.train` with bf16 autocast and with fp32: tokens/s and the first losses of each,
3. a bare PyTorch loop (forward, backward, the config's optimiser steps under the same autocast) over the very
   same batches and model (compiled where the config compiles it): the training loop's overhead is the ratio
   of the two; and the same loop with the model `torch.compile`d, for what compiling would gain,
4. model FLOP utilisation: (6 N + 12 L H T) FLOPs per token (PaLM, Chowdhery et al. 2022,
   appendix B) times tokens/s, over the best matmul rate measured in any precision.
Without --data it renders a small SynFace, tokenizes it with an untrained VQGAN (speed does not
depend on the codes' quality) and uses that.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks.matmul import best_matmul_rate
from talk2face import shipped
from talk2face.config import load_config
from talk2face.modeling import MODEL_PRESETS, build_model
from talk2face_train.sequences import collate
from talk2face_train.train import TrainConfig, TrainingLoss, build_data, optimizers_for, train, training_set
from talk2face.templates import Templates
from talk2face.vocab import Vocab

REPO = Path(__file__).resolve().parents[1]


def make_data(root: Path, n: int = 1500) -> tuple[Path, Path]:
    """A SynFace of n faces tokenized by an untrained `synface-64` VQGAN: (tokenized dir, vqgan dir)."""
    from talk2face_train.pretokenize import tokenize
    from talk2face.data.synface import generate
    from talk2face.vqgan import VQGAN, VQGAN_PRESETS

    generate(n=n, size=64, seed=0, out_dir=root / "synface", progress=False)
    torch.manual_seed(0)
    VQGAN(VQGAN_PRESETS["synface-64"]).save_pretrained(root / "vqgan")
    tokenize(root / "vqgan", root / "synface", root / "tok", batch_size=128)
    return root / "tok", root / "vqgan"


def flops_per_token(cfg: TrainConfig, vocab_size: int, seq_len: float) -> float:
    """Training FLOPs per token: 6 N (N = matmul parameters incl. the LM head) + 12 L H T attention."""
    p = MODEL_PRESETS[cfg.model]
    n = p.n_layer * (4 * p.hidden**2 + 3 * p.hidden * p.intermediate) + vocab_size * p.hidden
    return 6 * n + 12 * p.n_layer * p.hidden * seq_len


def training_batches(cfg: TrainConfig, vocab: Vocab, steps: int) -> list[dict[str, torch.Tensor]]:
    """The first `steps` micro-batches `cfg` trains on (one process), collated."""
    builder, tables = build_data(cfg, vocab, Templates.load(cfg.data.templates), "train", cfg.data.cfg_dropout)
    dataset = training_set(cfg, builder, tables, steps * cfg.batch_size)
    return list(DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=partial(collate, pad_id=vocab.pad_id)))


def mean_length(batches: list[dict[str, torch.Tensor]]) -> float:
    """Tokens per sequence, padding left out, over `batches`."""
    return float(np.mean([b["attention_mask"].sum(1).float().mean() for b in batches]))


def bare_loop(cfg: TrainConfig, batches: list[dict[str, torch.Tensor]], vocab: Vocab, bf16: bool,
              compiled: bool = False) -> float:
    """Tokens/s of plain forward/backward/optimiser steps over `batches`, timed on a second pass (the
    first warms up: allocation, and for a model `torch.compile`d as `compile: true` compiles it, every
    graph the batches need), the model compiled where `compiled`."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, len(vocab), cfg.data.max_length, vocab.pad_id, vocab.bos_id, vocab.eos_id)
    forward = torch.compile(model, dynamic=True) if compiled else model
    optimizers = optimizers_for(cfg.optim, model)
    loss_of = TrainingLoss.from_config(cfg.data, vocab)

    def step(batch: dict[str, torch.Tensor]) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(forward, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip)
        for optimizer in optimizers:
            optimizer.step()
        model.zero_grad(set_to_none=True)

    for batch in batches:
        step(batch)
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    return sum(int(batch["attention_mask"].sum()) for batch in batches) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a tokenized folder (talk2face tokenize); default: build a small one")
    parser.add_argument("--vqgan", help="the VQGAN folder of --data")
    parser.add_argument("--config", default=str(REPO / "experiments" / "synface-small.yaml"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run, e.g. model=small (repeatable)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, vqgan = (Path(args.data), Path(args.vqgan)) if args.data else make_data(tmp)
        overrides = [
            f"--data.sources=[{{tokenized: {data}}}]", f"--data.vqgan={vqgan}", f"--optim.max_steps={args.steps}",
            "--log_with=none", f"--save_every={10**9}", f"--eval_every={10**9}", "--data.val_per_task=1",
            f"--data.text_tokenizer={shipped.TEXT_TOKENIZER}", f"--data.templates={shipped.TEMPLATES}",
            *(f"--{override}" for override in args.set),
        ]
        peak, where, rates = best_matmul_rate()
        print("matmul: " + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items()) + " GFLOP/s")

        runs = {}
        for precision in ("bf16", "no"):
            cfg = load_config(TrainConfig, args.config, overrides + [f"--mixed_precision={precision}", f"--output_dir={tmp / precision}"])
            runs[precision] = train(cfg)  # each run sets its own precision (precision.accelerator_for)
        cfg = load_config(TrainConfig, args.config, overrides)
        vocab = Vocab.from_pretrained(runs["bf16"].final_dir)
        batches = training_batches(cfg, vocab, args.steps)
        bare = bare_loop(cfg, batches, vocab, bf16=True, compiled=cfg.compile)  # the same model as the runs
        bare_compiled = bare if cfg.compile else bare_loop(cfg, batches, vocab, bf16=True, compiled=True)

    seq_len = mean_length(batches)
    fpt = flops_per_token(cfg, len(vocab), seq_len)
    bf16, fp32 = runs["bf16"].tokens_per_s, runs["no"].tokens_per_s
    mfu = fpt * bf16 / (peak * 1e9)
    print(f"talk2face_train.train {cfg.model}, batch {cfg.batch_size} x {seq_len:.0f} tokens (mean):")
    print(f"  bf16 autocast  {bf16:9,.0f} tokens/s")
    print(f"  fp32           {fp32:9,.0f} tokens/s   bf16 speed-up {bf16 / fp32:.2f}x (target >= 1.5x)")
    print(f"  bare loop bf16 {bare:9,.0f} tokens/s   talk2face_train.train / bare = {bf16 / bare:.2f} (target >= 0.9)")
    print(f"  MFU (bf16) {100 * mfu:.1f}% of the best matmul rate measured, {peak:,.0f} GFLOP/s ({where}); "
          f"{fpt / 1e6:.1f} MFLOP/token; target >= 40%")
    print(f"  bare loop bf16, torch.compile {bare_compiled:9,.0f} tokens/s ({bare_compiled / bare:.2f}x the bare loop"
          f"{'' if cfg.compile else ' uncompiled'}), MFU {100 * fpt * bare_compiled / (peak * 1e9):.1f}%")
    print("  first losses bf16: " + " ".join(f"{x:.3f}" for x in runs["bf16"].losses[:6]))
    print("  first losses fp32: " + " ".join(f"{x:.3f}" for x in runs["no"].losses[:6]))
    return {"bf16_tokens_per_s": bf16, "fp32_tokens_per_s": fp32, "bare_tokens_per_s": bare, "mfu": mfu,
            "bare_compiled_tokens_per_s": bare_compiled, "best_matmul_gflops": peak}


if __name__ == "__main__":
    main()
