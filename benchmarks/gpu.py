"""Absolute speed on a GPU, in one run of a few minutes: what `make bench` measures on a CPU.

    python -m benchmarks.gpu [--out DIR] [--readme README.md]      # on a GPU machine
    python -m benchmarks.gpu --device cpu --steps 4 --faces 1 4      # a dry run of the script

On the device it is given (the first CUDA GPU by default):
1. the matmul rate, fp32 and bf16 at 4096² and 8192², next to the card's dense bf16 peak from its
   datasheet where this file knows the card;
2. training of the `base` decoder (12x768, Talk2Face's size) by `experiments/celebahq-base.yaml`
   (bf16 autocast, AdamW, batch 32, 4 DataLoader workers) on 1,500 SynFace faces tokenized by an
   untrained `synface-64` VQGAN (speed does not depend on the codes): steady tokens/s and the model
   FLOP utilisation (benchmarks.training's FLOPs per token) against the measured rate and against
   the datasheet peak;
3. text-to-face by the static decoder (unguided, top-k 70) with an untrained `base` decoder, at
   each of --faces faces per call: faces/s, plain and `Talk2Face.compile()`d (its first call
   timed apart).
It prints a markdown table with the device and the date, writes it to OUT/gpu.md, and with
--readme replaces the README's table between `<!-- gpu-bench -->` and `<!-- /gpu-bench -->`.
`scripts/gpu_bench.sh` runs it on a lent machine.
"""

from __future__ import annotations

import argparse
import datetime
import re
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.generation import PROMPTS, untrained_model
from benchmarks.matmul import best_matmul_rate
from benchmarks.training import REPO, flops_per_token, make_data, mean_length, training_batches
from talk2face import shipped
from talk2face.config import load_config
from talk2face.device import cpu_model
from talk2face.vocab import Vocab
from talk2face_train.train import TrainConfig, train

# dense bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s (the SXM parts; H200 = H100's chip)
DATASHEET_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
START, END = "<!-- gpu-bench -->", "<!-- /gpu-bench -->"


def datasheet_peak(name: str) -> float | None:
    """The dense bf16 peak of the card called `name`, GFLOP/s (None for a card not listed)."""
    for card, tflops in DATASHEET_BF16_TFLOPS.items():
        if re.search(rf"\b{card}\b", name):
            return tflops * 1e3
    return None


def training_figures(device: str, model: str, steps: int, batch: int) -> dict[str, float]:
    """Steady tokens/s of `model` trained with bf16 autocast, and its mean sequence length."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, vqgan = make_data(tmp)
        cfg = load_config(TrainConfig, REPO / "experiments" / "celebahq-base.yaml", [  # Talk2Face's recipe
            f"--data.sources=[{{tokenized: {data}}}]", f"--data.vqgan={vqgan}", f"--model={model}",
            f"--batch_size={batch}", f"--optim.max_steps={steps}", f"--optim.warmup_steps={steps}", "--log_with=none",
            f"--save_every={10**9}", f"--eval_every={10**9}", "--data.val_per_task=1",
            f"--data.text_tokenizer={shipped.TEXT_TOKENIZER}", f"--data.templates={shipped.TEMPLATES}",
            f"--output_dir={tmp / 'run'}",
        ])
        result = train(cfg)  # on the GPU when there is one (train picks the device)
        vocab = Vocab.from_pretrained(result.final_dir)
        seq_len = mean_length(training_batches(cfg, vocab, steps))
    return {"tokens_per_s": result.tokens_per_s, "flops_per_token": flops_per_token(cfg, len(vocab), seq_len),
            "seq_len": seq_len}


def generation_figures(device: str, model: str, batches: list[int]) -> dict[str, float]:
    """Faces/s of text-to-face at each batch, plain and compiled, and the compiled first call."""
    t2f = untrained_model(model, device)
    figures = {}
    for compiled in (False, True):
        if compiled:
            t2f.compile()
        for batch in batches:
            texts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]

            def run() -> float:
                start = time.perf_counter()
                t2f.text_to_face(texts, top_k=70, seed=0, batch_size=batch)  # images on the host: synchronised
                return time.perf_counter() - start

            first = run()
            if compiled and batch == batches[0]:
                figures["compiled_first_call_s"] = first
            name = "compiled" if compiled else "static"
            figures[f"{name}_b{batch}_faces_per_s"] = batch / min(run() for _ in range(3))
    return figures


def table(device: str, rates: dict[str, float], sheet: float | None, train_figs: dict, gen: dict, args) -> str:
    """The figures as the README's markdown table."""
    best = max(rates.values())
    mfu = train_figs["flops_per_token"] * train_figs["tokens_per_s"]  # FLOP/s
    against = f"{100 * mfu / (best * 1e9):.1f}% of the best measured matmul rate, {best / 1e3:,.1f} TFLOP/s"
    if sheet:
        against += f"; {100 * mfu / (sheet * 1e9):.1f}% of the datasheet's {sheet / 1e3:,.0f}"
    rows = [
        ("matmul, the best of 10 (TFLOP/s)", ", ".join(f"{k} {v / 1e3:,.1f}" for k, v in rates.items())),
        (f"training `{args.model}`, bf16 autocast, batch {args.batch} x {train_figs['seq_len']:.0f} tokens",
         f"{train_figs['tokens_per_s']:,.0f} tokens/s"),
        (f"the same: MFU ({train_figs['flops_per_token'] / 1e6:.0f} MFLOP/token)", against),
    ]
    for batch in args.faces:
        rows.append((f"text-to-face, untrained `{args.model}`, {batch} faces a call", f"{gen[f'static_b{batch}_faces_per_s']:,.1f} faces/s, "
                     f"compiled {gen[f'compiled_b{batch}_faces_per_s']:,.1f}"))
    rows.append(("the compiled step's first call (empty compile cache)", f"{gen['compiled_first_call_s']:.1f} s"))
    head = f"Measured {datetime.date.today().isoformat()} on {device} (`python -m benchmarks.gpu`):\n\n| figure | measured |\n|---|---|\n"
    return head + "".join(f"| {name} | {value} |\n" for name, value in rows)


def write_readme(readme: Path, text: str) -> None:
    """Replace the table between the README's markers (both must be there, once each)."""
    content = readme.read_text()
    if content.count(START) != 1 or content.count(END) != 1:
        raise SystemExit(f"{readme}: expected one {START} and one {END} marker")
    before, rest = content.split(START)
    readme.write_text(before + START + "\n" + text + END + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run")
    parser.add_argument("--model", default="base", help="the decoder preset trained and sampled")
    parser.add_argument("--steps", type=int, default=30, help="training steps (the first 2 are warm-up)")
    parser.add_argument("--batch", type=int, default=32, help="training batch")
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 64], help="faces per text-to-face call")
    parser.add_argument("--out", help="a folder for gpu.md")
    parser.add_argument("--readme", help="a README.md whose gpu-bench table to replace")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu: no CUDA device here (--device cpu runs the script on the CPU, as a dry run)")
    device = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    sizes = (4096, 8192) if args.device == "cuda" else (1024,)
    _, _, rates = best_matmul_rate(sizes, args.device)
    text = table(device, rates, datasheet_peak(device) if args.device == "cuda" else None,
                 training_figures(args.device, args.model, args.steps, args.batch),
                 generation_figures(args.device, args.model, args.faces), args)
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu.md").write_text(text)
    if args.readme:
        write_readme(Path(args.readme), text)
    return text


if __name__ == "__main__":
    main()
