"""`talk2face data inspect SPEC`: what a source (or a mixture) holds, before training on it.

Prints the split rule the source applies, then, per split: the record count; how many records carry each label; attribute positives
(count and share of the labelled records); an age histogram in 10-year bins; caption counts;
the values of string labels in `extra` (e.g. UTKFace's race); what was skipped and why; then a
sample record. For a mixture, each entry's weight, probability and tasks come first, with a
warning when an entry lists a task none of its records has a label for.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from talk2face.data.mixture import load_mixture, is_mixture_file
from talk2face.data.record import ATTRIBUTES, SPLITS, FaceRecord
from talk2face.data.sources import DataWarning, ReadStats, Source, open_source
from talk2face.errors import UserError

# The label each task trains from (templates decide the wording; this is only for the check).
TASK_LABEL = {"text_to_face": "captions", "caption": "captions", "age": "age",
              "attributes": "attributes", "edit": "edit"}
LABELS = ("captions", "age", "attributes", "edit")
AGE_BIN = 10  # years per histogram bin


@dataclass
class SplitSummary:
    """Counts over one split of one source."""

    records: int = 0
    labelled: Counter = field(default_factory=Counter)  # label -> records that carry it
    positives: Counter = field(default_factory=Counter)  # attribute -> records where it is True
    attribute_labelled: Counter = field(default_factory=Counter)  # attribute -> records labelling it
    age_bins: Counter = field(default_factory=Counter)  # bin start -> records
    captions: int = 0  # captions in total
    extra: dict[str, Counter] = field(default_factory=dict)  # extra key -> value -> records
    sample: FaceRecord | None = None  # the first record
    skipped: ReadStats = field(default_factory=ReadStats)

    def add(self, record: FaceRecord) -> None:
        self.records += 1
        self.sample = self.sample or record
        for label in LABELS:
            self.labelled[label] += record.has(label)
        for name, value in (record.attributes or {}).items():
            self.attribute_labelled[name] += 1
            self.positives[name] += bool(value)
        if record.age is not None:
            self.age_bins[record.age // AGE_BIN * AGE_BIN] += 1
        self.captions += len(record.captions or [])
        for key, value in record.extra.items():
            if isinstance(value, str):
                self.extra.setdefault(key, Counter())[value] += 1


def summarize(source: Source, splits: tuple[str, ...] = SPLITS, limit: int | None = None) -> dict[str, SplitSummary]:
    """Read `splits` of `source` once and count its labels.

    Args:
        source: an opened source.
        splits: which splits to read.
        limit: read at most this many records per split (None: all).
    Returns:
        split -> SplitSummary (the skip counts are in `.skipped`).
    """
    out = {}
    for split in splits:
        summary = out[split] = SplitSummary()
        with warnings.catch_warnings():  # the skip summary is printed below, not warned
            warnings.simplefilter("ignore", DataWarning)
            for record in tqdm(source.records(split), desc=f"{source.name}/{split}", unit=" records",
                               disable=None, leave=False):
                summary.add(record)
                if limit is not None and summary.records >= limit:
                    break
        summary.skipped = source.stats.get(split, ReadStats())
    return out


def _sample_json(record: FaceRecord) -> str:
    """A short JSON view of a record: positive attributes only, the first three captions."""
    row: dict[str, Any] = {"id": record.id, "image": str(record.image), "split": record.split}
    if record.age is not None:
        row["age"] = record.age
    if record.attributes is not None:
        row["attributes (true)"] = [n for n, v in record.attributes.items() if v]
    if record.captions:
        row["captions"] = record.captions[:3] + ([f"... {len(record.captions) - 3} more"] if len(record.captions) > 3 else [])
    if record.identity:
        row["identity"] = record.identity
    if record.edit is not None:
        row["edit"] = {"source": str(record.edit.source), "instructions": record.edit.instructions[:2]}
    if record.extra:
        row["extra"] = record.extra
    return json.dumps(row, indent=2, ensure_ascii=False)


def format_summary(source: Source, summaries: dict[str, SplitSummary]) -> str:
    """The human-readable report of `summarize`."""
    lines = [f"source {source.name!r} at {source.root}", f"split rule: {source.split_rule}"]
    for split, s in summaries.items():
        lines.append(f"\n[{split}] {s.records} records")
        if not s.records:
            if s.skipped.total:
                lines.append(f"  {s.skipped.summary()}")
            continue
        lines.append("  records with: " + ", ".join(f"{label} {s.labelled[label]}" for label in LABELS))
        if s.captions:
            lines.append(f"  captions: {s.captions} ({s.captions / max(1, s.labelled['captions']):.1f} per captioned record)")
        if s.age_bins:
            lines.append("  age histogram: " + ", ".join(
                f"{b}-{b + AGE_BIN - 1}: {n}" for b, n in sorted(s.age_bins.items())))
        if s.attribute_labelled:
            lines.append("  attribute positives (count, share of labelled):")
            names = [n for n in ATTRIBUTES if n in s.attribute_labelled]
            for i in range(0, len(names), 3):
                lines.append("    " + "  ".join(
                    f"{n:<20} {s.positives[n]:>6} {s.positives[n] / s.attribute_labelled[n]:>5.0%}"
                    for n in names[i:i + 3]))
        for key, counts in sorted(s.extra.items()):
            if len(counts) <= 20:  # a categorical label, not a per-record value such as a file name
                lines.append(f"  {key}: " + ", ".join(f"{v} {n}" for v, n in counts.most_common()))
        if s.skipped.total:
            lines.append(f"  {s.skipped.summary()}")
    sample = next((s.sample for s in summaries.values() if s.sample is not None), None)
    lines.append("\nsample record:\n" + (_sample_json(sample) if sample else "  (none: the source is empty)"))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = sub.add_parser("inspect", help="counts per split and label, and a sample record")
    p.add_argument("spec", help="a source YAML file, an imagefolder directory, or a mixture YAML file")
    p.add_argument("--split", choices=SPLITS, action="append",
                   help="inspect only this split (repeatable; default: all)")
    p.add_argument("--limit", type=int, default=None, help="read at most N records per split")


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be at least 1 (leave it out to read every record)")
    splits = tuple(args.split) if args.split else SPLITS
    if is_mixture_file(args.spec):
        mixture = load_mixture(args.spec)
        print(f"mixture {args.spec}: {len(mixture.sources)} sources")
        for entry, p in zip(mixture.sources, mixture.probabilities()):
            print(f"  {entry.name:<16} weight {entry.weight:g} (p={p:.3f})  tasks: {', '.join(entry.tasks)}")
        for entry in mixture.sources:
            summaries = summarize(entry.source, splits, args.limit)
            print("\n" + format_summary(entry.source, summaries))
            for task in entry.tasks:
                if not any(s.labelled[TASK_LABEL[task]] for s in summaries.values()):
                    print(f"WARNING: {entry.name} lists task {task!r} but none of its records has "
                          f"{TASK_LABEL[task]!r}")
        return 0
    source = open_source(args.spec)
    print(format_summary(source, summarize(source, splits, args.limit)))
    return 0
