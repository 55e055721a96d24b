"""Evaluator network: it learns, it round-trips through save/load, its trainer runs end to end."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from talk2face import cli
from talk2face.data.record import FaceRecord
from talk2face.errors import UserError
from talk2face.evaluation.evaluator import EvaluatorConfig, FaceEvaluator
from talk2face_train.evaluator import augment, losses, main

SIZE = 16


def _tiny_faces(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images whose labels are visible: Eyeglasses = bright top band, Smiling = red tint, age = brightness."""
    g = torch.Generator().manual_seed(seed)
    attrs = torch.randint(0, 2, (n, 2), generator=g)
    ages = torch.randint(5, 80, (n,), generator=g).float()
    images = (ages / 80 * 1.2 - 0.6)[:, None, None, None].expand(n, 3, SIZE, SIZE).clone()  # (n, 3, S, S)
    images[:, :, : SIZE // 4] += attrs[:, 0, None, None, None] * 0.8
    images[:, 0] += attrs[:, 1, None, None] * 0.5
    return images.clamp(-1, 1), attrs, ages


def _config() -> EvaluatorConfig:
    return EvaluatorConfig(attributes=["Eyeglasses", "Smiling"], image_size=SIZE, channels=[8, 16], convs_per_block=1, feature_dim=32, max_age=90)


def test_loss_drops_in_a_few_steps():
    torch.manual_seed(0)
    model = FaceEvaluator(_config())
    images, attrs, ages = _tiny_faces(32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(20):
        attr_loss, age_loss = losses(model, images, attrs, ages, sigma=2.0)
        loss = attr_loss + 0.5 * age_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.7 * history[0]


def test_unknown_labels_do_not_count():
    model = FaceEvaluator(_config())
    images, attrs, ages = _tiny_faces(4)
    unknown_attrs, unknown_ages = torch.full_like(attrs, -1), torch.full_like(ages, -1)
    attr_loss, age_loss = losses(model, images, unknown_attrs, unknown_ages, sigma=2.0)
    assert attr_loss.item() == 0 and age_loss.item() == 0


def test_save_load_round_trip(tmp_path):
    model = FaceEvaluator(_config())
    with torch.no_grad():  # move BatchNorm statistics away from their defaults
        model.train()
        model(_tiny_faces(32)[0])
    images = _tiny_faces(5, seed=1)[0]
    probs, ages = model.predict(images)
    assert probs.shape == (5, 2) and ages.shape == (5,) and model.features(images).shape == (5, 32)
    model.save_pretrained(tmp_path / "ev")
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["config.json", "model.safetensors"]
    loaded = FaceEvaluator.from_pretrained(tmp_path / "ev")
    probs2, ages2 = loaded.predict(images)
    assert torch.equal(probs, probs2) and torch.equal(ages, ages2)
    # another resolution is resized to the evaluator's own
    assert loaded.predict(torch.zeros(2, 3, 2 * SIZE, 2 * SIZE))[0].shape == (2, 2)
    with pytest.raises(UserError, match="missing config.json"):
        FaceEvaluator.from_pretrained(tmp_path)


def test_bad_image_size_is_a_user_error():
    with pytest.raises(UserError, match="divisible"):
        FaceEvaluator(EvaluatorConfig(attributes=["Smiling"], image_size=20, channels=[8, 8, 8]))


def test_augment_keeps_shape_and_flips():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    g = torch.Generator().manual_seed(0)
    out = augment(images, shift=1, flip=True, generator=g)
    assert out.shape == images.shape
    flipped_only = augment(images, shift=0, flip=True, generator=torch.Generator().manual_seed(3))
    for a, b in zip(images, flipped_only):
        assert torch.equal(a, b) or torch.equal(a.flip(-1), b)


def _write_imagefolder(root, n_per_split: dict[str, int]) -> None:
    for split, n in n_per_split.items():
        images, attrs, ages = _tiny_faces(n, seed=len(split))
        (root / split).mkdir(parents=True)
        lines = []
        for i in range(n):
            pixels = images[i].add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(root / split / f"{i}.png")
            record = FaceRecord(
                image=f"{i}.png", id=f"{split}-{i}", split=split, age=int(ages[i]),
                attributes={"Eyeglasses": bool(attrs[i, 0]), "Smiling": bool(attrs[i, 1])},
            )
            lines.append(json.dumps(record.to_json()))
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")


def test_train_evaluator_main_end_to_end(tmp_path, capsys):
    _write_imagefolder(tmp_path / "data", {"train": 96, "validation": 16, "test": 16})
    config = tmp_path / "ev.yaml"
    config.write_text(
        f"data: {{source: {tmp_path / 'data'}}}\n"
        f"model: {{image_size: {SIZE}, channels: [8, 16], convs_per_block: 1, feature_dim: 32, max_age: 90}}\n"
        "train: {epochs: 2, batch_size: 32, warmup_steps: 2}\n"
        f"out: {tmp_path / 'out'}\n"
    )
    assert main([str(config)]) == 0
    printed = capsys.readouterr().out
    assert "test:" in printed and "attr_mean_acc" in printed
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"attr_mean_acc", "attr_balanced_acc", "age_mae", "age_cs5", "acc/Smiling"}
    loaded = FaceEvaluator.from_pretrained(tmp_path / "out")
    assert loaded.config.attributes == ["Eyeglasses", "Smiling"]  # taken from the data


def test_train_evaluator_reports_bad_input(tmp_path, capsys):
    config = tmp_path / "ev.yaml"
    config.write_text("train: {epochs: 1, batchsize: 3}\n")
    assert cli.main(["train-evaluator", str(config)]) == 2
    assert "batchsize" in capsys.readouterr().err
    config.write_text(f"data: {{source: {tmp_path / 'missing'}}}\n")
    assert cli.main(["train-evaluator", str(config)]) == 2
    assert "missing" in capsys.readouterr().err
