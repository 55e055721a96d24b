"""The Talk2Face checkpoint folder: everything `Talk2Face.from_pretrained(dir)` needs, no pickles.

    <dir>/config.json, model.safetensors, generation_config.json   the Llama decoder (HF format)
    <dir>/tokenizer.json, tokenizer_config.json, ...              the unified vocabulary (HF format)
    <dir>/vqgan/                                                  the image tokenizer (config.json + safetensors),
                                                                  or the card names a shared one (a shipped model,
                                                                  a run's intermediate folders)
    <dir>/templates/                                              the task templates it was trained with
    <dir>/train_config.yaml                                       how it was trained
    <dir>/talk2face.json                                          what inference needs: tasks, attributes, context
    <dir>/README.md                                               the model card for people (talk2face.model_card)

The decoder and tokenizer load with plain `AutoModelForCausalLM` / `PreTrainedTokenizerFast`; a
decoder trained with face-grid cell embeddings (config `face_grid`, talk2face.face_grid) or
prefix-LM attention (config `prefix_lm`, talk2face.prefix_lm) needs `load_decoder` to read its
prompts as it was trained to.
"""

from __future__ import annotations

import copy
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
from talk2face.errors import UserError, read_json
from talk2face.fingerprint import weights_fingerprint
from talk2face.model_card import model_card
from talk2face.templates import Templates
from talk2face.vqgan.config import VQGANConfig
from talk2face.vqgan.model import VQGAN

VQGAN_SUBDIR = "vqgan"
TEMPLATES_SUBDIR = "templates"
TRAIN_CONFIG_FILE = "train_config.yaml"
CARD_FILE = "talk2face.json"
README_FILE = "README.md"


