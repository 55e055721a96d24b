"""Shared fixtures: a tiny SynFace, an (untrained) tiny VQGAN and their pre-tokenized data.

Everything is built once per test session in a few seconds; tests that train or generate use it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = REPO / "tokenizers" / "synface" / "tokenizer.json"
TEMPLATES = REPO / "templates"


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """{"synface", "vqgan", "tokenized"} folders: 80 faces of 32x32, 4x4 = 16 codes per face."""
    from talk2face_train.pretokenize import tokenize
    from talk2face.data.synface import generate
    from talk2face.vqgan import VQGAN, VQGANConfig

    root = tmp_path_factory.mktemp("tiny_world")
    generate(n=80, size=32, seed=0, out_dir=root / "synface", workers=1, progress=False)
    torch.manual_seed(0)
    config = VQGANConfig(image_size=32, ch=32, ch_mult=[1, 1, 2, 2], z_channels=32, n_codes=64, embed_dim=16,
                         legacy=False, l2_codes=True)
    VQGAN(config).save_pretrained(root / "vqgan")
    tokenize(root / "vqgan", root / "synface", root / "tokenized", batch_size=32)
    return {"synface": root / "synface", "vqgan": root / "vqgan", "tokenized": root / "tokenized"}


# captions and instructions in several styles, for the text-tokenizer tests
CAPTIONS = [
    "This woman has blond hair and is smiling. She wears earrings.",
    "A 34-year-old man with gray hair, eyeglasses and a full beard",
    "young girl; bangs; no glasses",
    "an old man in his seventies wearing a hat",
    "make her smile",
    "add glasses",
]


def caption_folder(root: Path, captions: list[str]) -> Path:
    """An imagefolder source at root/src whose train split holds one blank image per caption."""
    from PIL import Image

    split = root / "src" / "train"
    split.mkdir(parents=True)
    lines = []
    for i, caption in enumerate(captions):
        Image.new("RGB", (4, 4)).save(split / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "id": str(i), "captions": [caption]}))
    (split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root / "src"


def free_port() -> int:
    """A localhost port nobody uses now (the OS picks it), so parallel test runs never collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes: int, *args: str) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --nproc_per_node PROCESSES ARGS` from the repository root, as
    CPU processes (one thread each; no GPU visible, so they join over gloo); its output captured."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_port", str(free_port()), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)


def tiny_train_args(world: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """argv for `talk2face_train.train.main` on the tiny world."""
    return [
        str(REPO / "experiments" / "synface-tiny.yaml"),
        f"--data.sources=[{{tokenized: {world['tokenized']}}}]",
        f"--data.vqgan={world['vqgan']}",
        f"--data.text_tokenizer={TEXT_TOKENIZER}",
        f"--data.templates={TEMPLATES}",
        f"--output_dir={out}",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_model(tiny_world, tmp_path_factory) -> Path:
    """A tiny decoder trained for a few steps on the tiny world: its final checkpoint folder."""
    from talk2face_train.train import main

    return main(tiny_train_args(tiny_world, tmp_path_factory.mktemp("tiny_run"))).final_dir


@pytest.fixture(scope="session")
def tiny_evaluator(tiny_world, tmp_path_factory) -> Path:
    """An evaluator CNN trained for one short epoch on the tiny world's real faces."""
    from talk2face_train.evaluator import main

    out = tmp_path_factory.mktemp("evaluator")
    argv = [str(REPO / "experiments" / "evaluator-synface.yaml"), f"--data.source={tiny_world['synface']}",
            "--model.image_size=32", "--model.channels=[8, 16]", "--train.epochs=1", "--train.batch_size=32",
            "--train.warmup_steps=1", f"--out={out}"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def tiny_server(tiny_model):
    """`talk2face serve --model <tiny model>` on a free localhost port: the running app (`.local_url`)."""
    from talk2face.cli import build_parser
    from talk2face.serve import launch

    argv = ["serve", "--model", str(tiny_model), "--port", str(free_port())]
    app = launch(build_parser(argv).parse_args(argv))
    yield app
    app.close()
