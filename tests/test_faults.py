"""A kill at any point of a save loses nothing: the `final` swap and the resumable checkpoints.

A kill is an exception raised by a file operation (os.replace, shutil.rmtree, accelerate's
save_state) at that point; what is on disk afterwards is what a `kill -9` there would leave.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from accelerate import Accelerator

from conftest import tiny_train_args
from talk2face.checkpoint import check_checkpoint_folder, load_decoder, read_card, save_checkpoint_folder
from talk2face.errors import UserError
from talk2face_train.checkpoints import find_checkpoint
from talk2face_train.train import load_config, main, TrainConfig
from talk2face.vocab import Vocab


class Killed(Exception):
    """Stands for the process dying at this point."""


def kill_at(monkeypatch, n: int) -> list[str]:
    """Make the n-th call of os.replace / shutil.rmtree (0-based, counted together) raise Killed."""
    calls: list[str] = []
    for owner, name in ((os, "replace"), (shutil, "rmtree")):
        real = getattr(owner, name)

        def fault(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            if len(calls) - 1 == n:
                raise Killed(f"{_name}{args}")
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, fault)
    return calls


def step_of(folder: Path) -> int:
    """The step of a whole model folder (it loads), else an AssertionError."""
    check_checkpoint_folder(folder)
    load_decoder(folder)
    return read_card(folder)["step"]


def test_a_kill_at_any_point_of_the_final_swap_keeps_a_whole_final(tiny_model, tmp_path, monkeypatch):
    final = tmp_path / "final"
    shutil.copytree(tiny_model, final)
    old_step = step_of(final)
    model, vocab = load_decoder(tiny_model), Vocab.from_pretrained(tiny_model)
    card = dict(read_card(tiny_model), step=old_step + 1)
    config = yaml.safe_load((tiny_model / "train_config.yaml").read_text())

    def save() -> None:
        save_checkpoint_folder(final, model, vocab, tiny_model / "vqgan", tiny_model / "templates", config, card)

    with monkeypatch.context() as patch:  # count the points once, on a save that completes
        points = kill_at(patch, -1)
        save()
    assert points.count("replace") >= 2 and step_of(final) == old_step + 1
    for n in range(len(points)):
        card["step"] += 1
        with monkeypatch.context() as patch:
            kill_at(patch, n)
            with pytest.raises(Killed):
                save()
        if final.exists():
            assert step_of(final) in (card["step"] - 1, card["step"])
        else:  # killed between the two renames: the previous model is whole beside it, and said so
            assert step_of(final.with_name("final.old")) == card["step"] - 1
            with pytest.raises(UserError, match=r"a save into it was interrupted .*final.old"):
                check_checkpoint_folder(final)
        save()  # the next save completes, whatever the kill left
        assert step_of(final) == card["step"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_a_kill_at_any_point_of_a_checkpoint_save_resumes_exactly(tiny_world, tmp_path, monkeypatch):
    args = ("--optim.max_steps=6", "--save_every=2", "--keep_checkpoints=1")
    straight = main(tiny_train_args(tiny_world, tmp_path / "straight", *args)).losses

    def step4(path) -> bool:
        return Path(path).name.startswith("step_00000004")

    faults = {  # where the save of step 4 dies
        "clearing its temp folder": (shutil, "rmtree", lambda path, **_: step4(path)),
        "inside accelerate's save_state": (Accelerator, "save_state", lambda self, path, **_: step4(path)),
        "renaming it into place": (os, "replace", lambda src, dst: step4(src)),
        "pruning the older checkpoint": (shutil, "rmtree", lambda path, **_: Path(path).name == "step_00000002"),
    }
    for where, (owner, name, hit) in faults.items():
        out = tmp_path / where.replace(" ", "_").replace("'", "")
        real = getattr(owner, name)

        def fault(*a, _real=real, _hit=hit, _name=name, **k):
            if _hit(*a, **k):
                if _name == "save_state":
                    _real(*a, **k)  # it wrote everything, then died before trainer_state.json
                raise Killed(where)
            return _real(*a, **k)

        with monkeypatch.context() as patch:
            patch.setattr(owner, name, fault)
            with pytest.raises(Killed):
                main(tiny_train_args(tiny_world, out, *args))
        cfg = load_config(TrainConfig, None, [f"--output_dir={out}", "--resume=latest"])
        survivor = find_checkpoint(cfg.output_dir, cfg.resume)
        step = json.loads((survivor / "trainer_state.json").read_text())["step"]
        assert step in (2, 4), where
        resumed = main(tiny_train_args(tiny_world, out, *args, "--resume=latest")).losses
        assert resumed == pytest.approx(straight[step:], rel=1e-5), where
