"""`talk2face synth`: render the SynFace data set to an imagefolder (and a contact sheet)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from talk2face.data.synface.generate import EDIT_FRACTION, generate
from talk2face.data.synface.sheet import contact_sheet
from talk2face.data.sources import read_imagefolder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=20000, help="number of images")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels, 32..256")
    parser.add_argument("--out", default="data/synface", help="output folder (relative to the current folder)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--overwrite", action="store_true", help="replace the splits of a non-empty --out")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: min(2, CPUs))")
    parser.add_argument("--edit-fraction", type=float, default=EDIT_FRACTION,
                        help="share of identities that also get an edit pair")
    parser.add_argument("--contact-sheet", default=None, metavar="PNG",
                        help="also write 64 training faces with their labels to this PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    counts = generate(args.n, args.size, args.seed, args.out, overwrite=args.overwrite,
                      workers=args.workers, edit_fraction=args.edit_fraction)
    if args.contact_sheet:
        root = Path(args.out)
        records = [r for _, r in zip(range(64), read_imagefolder(root, "train"))]
        contact_sheet(records, root, args.contact_sheet)
    if args.json:
        print(json.dumps({"images": sum(counts.values()), "out": args.out, "splits": counts,
                          "contact_sheet": args.contact_sheet}))
        return 0
    print(f"wrote {sum(counts.values())} images to {args.out}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.contact_sheet:
        print(f"contact sheet: {args.contact_sheet}")
    return 0
