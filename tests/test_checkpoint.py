"""A checkpoint folder that names a shared image tokenizer (a shipped model, a run's intermediate folders),
stores its decoder in fp16 (a shipped model), or is written from gathered (FSDP) weights."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import tiny_train_args
from talk2face.checkpoint import CARD_FILE, README_FILE, TRAIN_CONFIG_FILE, load_decoder, save_checkpoint_folder
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint
from talk2face.facade import Talk2Face
from talk2face.vocab import Vocab
from talk2face_train.train import main


def shipped_copy(tiny_model, tmp_path):
    """The tiny model as scripts/ship.py lays out a shipped one: fp16 weights, tokenizer elsewhere."""
    model_dir, shared = tmp_path / "models" / "tiny", tmp_path / "tokenizers" / "tiny-vqgan"
    shutil.copytree(tiny_model, model_dir)
    shutil.move(model_dir / "vqgan", shared)
    load_decoder(tiny_model).to(torch.float16).save_pretrained(model_dir)
    card = json.loads((model_dir / CARD_FILE).read_text())
    card["vqgan"] = {"path": "../../tokenizers/tiny-vqgan", "fingerprint": weights_fingerprint(shared)}
    (model_dir / CARD_FILE).write_text(json.dumps(card))
    return model_dir, shared


def test_a_model_naming_a_shared_tokenizer_answers_like_the_original(tiny_model, tiny_world, tmp_path):
    model_dir, shared = shipped_copy(tiny_model, tmp_path)
    original, shipped = Talk2Face.from_pretrained(tiny_model), Talk2Face.from_pretrained(model_dir)
    assert next(shipped.model.parameters()).dtype == torch.float32  # fp16 on disk, fp32 to run
    assert (model_dir / "model.safetensors").stat().st_size < 0.6 * (tiny_model / "model.safetensors").stat().st_size
    face = sorted((tiny_world["synface"] / "test").glob("*.png"))[0]
    assert torch.allclose(original.age_distribution([face]), shipped.age_distribution([face]), atol=2e-3)
    assert torch.equal(shipped.vqgan.quantize.embedding.weight, original.vqgan.quantize.embedding.weight)


def test_a_changed_shared_tokenizer_is_refused(tiny_model, tmp_path):
    model_dir, shared = shipped_copy(tiny_model, tmp_path)
    (shared / "model.safetensors").write_bytes((shared / "model.safetensors").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(UserError, match="not the .* this model was trained with"):
        Talk2Face.from_pretrained(model_dir)


def test_an_intermediate_folder_names_the_run_vqgan_and_the_final_one_copies_it(tiny_world, tmp_path):
    run = tmp_path / "run"
    main(tiny_train_args(tiny_world, run, "--optim.max_steps=2", "--evaluable_every=2"))
    intermediate, final = run / "evaluable" / "step_00000002", run / "final"
    assert [p.relative_to(intermediate).as_posix() for p in intermediate.rglob("*.safetensors")] == ["model.safetensors"]
    card = json.loads((intermediate / CARD_FILE).read_text())
    assert (intermediate / card["vqgan"]["path"]).resolve() == tiny_world["vqgan"].resolve()
    assert card["vqgan"]["fingerprint"] == weights_fingerprint(tiny_world["vqgan"])
    model = Talk2Face.from_pretrained(intermediate)
    assert torch.equal(model.vqgan.quantize.embedding.weight, Talk2Face.from_pretrained(final).vqgan.quantize.embedding.weight)
    assert (final / "vqgan" / "model.safetensors").is_file() and "vqgan" not in json.loads((final / CARD_FILE).read_text())


def test_a_missing_shared_tokenizer_is_named(tiny_model, tmp_path):
    model_dir, shared = shipped_copy(tiny_model, tmp_path)
    shutil.rmtree(shared)
    with pytest.raises(UserError, match=r"names the image tokenizer \.\./\.\./tokenizers/tiny-vqgan .* is missing"):
        Talk2Face.from_pretrained(model_dir)


def test_gathered_weights_write_the_folder_the_model_itself_writes(tiny_model, tmp_path):
    """FSDP's full state dict holds a copy per name (the tied lm_head too, in storage of its own); the
    folder must not change. The tiny model's own folder was written by the trainer from its state dict."""
    model = load_decoder(tiny_model)
    args = (Vocab.from_pretrained(tiny_model), tiny_model / "vqgan", tiny_model / "templates",
            yaml.safe_load((tiny_model / TRAIN_CONFIG_FILE).read_text()), json.loads((tiny_model / CARD_FILE).read_text()))
    own = save_checkpoint_folder(tmp_path / "own", model, *args)
    gathered = save_checkpoint_folder(tmp_path / "gathered", model, *args,
                                      state_dict={name: w.clone() for name, w in model.state_dict().items()})
    files = sorted(p.relative_to(own) for p in own.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(gathered) for p in gathered.rglob("*") if p.is_file())
    for name in files:  # byte for byte, but the card's snippets that name the folder's own path
        assert name.name == README_FILE or (own / name).read_bytes() == (gathered / name).read_bytes(), name
    trained, saved = load_file(tiny_model / "model.safetensors"), load_file(own / "model.safetensors")
    assert trained.keys() == saved.keys() and "lm_head.weight" not in saved
    assert all(torch.equal(trained[k], saved[k]) for k in saved)
