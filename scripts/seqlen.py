"""Print training-sequence lengths per task: they set the context (`data.max_length`) and the cost.

    python scripts/seqlen.py --data data/synface [--codes-per-face 64] [--tokenizer tokenizers/synface/tokenizer.json]

Reads raw records (no VQGAN needed: a face's length is `codes-per-face` whatever its codes are,
so zeros stand in), renders each record once per task it supports with a random paraphrase and
caption, and prints min / mean / max tokens of `<bos> prompt <sep> answer <eos>`, then how much of
a right-padded batch of equally weighted tasks is real tokens (what packing could win back).
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from talk2face.cli import run_standalone
from talk2face.data.sources import open_source
from talk2face.errors import UserError
from talk2face_train.sequences import MULTI_ANSWER, SequenceBuilder
from talk2face.templates import Templates
from talk2face.vocab import Vocab


def sequence_lengths(records, builder: SequenceBuilder, codes_per_face: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Task -> lengths (one per supporting record) of the sequences `builder` makes.

    Args:
        records: FaceRecords (their images are replaced by `codes_per_face` zero codes).
        builder: the SequenceBuilder (its cfg_dropout applies).
        codes_per_face: h*w of the image tokenizer's grid (64 for SynFace 64x64 with an f8 VQGAN).
    """
    rng = np.random.default_rng(seed)
    face = np.zeros(codes_per_face, dtype=np.uint16)
    out: dict[str, list[int]] = {t: [] for t in [*builder.templates.tasks, MULTI_ANSWER]}
    for record in records:
        record.image = face
        if record.edit is not None:
            record.edit.source = face
        for task in out:
            if builder.supports(task, record):
                out[task].append(len(builder.build(task, record, rng)["input_ids"]))
    return {t: np.array(v) for t, v in out.items() if v}


def padding_efficiency(lengths: dict[str, np.ndarray], batch_size: int, n_batches: int = 200, seed: int = 0) -> float:
    """Real tokens / padded tokens of right-padded batches whose tasks are drawn uniformly."""
    rng = np.random.default_rng(seed)
    pools = list(lengths.values())
    real = padded = 0
    for _ in range(n_batches):
        batch = np.array([p[rng.integers(len(p))] for p in (pools[i] for i in rng.integers(len(pools), size=batch_size))])
        real += batch.sum()
        padded += batch.max() * batch_size
    return real / padded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a data source folder or YAML (raw records)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--templates", default="templates")
    parser.add_argument("--tokenizer", default="tokenizers/synface/tokenizer.json", help="text tokenizer file")
    parser.add_argument("--codes-per-face", type=int, default=64, help="image tokens per face (64 = 8x8 for SynFace 64x64)")
    parser.add_argument("--max-records", type=int, default=2000, help="read at most this many records")
    parser.add_argument("--batch-size", type=int, default=32, help="for the padding-efficiency figure")


def run(args: argparse.Namespace) -> int:
    try:
        text = Tokenizer.from_file(args.tokenizer)
    except Exception as err:  # tokenizers raises a bare Exception for a missing or bad file
        raise UserError(f"cannot read text tokenizer {args.tokenizer}: {err}") from None
    vocab = Vocab(text, n_codes=16)  # the codebook size does not change any length
    builder = SequenceBuilder(vocab, Templates.load(args.templates), max_length=10**9, cfg_dropout=0.0)
    records = list(tqdm(itertools.islice(open_source(args.data).records(args.split), args.max_records),
                        desc="reading", unit="rec", total=args.max_records))
    if not records:
        raise UserError(f"{args.data}: no records in split {args.split!r}")
    lengths = sequence_lengths(records, builder, args.codes_per_face)
    print(f"sequence lengths in tokens ({len(records)} records of {args.data}, {args.codes_per_face} codes per face)")
    print(f"{'task':<14}{'records':>8}{'min':>6}{'mean':>8}{'max':>6}")
    for task, n in lengths.items():
        print(f"{task:<14}{len(n):>8}{n.min():>6}{n.mean():>8.1f}{n.max():>6}")
    eff = padding_efficiency(lengths, args.batch_size)
    print(f"right-padded batches of {args.batch_size}, tasks equally weighted: {100 * eff:.0f}% real tokens")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_standalone(sys.modules[__name__], "python scripts/seqlen.py", argv)


if __name__ == "__main__":
    sys.exit(main())
