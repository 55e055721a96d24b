"""Turn a trained SynFace VQGAN, evaluator or decoder into the folder the repository ships, with its card.

    python scripts/ship.py vqgan runs/vqgan-synface-ship/final tokenizers/synface-vqgan \
        --data data/synface --evaluator evaluators/synface --recipe experiments/vqgan-synface-ship.yaml
    python scripts/ship.py evaluator runs/evaluator-ship evaluators/synface \
        --recipe experiments/evaluator-synface.yaml
    python scripts/ship.py model runs/synface-small/final models/synface \
        --recipe experiments/synface-small.yaml --data data/synface

The VQGAN and the decoder are stored in fp16 (half the size) only where their figures, measured
here on both copies, stay the same; the shipped decoder names the shipped tokenizer instead of
carrying a second copy; the card (README.md) states the data, the recipe, the machine, the time
and the figures, all read from the run's own files or measured by this command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import yaml
from transformers import GenerationConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks (not installed)
from benchmarks import vqgan as vqgan_bench
from talk2face import shipped
from talk2face.checkpoint import (CARD_FILE, README_FILE, TEMPLATES_SUBDIR, VQGAN_SUBDIR, check_checkpoint_folder,
                                  load_decoder, read_card, vqgan_folder, vqgan_reference,
                                  write_card_files)
from talk2face.data.sources import open_source
from talk2face.errors import UserError
from talk2face.evaluation.benchmark import Benchmark, EvalConfig
from talk2face.evaluation.evaluator import FaceEvaluator
from talk2face.fingerprint import weights_fingerprint
from talk2face.facade import Talk2Face
from talk2face.device import cpu_model
from talk2face.templates import Templates
from talk2face.vocab import Vocab
from talk2face.vqgan.model import VQGAN


def fresh_destination(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace the shipped folder")
    shutil.rmtree(path, ignore_errors=True)


def ship_vqgan(args: argparse.Namespace) -> None:
    source, dest = Path(args.source), Path(args.dest)
    fresh_destination(dest, args.overwrite)
    metrics = json.loads((source / "metrics.json").read_text())
    precision = json.loads((source.parent / "precision.json").read_text()) if (source.parent / "precision.json").exists() else {}
    judge = ["--evaluator", args.evaluator] if args.evaluator else []
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "fp16"
        VQGAN.from_pretrained(source).save_pretrained(half, dtype=torch.float16)
        full_fig = vqgan_bench.main(["--vqgan", str(source), "--data", args.data, "--n", "200", *judge])
        half_fig = vqgan_bench.main(["--vqgan", str(half), "--data", args.data, "--n", "200", *judge])
        if abs(half_fig["psnr_db"] - full_fig["psnr_db"]) > 0.05:
            raise UserError(f"fp16 weights change the PSNR ({full_fig['psnr_db']} -> {half_fig['psnr_db']} dB): not shipped")
        shutil.copytree(half, dest)
    (dest / "metrics.json").write_text(json.dumps({"bench_fp32": full_fig, "bench_fp16": half_fig,
                                                   "training": {k: v for k, v in metrics.items() if k != "history"},
                                                   "history": metrics.get("history", [])}, indent=2) + "\n")
    size_mb = (dest / "model.safetensors").stat().st_size / 2**20
    rows = [("test PSNR", f"{half_fig['psnr_db']:.2f} dB (fp32 weights: {full_fig['psnr_db']:.2f})"),
            ("codebook usage", f"{half_fig['codebook_usage']:.1%} of {half_fig['n_codes']} codes, perplexity {half_fig['perplexity']:.0f}"),
            ("codes per face", str(half_fig["codes_per_face"]))]
    for name, r in half_fig.get("evaluator", {}).items():
        rows.append((f"evaluator on {name} test faces", f"attribute accuracy {r['attribute_accuracy']:.3f} "
                     f"(balanced {r['balanced_accuracy']:.3f}), age MAE {r['age_mae']}"))
    card = [
        "# SynFace image tokenizer (VQGAN)", "",
        "64x64 SynFace faces -> 8x8 = 64 codes of a 512-entry codebook; taming-transformers' Encoder, "
        "Decoder and VectorQuantizer2 (`talk2face.vqgan.VQGAN.from_pretrained` loads this folder). "
        f"Weights stored in fp16 ({size_mb:.1f} MB); they load into fp32 parameters.", "",
        "## How it was made", "",
        f"- Data: SynFace, seed 0, 10,000 faces (`talk2face synth --n 10000 --size 64 --out data/synface --seed 0`), "
        f"train split ({metrics.get('eval_images', '?')} test faces measured during training).",
        f"- Recipe: `{args.recipe}`, `OMP_NUM_THREADS=1 python -m talk2face_train.vqgan {args.recipe}`, then "
        f"`python scripts/ship.py vqgan {args.source} {args.dest} --data {args.data}"
        + (f" --evaluator {args.evaluator}" if args.evaluator else "") + f" --recipe {args.recipe}`.",
        f"- Machine: {precision.get('hardware', cpu_model())}; {metrics['steps']} steps in "
        f"{metrics['train_seconds'] / 60:.1f} min of training; mixed precision chosen by measurement: "
        f"{metrics.get('mixed_precision', precision.get('mixed_precision', '?'))}"
        + (f" ({', '.join(f'{k} {v:.2f} steps/s' for k, v in precision['steps_per_s'].items())})" if precision else "") + ".",
        f"- Shipped on {datetime.date.today().isoformat()}.", "",
        "## Figures (`python -m benchmarks.vqgan`, the whole SynFace seed-0 test split)", "",
        "| measure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
    ]
    (dest / "README.md").write_text("\n".join(card))
    print(f"shipped {dest} ({size_mb:.1f} MB)")


def ship_evaluator(args: argparse.Namespace) -> None:
    source, dest = Path(args.source), Path(args.dest)
    fresh_destination(dest, args.overwrite)
    evaluator = FaceEvaluator.from_pretrained(source)
    evaluator.save_pretrained(dest)
    metrics = json.loads((source / "metrics.json").read_text())
    config = json.loads((source / "train_config.json").read_text())
    precision = json.loads((source / "precision.json").read_text()) if (source / "precision.json").exists() else {}
    for name in ("metrics.json", "train_config.json"):
        shutil.copyfile(source / name, dest / name)
    size_mb = (dest / "model.safetensors").stat().st_size / 2**20
    rows = []
    for split in config["data"]["eval_splits"]:
        m = metrics[split]
        rows.append(f"| {split} | {m['attr_mean_acc']:.4f} | {m['attr_balanced_acc']:.4f} | {m['age_mae']:.2f} | {m['age_cs5']:.3f} |")
    card = [
        "# SynFace evaluator (the judge of `make eval`)", "",
        "A small CNN that reads the 28 SynFace attributes and the age of a 64x64 face "
        "(`talk2face.evaluation.evaluator.FaceEvaluator.from_pretrained` loads this folder). "
        f"It is the fixed measuring instrument: every `make eval` report prints its weights' hash "
        f"({FaceEvaluator.fingerprint(dest)}), and it is not retrained while the models it judges change. "
        f"{size_mb:.1f} MB.", "",
        "## How it was made", "",
        "- Data: real SynFace faces only, seed 1, 40,000 faces (`talk2face synth --n 40000 --size 64 "
        "--out data/synface-judge --seed 1`): identities that no decoder or tokenizer training set uses (seed 0 "
        "and the extra decoder faces of seeds >= 2).",
        f"- Recipe: `OMP_NUM_THREADS=1 python -m talk2face_train.evaluator {args.recipe} --data.source=data/synface-judge "
        f"--out={args.source}`, then `python scripts/ship.py evaluator {args.source} {args.dest} --recipe {args.recipe}`.",
        f"- Machine: {precision.get('hardware', cpu_model())}; {metrics['train_seconds']['value'] / 60:.1f} min of training; "
        f"mixed precision chosen by measurement: {precision.get('mixed_precision', '?')}"
        + (f" ({', '.join(f'{k} {v:.2f} steps/s' for k, v in precision['steps_per_s'].items())})" if precision else "") + ".",
        f"- Shipped on {datetime.date.today().isoformat()}.", "",
        "## Figures (its own held-out splits of seed 1)", "",
        "| split | attribute accuracy | balanced | age MAE | CS@5 |", "|---|---:|---:|---:|---:|", *rows, "",
    ]
    (dest / "README.md").write_text("\n".join(card))
    print(f"shipped {dest} ({size_mb:.1f} MB)")


def readings(model_dir: Path, images: list) -> tuple[list[float], list[dict[str, float]]]:
    model = Talk2Face.from_pretrained(model_dir)
    return model.estimate_age(images), model.classify_attributes(images)


def precision_line(path: Path) -> list[str]:
    """The card's line on the precision `mixed_precision: auto` chose for the run (none if not recorded)."""
    if not path.is_file():
        return []
    choice = json.loads(path.read_text())
    rates = ", ".join(f"{name} {rate:.2f}" for name, rate in choice.get("steps_per_s", {}).items())
    return [f"- Precision: {choice['mixed_precision']} on {choice.get('hardware', '?')}"
            + (f" (measured steps/s: {rates})" if rates else "") + "."]


