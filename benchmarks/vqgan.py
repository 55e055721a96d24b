"""The image tokenizer's benchmark: reconstruction quality, tokenization throughput,
and what pre-tokenizing saves the decoder's training.

    python -m benchmarks.vqgan --vqgan runs/vqgan-synface/final --data data/synface

Prints, for one trained VQGAN:
- PSNR and codebook usage on the test split (every image of it);
- pre-tokenization throughput in images/s: `tokenize` end to end (PNG decoding, preprocessing,
  encoding, writing Arrow) on the first `--n` records of the split;
- side by side in this run: the time to get a training batch's codes by reading the Arrow rows
  versus decoding the PNGs and encoding them on the fly, and the speed-up;
- with `--evaluator`: the evaluator's attribute accuracy and age error on the real test faces and
  on their reconstructions, side by side (the tokenizer must not erase attributes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from talk2face.data.images import load_images
from talk2face_train.pretokenize import tokenize
from talk2face_train.tokenized import load_tokenized
from talk2face.data.sources import open_source
from talk2face import shipped
from talk2face.errors import UserError
from talk2face.evaluation.evaluator import FaceEvaluator
from talk2face.evaluation.face_metrics import age_mae, balanced_accuracy, labels_matrix, mean_accuracy
from talk2face.vqgan.metrics import evaluate_reconstruction, load_split_pixels, to_float
from talk2face.vqgan.model import VQGAN


def subset_source(data: str, split: str, n: int, directory: Path) -> list[Path]:
    """Copy the first `n` images of `split` into an imagefolder (edits dropped); returns their paths."""
    source = open_source(data)
    records = [r for _, r in zip(range(n), source.records(split))]
    (directory / split).mkdir(parents=True)
    lines = []
    for i, record in enumerate(records):
        name = f"{i:06d}{source.image_path(record).suffix}"
        shutil.copyfile(source.image_path(record), directory / split / name)
        lines.append(json.dumps({"file_name": name, "id": record.id, "split": split}))
    (directory / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return [directory / split / json.loads(line)["file_name"] for line in lines]


def time_batches(fetch, batches: list[torch.Tensor]) -> float:
    """Seconds per batch of `fetch(indices)` over `batches` (after one warm-up call)."""
    fetch(batches[0])
    start = time.perf_counter()
    for idx in batches:
        fetch(idx)
    return (time.perf_counter() - start) / len(batches)


@torch.no_grad()
def attribute_retention(vq: VQGAN, evaluator_dir: str, data: str, split: str, pixels: torch.Tensor) -> dict:
    """The evaluator's verdicts on `split`'s faces and on their VQ reconstructions, against the labels.

    Returns:
        {"real": {...}, "reconstructed": {...}}, each with mean / balanced attribute accuracy and age MAE.
    """
    evaluator = FaceEvaluator.from_pretrained(evaluator_dir)
    records = list(open_source(data).records(split))
    names = list(evaluator.config.attributes)
    truth = labels_matrix([r.attributes for r in records], names)  # (N, A), -1 where unknown
    ages = [r.age for r in records]
    real = to_float(pixels)  # (N, 3, S, S)
    reconstructed = vq.reconstruct(real)
    out = {}
    for name, images in (("real", real), ("reconstructed", reconstructed)):
        probs, predicted_ages = evaluator.predict(images)  # (N, A), (N,)
        predicted = probs.numpy() >= 0.5
        out[name] = {
            "attribute_accuracy": round(mean_accuracy(predicted, truth, names), 4),
            "balanced_accuracy": round(balanced_accuracy(predicted, truth, names), 4),
            "age_mae": round(age_mae(predicted_ages.tolist(), ages), 2) if None not in ages else None,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqgan", default=str(shipped.VQGAN), help="a trained VQGAN folder (default: the shipped one)")
    parser.add_argument("--data", default="data/synface", help="data source")
    parser.add_argument("--split", default="test", help="split to measure on")
    parser.add_argument("--n", type=int, default=1000, help="images for the tokenization throughput")
    parser.add_argument("--batch-size", type=int, default=64, help="tokenize's encoder batch")
    parser.add_argument("--train-batch", type=int, default=16, help="batch size of the side-by-side read")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per side")
    parser.add_argument("--evaluator", default=None, help="a trained evaluator folder: judge reconstructions too")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    vq = VQGAN.from_pretrained(args.vqgan)
    pixels = load_split_pixels(args.data, args.split, vq.image_size)
    quality = evaluate_reconstruction(vq, pixels)
    retention = attribute_retention(vq, args.evaluator, args.data, args.split, pixels) if args.evaluator else None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = subset_source(args.data, args.split, args.n, tmp / "src")
        start = time.perf_counter()
        tokenize(args.vqgan, tmp / "src", tmp / "tok", batch_size=args.batch_size)
        tokenize_s = time.perf_counter() - start
        rows = load_tokenized(tmp / "tok")[0][args.split].with_format("torch", columns=["codes"])

        g = torch.Generator().manual_seed(0)
        batches = [torch.randint(len(paths), (args.train_batch,), generator=g) for _ in range(args.batches)]
        read_s = time_batches(lambda idx: rows[idx.tolist()]["codes"], batches)  # (b, h*w) codes
        on_the_fly_s = time_batches(
            lambda idx: vq.encode(load_images([paths[i] for i in idx.tolist()], vq.image_size)), batches)

    figures = {
        "split": args.split, "images": args.n, "threads": torch.get_num_threads(),
        "psnr_db": round(quality["psnr"], 2), "codebook_usage": round(quality["usage"], 4),
        "perplexity": round(quality["perplexity"], 1), "codes_per_face": vq.grid_size[0] * vq.grid_size[1],
        "n_codes": vq.n_codes, "tokenize_images_per_s": round(args.n / tokenize_s, 1),
        "batch_ms_read_codes": round(read_s * 1000, 3), "batch_ms_decode_encode": round(on_the_fly_s * 1000, 2),
        "speedup_read_vs_on_the_fly": round(on_the_fly_s / read_s, 1),
    }
    print(f"VQGAN {args.vqgan} on {args.data} [{args.split}], {figures['threads']} CPU threads")
    print(f"  reconstruction PSNR      {figures['psnr_db']:.2f} dB   ({quality['psnr']:.3f})")
    print(f"  codebook usage           {figures['codebook_usage']:.1%} of {vq.n_codes} codes "
          f"(perplexity {figures['perplexity']:.0f}), {figures['codes_per_face']} codes per face")
    print(f"  pre-tokenization         {figures['tokenize_images_per_s']:.1f} images/s ({args.n} images, end to end)")
    print(f"  batch of {args.train_batch}: read codes {figures['batch_ms_read_codes']:.2f} ms, decode PNG + "
          f"encode {figures['batch_ms_decode_encode']:.1f} ms -> {figures['speedup_read_vs_on_the_fly']:.0f}x faster")
    if retention:
        figures["evaluator"] = retention
        for name, r in retention.items():
            print(f"  evaluator on {name:13s} attribute accuracy {r['attribute_accuracy']:.3f} "
                  f"(balanced {r['balanced_accuracy']:.3f}), age MAE {r['age_mae']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    try:
        main()
    except UserError as err:
        print(f"benchmarks.vqgan: error: {err}", file=sys.stderr)
        sys.exit(2)
