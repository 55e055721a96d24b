"""Issue 9's ablation: a copy of pre-tokenized SynFace without the free-style third of its captions.

    python experiments/ablate_free_style.py runs/demo/tokenized runs/ablation/tokenized

SynFace writes each face's captions in rotating styles (terse, sentences, free: caption i has style
i % 3, see `talk2face.data.synface.captions.make_captions`). Dropping every caption with i % 3 == 2
leaves the same faces, labels and edit pairs, with text-to-face and caption trained only on the
terse and sentence styles. Train a decoder on each copy with the same command and compare their
text-to-face control on in-distribution and held-out free-style prompts (`talk2face eval`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from talk2face_train.tokenized import META_NAME, load_tokenized

FREE_STYLE = 2  # index % 3 of a free-style caption


def drop_free_style(row: dict) -> dict:
    """The row with its free-style captions (and their mention lists) removed."""
    keep = [i for i in range(len(row["captions"])) if i % 3 != FREE_STYLE]
    return {"captions": [row["captions"][i] for i in keep],
            "caption_attributes": [row["caption_attributes"][i] for i in keep]}


def main(source: str, out: str) -> None:
    """Write the copy with the source's tokenize.json (same codes, same VQGAN), so it trains as is."""
    dataset, meta = load_tokenized(source)
    dataset.map(drop_free_style, desc="drop free-style captions").save_to_disk(out)
    (Path(out) / META_NAME).write_text(json.dumps({**meta, "derived_from": str(source),
                                                   "derivation": "free-style captions dropped"}, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:3])
