"""Training's data path as the data grows: start-up time and memory, map-style against streaming.

    python -m benchmarks.data_scale --base data/synface-tok [--sizes 50000 200000 800000]

Simulates larger pre-tokenized sets by repeating the train rows of `--base` (a folder `talk2face
tokenize` wrote, with its label counts) up to each size, in Arrow files of 4096 rows, as tokenize
writes them; then, for each size and each data path (`MultiTaskDataset`, and data.streaming's
`StreamingMultiTaskDataset`), one fresh process measures what training pays before and around its
steps:

- open: `build_data` (open the folder, check it);
- start: build the training set and its first batch;
- batches: 200 batches of 16 after the first (the steady cost of the data, not of the model);
- memory: the process's anonymous memory (RssAnon: what the data path holds, not the pages of the
  memory-mapped Arrow files the kernel may drop) after the start and after the batches;
- card: what the end of training reads for the model card (`trained_attributes`, `caption_words`)
  from tokenize.json's label counts, and by scanning the rows as before the counts existed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import datasets
from datasets import DatasetDict, concatenate_datasets

from talk2face.config import load_config
from talk2face_train.tokenized import LABELS, META_NAME, label_mask, load_tokenized

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "experiments" / "synface-small.yaml"
BATCH, BATCHES = 16, 200


def simulate(base: Path, n: int, out: Path) -> Path:
    """`out`: the train rows of `base` repeated to n rows, its validation split as is, and its
    tokenize.json with the label counts of the n rows."""
    if (out / META_NAME).exists():
        return out
    dataset, meta = load_tokenized(base)
    train = dataset["train"]
    repeats = math.ceil(n / len(train))
    grown = concatenate_datasets([train] * repeats).select(range(n))
    DatasetDict({"train": grown, "validation": dataset["validation"]}).save_to_disk(
        str(out), num_shards={"train": math.ceil(n / 4096), "validation": 1})
    # the words and attribute names of repeated rows are the base's; the counts are the n rows'
    counts = {label: int(label_mask(grown, label).sum()) for label in LABELS}
    meta["labels"] = {**meta["labels"], "train": {**meta["labels"]["train"], **counts}}
    meta["counts"] = {"train": n, "validation": len(dataset["validation"])}
    (out / META_NAME).write_text(json.dumps(meta, indent=2))
    return out


def rss_anon_mib() -> float:
    """This process's anonymous resident memory in MiB (/proc/self/status RssAnon)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def measure(folder: Path, streaming: bool) -> dict[str, float]:
    """One data path on one folder, in this (fresh) process."""
    from talk2face_train.sequences import collate
    from talk2face_train.train import TrainConfig, build_data, build_vocab, caption_words, trained_attributes, training_set
    from talk2face.templates import Templates

    cfg: TrainConfig = load_config(TrainConfig, CONFIG, [f"--data.sources=[{{tokenized: {folder}}}]",
                                                         f"--data.streaming={str(streaming).lower()}", f"--batch_size={BATCH}"])
    vocab, templates = build_vocab(cfg), Templates.load(cfg.data.templates)
    before = rss_anon_mib()
    t0 = time.perf_counter()
    builder, tables = build_data(cfg, vocab, templates, "train", cfg.data.cfg_dropout)
    t1 = time.perf_counter()
    train_set = training_set(cfg, builder, tables, (BATCHES + 1) * BATCH)
    items = iter(train_set)
    collate([next(items) for _ in range(BATCH)], vocab.pad_id)
    t2 = time.perf_counter()
    after_start = rss_anon_mib()
    for _ in range(BATCHES):
        collate([next(items) for _ in range(BATCH)], vocab.pad_id)
    t3 = time.perf_counter()
    after_batches = rss_anon_mib()
    card = trained_attributes(tables), caption_words(tables)
    t4 = time.perf_counter()
    scanned = {name: replace(table, labels=None) for name, table in tables.items()}
    assert (trained_attributes(scanned), caption_words(scanned)) == card, "the label counts disagree with the rows"
    t5 = time.perf_counter()
    return {"open_s": t1 - t0, "start_s": t2 - t1, "batches_s": t3 - t2, "card_s": t4 - t3, "card_scan_s": t5 - t4,
            "mem_start_mib": after_start - before, "mem_batches_mib": after_batches - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="data/synface-tok", help="a tokenized folder with label counts")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 800_000], help="train rows to simulate")
    parser.add_argument("--work", default="runs/data-scale", help="where the simulated folders go (reused)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement in this process
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.streaming)))
        return
    print(f"{'rows':>8} {'path':>9} {'open s':>7} {'start s':>8} {'200 batches s':>14} {'card s':>7} "
          f"{'card by scan s':>15} {'MiB at start':>13} {'MiB after':>10}")
    for n in args.sizes:
        folder = simulate(Path(args.base), n, Path(args.work) / f"rows-{n}")
        for streaming in (False, True):
            done = subprocess.run([sys.executable, "-m", "benchmarks.data_scale", "--measure", str(folder),
                                   *(["--streaming"] if streaming else [])], capture_output=True, text=True, cwd=REPO)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{n:>8} {'streaming' if streaming else 'map':>9} {r['open_s']:>7.2f} {r['start_s']:>8.2f} "
                  f"{r['batches_s']:>14.2f} {r['card_s']:>7.3f} {r['card_scan_s']:>15.2f} {r['mem_start_mib']:>13.1f} "
                  f"{r['mem_batches_mib']:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