def ship_model(args: argparse.Namespace) -> None:
    """The decoder in fp16, naming the shipped tokenizer, judged by `make eval` (its defaults) here."""
    source, dest, tokenizer = check_checkpoint_folder(args.source), Path(args.dest), shipped.VQGAN
    fresh_destination(dest, args.overwrite)
    tokenizer_weights = weights_fingerprint(tokenizer)
    if weights_fingerprint(vqgan_folder(source)) != tokenizer_weights:
        raise UserError(f"{source} was trained with another image tokenizer than the shipped {tokenizer}")
    dest.mkdir(parents=True)
    shutil.copytree(source, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(VQGAN_SUBDIR, "model.safetensors", README_FILE))
    load_decoder(source).to(torch.float16).save_pretrained(dest)
    card = read_card(source)
    card["vqgan"] = vqgan_reference(tokenizer, dest)
    (dest / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    source_data = open_source(args.data)
    faces = [source_data.image_path(r) for r in list(source_data.records("test"))[:64]]
    (age32, attr32), (age16, attr16) = readings(source, faces), readings(dest, faces)
    age_shift = max(abs(a - b) for a, b in zip(age32, age16))
    flips = sum((p[a] >= 0.5) != (q[a] >= 0.5) for p, q in zip(attr32, attr16) for a in p) / sum(len(p) for p in attr32)
    if age_shift > 0.5 or flips > 0.01:
        shutil.rmtree(dest)
        raise UserError(f"fp16 weights change the answers (age by up to {age_shift:.2f} years, {flips:.1%} of the "
                        f"attribute decisions): not shipped")
    report_dir = dest / "eval"
    Benchmark(EvalConfig(model=str(dest), data=args.data, out=str(report_dir))).run()
    size_mb = (dest / "model.safetensors").stat().st_size / 2**20
    trained = yaml.safe_load((source / "train_config.yaml").read_text())
    about = (
        f"One `{trained['model']}` decoder" + (" with face-grid cell embeddings" if trained.get("face_grid") else "")
        + (" and prefix-LM attention" if trained.get("prefix_lm") else "")
        + (", writing an edit as its changes (`<same>` in every cell it keeps)" if trained["data"].get("edit_same") else "")
        + " for every SynFace task: "
        f"text-to-face, captioning, age, the {len(card['attributes'])} SynFace attributes and editing, "
        f"over the shipped tokenizer's codes ({card['vqgan']['path']}, weights {tokenizer_weights}). "
        f"Weights stored in fp16 ({size_mb:.1f} MB); they load into fp32 parameters "
        f"(`Talk2Face.from_pretrained('{dest}')`; against the fp32 weights on 64 test faces: ages within "
        f"{age_shift:.3f} years, {flips:.2%} of the attribute decisions changed).")
    made = [
        f"- Recipe: `python -m talk2face_train.train {args.recipe} --output_dir={source.parent}` "
        f"({card.get('step')} steps, {card.get('trained_tokens', 0) / 1e6:.1f}M tokens), "
        f"on the data the README's SynFace section renders and tokenizes; then "
        f"`python scripts/ship.py model {args.source} {args.dest} --recipe {args.recipe} --data {args.data}`.",
        *precision_line(source.parent / "precision.json"),
        f"- Machine: {cpu_model()}. Shipped on {datetime.date.today().isoformat()}.",
    ]
    write_card_files(dest, dest, GenerationConfig.from_pretrained(dest), Vocab.from_pretrained(dest),
                     Templates.load(dest / TEMPLATES_SUBDIR), VQGAN.read_config(tokenizer), card, trained,
                     title="SynFace talk2face model (the default model)", about=about, made=made,
                     report=report_dir / "report.md")
    print(f"shipped {dest} ({size_mb:.1f} MB); make eval: {report_dir / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("vqgan", "evaluator", "model"):
        p = sub.add_parser(kind)
        p.add_argument("source", help="the trained folder")
        p.add_argument("dest", help="the shipped folder to write")
        p.add_argument("--recipe", required=True, help="the experiments/ config that trained it")
        p.add_argument("--overwrite", action="store_true", help="replace an existing shipped folder")
        if kind in ("vqgan", "model"):
            p.add_argument("--data", default="data/synface")
            p.add_argument("--evaluator", default=None, help="judge the reconstructions with this evaluator")
    args = parser.parse_args(argv)
    try:
        {"vqgan": ship_vqgan, "evaluator": ship_evaluator, "model": ship_model}[args.kind](args)
    except UserError as err:
        print(f"ship: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
