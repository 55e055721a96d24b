"""The Talk2Face checkpoint folder: everything `Talk2Face.from_pretrained(dir)` needs, no pickles.

    <dir>/config.json, model.safetensors, generation_config.json   the Llama decoder (HF format)
    <dir>/tokenizer.json, tokenizer_config.json, ...              the unified vocabulary (HF format)
    <dir>/vqgan/                                                  the image tokenizer (config.json + safetensors),
                                                                  or the card names a shared one (a shipped model)
    <dir>/templates/                                              the task templates it was trained with
    <dir>/train_config.yaml                                       how it was trained
    <dir>/talk2face.json                                          model card: tasks, attributes, context

The decoder and tokenizer load with plain `AutoModelForCausalLM` / `PreTrainedTokenizerFast`; a
decoder trained with face-grid cell embeddings (config `face_grid`, talk2face.face_grid) or
prefix-LM attention (config `prefix_lm`, talk2face.prefix_lm) needs `load_decoder` to read its
prompts as it was trained to.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, PreTrainedModel

from talk2face import face_grid, prefix_lm
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint

VQGAN_SUBDIR = "vqgan"
TEMPLATES_SUBDIR = "templates"
TRAIN_CONFIG_FILE = "train_config.yaml"
CARD_FILE = "talk2face.json"


def save_checkpoint_folder(
    out_dir: str | Path,
    model: PreTrainedModel,
    vocab: Any,
    vqgan_dir: str | Path,
    templates_dir: str | Path,
    train_config: dict[str, Any],
    card: dict[str, Any],
) -> Path:
    """Write a complete checkpoint folder atomically (temp folder, then rename).

    `card` holds what inference must know beyond the weights: `tasks` trained, `attributes`
    listed by the attribute task (ATTRIBUTES order), `max_length` (the context).
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    vocab.save_pretrained(tmp)
    shutil.copytree(vqgan_dir, tmp / VQGAN_SUBDIR)
    shutil.copytree(templates_dir, tmp / TEMPLATES_SUBDIR)
    (tmp / TRAIN_CONFIG_FILE).write_text(yaml.safe_dump(train_config, sort_keys=False))
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    # the old folder stays until the new one is in place: a kill at any point leaves one of them whole
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def check_checkpoint_folder(path: str | Path) -> Path:
    """Raise a UserError naming what is missing if `path` is not a complete checkpoint folder."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    required = ["config.json", "model.safetensors", "tokenizer.json", CARD_FILE, TEMPLATES_SUBDIR]
    missing = [name for name in required if not (path / name).exists()]
    if missing:
        raise UserError(f"{path} is not a talk2face model folder: missing {', '.join(missing)}")
    if not (vqgan_folder(path) / "config.json").exists():
        raise UserError(f"{path} is not a talk2face model folder: missing {VQGAN_SUBDIR}/config.json")
    return path


def vqgan_folder(path: Path) -> Path:
    """The image tokenizer of a checkpoint folder: its own `vqgan/`, or the shared folder its card
    names relative to it (`"vqgan": {"path", "fingerprint"}`: a shipped model uses the shipped
    tokenizer rather than a second copy), refused when those weights are not the ones it was trained on."""
    if (path / VQGAN_SUBDIR).exists():
        return path / VQGAN_SUBDIR
    shared = json.loads((path / CARD_FILE).read_text()).get("vqgan")
    if not shared:
        return path / VQGAN_SUBDIR  # reported missing by the caller
    folder = (path / shared["path"]).resolve()
    if weights_fingerprint(folder) != shared["fingerprint"]:
        raise UserError(f"{path / CARD_FILE}: the image tokenizer {folder} has weights {weights_fingerprint(folder)}, "
                        f"not the {shared['fingerprint']} this model was trained with")
    return folder


def load_decoder(path: Path) -> PreTrainedModel:
    """The decoder of a checkpoint folder, in eval mode, with the face-grid cells and the prefix-LM
    attention its config names."""
    config = AutoConfig.from_pretrained(path)
    grid, prefix = getattr(config, "face_grid", None), getattr(config, "prefix_lm", None)
    if grid:
        model = face_grid.install(AutoModelForCausalLM.from_config(config, dtype=torch.float32),
                                  range(grid["image_start"], grid["image_stop"]),
                                  grid["cells"])  # before the weights, which include the cells
        missing, unexpected = model.load_state_dict(load_file(path / "model.safetensors"), strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # the output embeddings are tied, not stored
            raise UserError(f"{path / 'model.safetensors'}: weights do not match config.json "
                            f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})")
        if (path / "generation_config.json").exists():
            model.generation_config = GenerationConfig.from_pretrained(path)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # fp16-stored weights train and run in fp32
    if prefix:
        prefix_lm.install(model, prefix["sep_id"])
    return model.eval()
