"""Data-parallel training on 2 CPU processes (DDP over gloo) against 1 process.

`accelerate launch` starts several CPU processes only through mpirun (its MULTI_CPU type); torchrun
starts them without MPI, and the trainer joins them over gloo:

    torchrun --nproc_per_node 2 -m talk2face_train.train CONFIG.yaml
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_train_args, torchrun

# task_per_batch off: with it, a task fills each per-process batch, so 2 x 4 and 1 x 8 read other examples
STEPS = ["--optim.max_steps=6", "--save_every=3", "--eval_every=6", "--data.task_per_batch=false"]


def launch(processes: int, args: list[str]) -> dict[str, float]:
    """torchrun the trainer on `processes` CPU processes: its final validation loss per task."""
    done = torchrun(processes, "-m", "talk2face_train.train", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    line = re.search(r"step 6 validation loss: (.*)", done.stdout)[1]  # "text_to_face 5.843, caption ..."
    return {task: float(value) for task, value in (item.split() for item in line.split(", "))}



# streaming: each process reads its own batches of the stream
@pytest.mark.parametrize("streaming", [False, True])
def test_two_cpu_processes_train_as_one_at_the_same_global_batch(tiny_world, tmp_path, streaming):
    steps = [*STEPS, f"--data.streaming={str(streaming).lower()}", "--data.streaming_block=16"]
    one = launch(1, tiny_train_args(tiny_world, tmp_path / "one", "--batch_size=8", *steps))
    two = tmp_path / "two"
    losses = launch(2, tiny_train_args(tiny_world, two, "--batch_size=4", *steps))
    assert json.loads((two / "final" / "talk2face.json").read_text())["processes"] == 2
    # every rank gathered the weights (a collective under FSDP), the main one wrote them: as one process does
    names = load_file(tmp_path / "one" / "final" / "model.safetensors").keys()
    assert load_file(two / "final" / "model.safetensors").keys() == names
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step_00000003"]  # one copy, not one per rank
    # each rank's RNG state is in it (a rank still writing when the main one renamed the folder left
    # a `.tmp` with its state behind, under load)
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in (two / "checkpoints" / "step_00000003").iterdir()}
    # the same examples per step, but each rank normalises its loss over its own answers and DDP
    # averages the two gradients; after 6 Adam steps that moved the validation losses by <= 1.8%
    # (measured); any other data or a rank training alone lands far outside 5%
    assert losses.keys() == one.keys()
    for task in one:
        assert abs(losses[task] - one[task]) <= 0.05 * one[task], (task, losses[task], one[task])

    # resume on 2 ranks from the step-3 checkpoint: the same weights as the uninterrupted run
    resumed = tmp_path / "resumed"
    launch(2, tiny_train_args(tiny_world, resumed, "--batch_size=4", *steps,
                              f"--resume={two / 'checkpoints' / 'step_00000003'}"))
    a, b = load_file(two / "final" / "model.safetensors"), load_file(resumed / "final" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