def save_checkpoint_folder(
    out_dir: str | Path,
    model: PreTrainedModel,
    vocab: Any,
    vqgan_dir: str | Path,
    templates_dir: str | Path,
    train_config: dict[str, Any],
    card: dict[str, Any],
    share_vqgan: bool = False,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a complete checkpoint folder atomically (temp folder, then rename), its README.md included.

    `card` holds what inference must know beyond the weights: `tasks` trained, `attributes`
    listed by the attribute task (ATTRIBUTES order), `max_length` (the context). `share_vqgan`
    names `vqgan_dir` in the card instead of copying it (a run's intermediate folders: the same
    tokenizer every time, often larger than the decoder); a final folder copies it, whole on its own.
    `state_dict` holds the decoder's weights when `model`'s own are sharded (FSDP: gathered on every
    rank, held by the main one, which calls this); None = `model.state_dict()`.
    """
    out_dir, vqgan_dir = Path(out_dir), Path(vqgan_dir)
    tmp, old = (out_dir.with_name(out_dir.name + suffix) for suffix in (".tmp", ".old"))
    if old.exists() and not out_dir.exists():  # a save killed between the two renames below: undo it first
        os.replace(old, out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    weights = None if state_dict is None else without_aliases(model, state_dict)
    model.save_pretrained(tmp, safe_serialization=True, state_dict=weights)
    vocab.save_pretrained(tmp)
    if share_vqgan:
        card = {**card, "vqgan": vqgan_reference(vqgan_dir, out_dir)}  # tmp is out_dir's sibling: the same path
    else:
        shutil.copytree(vqgan_dir, tmp / VQGAN_SUBDIR)
    shutil.copytree(templates_dir, tmp / TEMPLATES_SUBDIR)
    (tmp / TRAIN_CONFIG_FILE).write_text(yaml.safe_dump(train_config, sort_keys=False))
    generation = copy.deepcopy(model.generation_config)  # the training model's own stays as it is
    write_card_files(tmp, out_dir, generation, vocab, Templates.load(templates_dir), VQGAN.read_config(vqgan_dir),
                     card, train_config)
    # the old folder stays until the new one is in place: a kill at any point leaves one of them whole
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def without_aliases(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state_dict` less the names under which `model` shares a parameter already named (the tied
    lm_head): a gathered state dict holds a separate copy under each name, which save_pretrained,
    finding no shared storage, would write twice."""
    aliases = {n for n, _ in model.named_parameters(remove_duplicate=False)} - {n for n, _ in model.named_parameters()}
    return {name: tensor for name, tensor in state_dict.items() if name not in aliases}


def write_card_files(folder: Path, shown_as: Path, generation: GenerationConfig, vocab: Any, templates: Templates,
                     vqgan: VQGANConfig, card: dict[str, Any], train_config: dict[str, Any], **readme: Any) -> None:
    """Write the files that describe a checkpoint folder: talk2face.json (`card`), README.md
    (talk2face.model_card with the options `readme`; `shown_as` is the folder's path in its snippets)
    and generation_config.json with `max_new_tokens` set to its longest answer."""
    generation.max_new_tokens = longest_answer(vocab, templates, card, vqgan)
    generation.save_pretrained(folder)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    model_card(shown_as, card, train_config, templates, vqgan, max_new_tokens=generation.max_new_tokens,
               **readme).save(folder / README_FILE)


def longest_answer(vocab: Any, templates: Templates, card: dict[str, Any], vqgan: VQGANConfig) -> int:
    """The tokens after `<sep>` of the longest answer a model writes: a face (`<boi>`, h*w codes,
    `<eoi>`; the `<eos>` after it adds nothing), or the whole attribute list and its `<eos>`, which
    is longer on a small grid (99 tokens for SynFace's 28 attributes against 66 for its 8x8 face)."""
    h, w = vqgan.grid_size
    face = h * w + 2
    if "attributes" not in card["tasks"] or not card["attributes"]:
        return face
    t = templates.get("attributes")
    lists = [t.target_text.replace("{attributes}", t.attributes.render(dict.fromkeys(card["attributes"], value)))
             for value in (True, False)]
    return max(face, *(len(vocab.encode(text)) + 1 for text in lists))


def vqgan_reference(vqgan_dir: Path, folder: Path) -> dict[str, str]:
    """The card entry that names a shared image tokenizer instead of a copy (see `vqgan_folder`)."""
    return {"path": os.path.relpath(Path(vqgan_dir).resolve(), Path(folder).resolve()),
            "fingerprint": weights_fingerprint(vqgan_dir)}


def check_checkpoint_folder(path: str | Path) -> Path:
    """Raise a UserError naming what is missing if `path` is not a complete checkpoint folder."""
    path = Path(path)
    if not path.is_dir():
        old = path.with_name(path.name + ".old")
        if (old / CARD_FILE).is_file():
            raise UserError(f"model folder not found: {path}; a save into it was interrupted and the previous "
                            f"model is whole in {old}: rename it back, or let the next save do it")
        raise UserError(f"model folder not found: {path}")
    required = ["config.json", "model.safetensors", "tokenizer.json", CARD_FILE, TEMPLATES_SUBDIR]
    missing = [name for name in required if not (path / name).exists()]
    if missing:
        raise UserError(f"{path} is not a talk2face model folder: missing {', '.join(missing)}")
    if not (path / VQGAN_SUBDIR / "config.json").exists() and "vqgan" not in read_card(path):
        raise UserError(f"{path} is not a talk2face model folder: missing {VQGAN_SUBDIR}/config.json")
    return path  # a shared tokenizer is found and checked by vqgan_folder, when it is loaded


def vqgan_folder(path: Path) -> Path:
    """The image tokenizer of a checkpoint folder: its own `vqgan/`, or the shared folder its card
    names relative to it (`"vqgan": {"path", "fingerprint"}`: a shipped model uses the shipped
    tokenizer rather than a second copy, a run's intermediate folders their data.vqgan), refused when
    those weights are not the ones it was trained on."""
    if (path / VQGAN_SUBDIR).exists():
        return path / VQGAN_SUBDIR
    shared = read_card(path).get("vqgan")
    if not shared:
        return path / VQGAN_SUBDIR  # reported missing by the caller
    folder = (path / shared["path"]).resolve()
    if not folder.is_dir():
        raise UserError(f"{path / CARD_FILE} names the image tokenizer {shared['path']} (relative to the folder), "
                        f"but {folder} is missing: copy it back there")
    found = weights_fingerprint(folder)
    if found != shared["fingerprint"]:
        raise UserError(f"{path / CARD_FILE}: the image tokenizer {folder} has weights {found}, "
                        f"not the {shared['fingerprint']} this model was trained with")
    return folder


def read_card(path: Path) -> dict[str, Any]:
    """The model card (talk2face.json) of a checkpoint folder, with the keys inference needs."""
    card = read_json(path / CARD_FILE)
    missing = [k for k in ("attributes", "max_length") if not isinstance(card, dict) or k not in card]
    if missing:
        raise UserError(f"{path / CARD_FILE}: missing key(s) {missing} (not written by talk2face_train.train)")
    return card


def load_decoder(path: Path) -> PreTrainedModel:
    """The decoder of a checkpoint folder, in eval mode, with the face-grid cells and the prefix-LM
    attention its config names."""
    read_json(path / "config.json")  # a malformed file is named here, not deep inside transformers
    try:
        config = AutoConfig.from_pretrained(path)
    except (ValueError, KeyError, OSError) as err:
        raise UserError(f"{path / 'config.json'}: not a transformers model config ({str(err).splitlines()[0]})") from None
    grid, prefix = getattr(config, "face_grid", None), getattr(config, "prefix_lm", None)
    weights = path / "model.safetensors"
    try:
        if grid:
            # the cells go in before the weights, which include them
            model = face_grid.install(AutoModelForCausalLM.from_config(config, dtype=torch.float32),
                                      range(grid["image_start"], grid["image_stop"]), grid["cells"])
            missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
        else:
            model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
            missing, unexpected = info["missing_keys"], info["unexpected_keys"]
    except Exception as err:  # safetensors raises its own error type for a truncated or corrupt file
        raise UserError(f"{weights}: not a readable safetensors file ({str(err).splitlines()[0]}); copy it again") from None
    if unexpected or set(missing) - {"lm_head.weight"}:  # the output embeddings are tied, not stored
        raise UserError(f"{weights}: weights do not match config.json "
                        f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})")
    if grid and (path / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(path)
    if prefix:
        prefix_lm.install(model, prefix["sep_id"])
    return model.eval()
