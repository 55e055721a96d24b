"""Data-parallel training on 2 CPU processes (accelerate MULTI_CPU over gloo) against 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from conftest import REPO, tiny_train_args
from talk2face.train import main

CONFIG = REPO / "experiments" / "accelerate" / "multi-cpu.yaml"
STEPS = ["--optim.max_steps=6", "--save_every=3", "--eval_every=6"]


def launch_two_processes(args: list[str]) -> None:
    with socket.socket() as s:  # a free port, so parallel test runs never collide
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
               "--main_process_port", str(port), "-m", "talk2face.train", *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_two_cpu_processes_train_as_one_at_the_same_global_batch(tiny_world, tmp_path):
    one = main(tiny_train_args(tiny_world, tmp_path / "one", "--batch_size=8", *STEPS)).final_dir
    two = tmp_path / "two"
    launch_two_processes(tiny_train_args(tiny_world, two, "--batch_size=4", *STEPS))
    assert json.loads((two / "final" / "talk2face.json").read_text())["processes"] == 2
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step_00000003"]  # one copy, not one per rank
    a, b = weights(one), weights(two / "final")
    # each rank normalises its loss over its own answers, one process over all of them: close, not equal
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=2e-3), name

    # resume on 2 ranks from the step-3 checkpoint: the same weights as the uninterrupted run
    resumed = tmp_path / "resumed"
    launch_two_processes(tiny_train_args(tiny_world, resumed, "--batch_size=4", *STEPS,
                                         f"--resume={two / 'checkpoints' / 'step_00000003'}"))
    c = weights(resumed / "final")
    for name in b:
        assert torch.allclose(b[name], c[name], rtol=0, atol=1e-6), name
