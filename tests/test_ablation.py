"""experiments/ablate_free_style.py: the copy without free-style captions loads and trains as it is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import tiny_train_args
from talk2face_train.tokenized import load_tokenized
from talk2face_train.train import main

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ablate_free_style.py"


def test_the_ablated_copy_drops_every_third_caption_and_trains(tiny_world, tmp_path):
    spec = importlib.util.spec_from_file_location("ablate_free_style", SCRIPT)
    ablate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablate)
    out = tmp_path / "ablated"
    ablate.main(str(tiny_world["tokenized"]), str(out))
    (source, meta), (copy, copy_meta) = load_tokenized(tiny_world["tokenized"]), load_tokenized(out)
    before, after = source["train"][0]["captions"], copy["train"][0]["captions"]
    assert after == [c for i, c in enumerate(before) if i % 3 != 2]
    assert copy_meta["vqgan_fingerprint"] == meta["vqgan_fingerprint"]
    world = {**tiny_world, "tokenized": out}
    assert len(main(tiny_train_args(world, tmp_path / "run", "--optim.max_steps=2")).losses) == 2
