"""The README.md of a model folder: a Hugging Face model card (YAML front matter + markdown).

Every folder `talk2face_train.train` saves gets one (talk2face.checkpoint.save_checkpoint_folder),
and scripts/ship.py writes the shipped model's with the same function, adding how it was shipped
and its `make eval` figures. Everything the card says is read from the folder's own files: the
card talk2face.json, the templates, the training config and the image tokenizer's config.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from talk2face.templates import Templates
from talk2face.vqgan.config import VQGANConfig

# how a user asks each task through Talk2Face (README, Prompting)
CALLS = {
    "text_to_face": 'model.text_to_face(["a smiling woman with glasses"], num_samples=4, seed=0)  # PIL images',
    "caption": 'model.caption(["face.png"])',
    "age": 'model.estimate_age(["face.png"])',
    "attributes": 'model.classify_attributes(["face.png"])',
    "edit": 'model.edit(["face.png"], ["add glasses"])',
    "edit_plan": 'model.plan_edits(["add glasses"])',
}
# the placeholder values of the card's plain-transformers example (a prompt with no face)
EXAMPLE_FIELDS = {"text": "a smiling woman with glasses", "instruction": "add glasses"}

# train_config's optim.name -> how the card says it (talk2face_train.optimizers builds them)
OPTIMIZERS = {"adamw": "AdamW", "muon": "Muon on the layers' weight matrices and AdamW on the rest"}


def model_card(
    path: str | Path, card: dict[str, Any], train_config: dict[str, Any], templates: Templates,
    vqgan: VQGANConfig, *, max_new_tokens: int, title: str | None = None, about: str | None = None,
    made: Sequence[str] = (), report: Path | None = None,
) -> ModelCard:
    """The model card of the checkpoint folder at `path`.

    Args:
        path: the folder as a user loads it (the snippets name it; report pictures link relative to it).
        card: its talk2face.json. train_config: its train_config.yaml. templates: its templates.
        vqgan: the architecture of its image tokenizer (its own vqgan/ or the one card["vqgan"] names).
        max_new_tokens: what its generation_config.json sets.
        title, about: a heading and an opening paragraph instead of the generic ones (scripts/ship.py).
        made: lines added to the Training section (how the folder was shipped, the machine).
        report: a `make eval` report.md; its figures become the Evaluation section (none without).
    Returns:
        a huggingface_hub.ModelCard; `.save(folder / "README.md")` writes it.
    """
    tasks, step, optim = card["tasks"], card.get("step"), train_config["optim"]
    h, w = vqgan.grid_size
    pretrained = card.get("init_from")
    preset = f"`{Path(pretrained).name}`" if pretrained else f"`{train_config['model']}`"
    shape = f"started from the pretrained LM {preset}" if pretrained else f"{preset} preset"
    extras = [name for key, name in (("face_grid", "face-grid cell embeddings"),
                                     ("prefix_lm", "prefix-LM attention")) if train_config.get(key)]
    lines = [
        f"# {title or f'talk2face: a {preset} decoder for {len(tasks)} face tasks, step {step}'}", "",
        about or (f"A stock Llama decoder ({shape}{''.join(f', {e}' for e in extras)}) that does every task "
                  f"below as next-token prediction over one vocabulary: text tokens, specials and the {vqgan.n_codes} "
                  f"codes of a VQGAN. Step {step} of {optim['max_steps']}."), "",
        *tasks_section(card, templates),
        *layout_section(card, train_config, h * w),
        *faces_section(card, vqgan),
        *use_section(str(path), card, train_config, templates, h * w, max_new_tokens),
        *training_section(card, train_config, made),
        *(evaluation_section(report, Path(path)) if report is not None else []),
    ]
    data = ModelCardData(library_name="transformers", tags=["talk2face", "faces", *tasks])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def tasks_section(card: dict[str, Any], templates: Templates) -> list[str]:
    rows = [f"| `{t}` | `{templates.get(t).prompt_texts[0]}` | `{templates.get(t).target_text}` |"
            for t in card["tasks"]]
    lines = ["## Tasks", "",
             "Trained on these tasks; each has several prompt paraphrases (`templates/<task>.yaml`), the first shown. "
             "`{face}` stands for a face, `{text}` for a description, `{instruction}` for an edit instruction.", "",
             "| task | first prompt template | answer |", "|---|---|---|", *rows, ""]
    if "attributes" in card["tasks"]:
        lines += [f"The attribute answer lists {len(card['attributes'])} attributes, in this order: "
                  + ", ".join(card["attributes"]) + ".", ""]
    return lines


def layout_section(card: dict[str, Any], train_config: dict[str, Any], n: int) -> list[str]:
    lines = ["## Sequence layout", "", "One question and its answer are one sequence:", "",
             "    <bos> prompt <sep> target <eos>", "",
             "the prompt and target written by the templates and tokenized by `tokenizer.json` with no special tokens "
             f"added; a `{{face}}`, in a prompt or an answer, is `<boi> <img_c1> ... <img_c{n}> <eoi>`: its {n} codes, "
             "row by row. The model reads `<bos> prompt <sep>` and writes the answer, which ends with `<eos>`."]
    if train_config["data"]["task_weights"].get("multi_answer", 0) > 0:
        lines += ["", "In training, several questions about one face also followed each other in one sequence "
                  "(`<bos> P1 <sep> A1 <eos> P2 <sep> A2 <eos> ...`, the later prompts without the face); one question "
                  "at a time is the form to ask in."]
    if card.get("attention") == "prefix_lm":
        lines += ["", "Attention is bidirectional over `<bos> prompt <sep>` and causal after it (prefix LM)."]
    if train_config["data"].get("edit_same"):
        lines += ["", "An edit's answer writes `<same>` in every cell it keeps from the source face."]
    return [*lines, ""]


def faces_section(card: dict[str, Any], vqgan: VQGANConfig) -> list[str]:
    h, w = vqgan.grid_size
    shared = card.get("vqgan")
    where = (f"named in talk2face.json: `{shared['path']}` relative to this folder (weights {shared['fingerprint']}), "
             "not copied here" if shared else "in `vqgan/` (`talk2face.vqgan.VQGAN.from_pretrained` loads it)")
    side = vqgan.image_size
    return ["## Faces", "",
            f"A face is {h} x {w} = {h * w} codes of a {vqgan.n_codes}-entry codebook, made by the VQGAN {where}. "
            "An image becomes codes as in training (`talk2face.data.images.load_images`): EXIF orientation applied, "
            "converted to RGB (alpha composited on white), centre-cropped to a square on its shorter side, resized "
            f"(bicubic) to {side} x {side} pixels, scaled to [-1, 1], then encoded; the VQGAN decodes {h * w} codes "
            f"back into a {side} x {side} image.", ""]


def use_section(path: str, card: dict[str, Any], train_config: dict[str, Any], templates: Templates, n: int,
                max_new_tokens: int) -> list[str]:
    calls = [CALLS[t] for t in card["tasks"] if t in CALLS]
    lines = ["## Use", "", "With talk2face (constrained decoding, guidance, parsed answers):", "", "```python",
             "from talk2face.facade import Talk2Face", "", f'model = Talk2Face.from_pretrained("{path}")', *calls,
             "```", "", "Without it, the decoder and the tokenizer are plain transformers:", "", "```python",
             "import torch", "from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast", "",
             f'model = AutoModelForCausalLM.from_pretrained("{path}")',
             f'tokenizer = PreTrainedTokenizerFast.from_pretrained("{path}")']
    # a task whose first prompt has no face in it: the example then needs no image tokenizer
    asked = next((t for t in sorted(card["tasks"], key=lambda t: t != "text_to_face")  # the likeliest to be wanted
                  if {name for _, name in templates.get(t).prompts[0] if name} <= set(EXAMPLE_FIELDS)), None)
    if asked is not None:
        prompt = templates.render_raw(templates.get(asked).prompt_texts[0], **EXAMPLE_FIELDS).prompt
        lines += [f"prompt = tokenizer({prompt!r}, add_special_tokens=False).input_ids  # task {asked}",
                  "ids = torch.tensor([[tokenizer.bos_token_id, *prompt, tokenizer.sep_token_id]])",
                  "answer = model.generate(ids)[0, ids.shape[1]:]", "print(tokenizer.decode(answer))"]
    longest = "a face" if max_new_tokens == n + 2 else "the whole attribute list and its `<eos>`"
    lines += ["```", "", f"`generation_config.json` sets `max_new_tokens` to {max_new_tokens}, the longest answer: "
              f"{longest} (a face is `<boi>`, {n} codes, `<eoi>`). A bare `generate` does not keep text tokens out "
              "of a face or codes out of a text answer; Talk2Face does, with logits processors."]
    if train_config.get("face_grid"):
        lines += ["", "This decoder adds a learnt embedding of each code's grid cell (`face_grid` in config.json): "
                  "a bare `AutoModelForCausalLM` load warns that `model.embed_tokens.cells.weight` is unused and "
                  "reads faces without their cells; load it with `talk2face.checkpoint.load_decoder` (or Talk2Face)."]
    if card.get("attention") == "prefix_lm":
        lines += ["", "A bare `AutoModelForCausalLM` load applies a causal mask to the prompt; load it with "
                  "`talk2face.checkpoint.load_decoder` (or Talk2Face)."]
    return [*lines, ""]


def training_section(card: dict[str, Any], train_config: dict[str, Any], made: Sequence[str]) -> list[str]:
    data, optim = train_config["data"], train_config["optim"]
    sources = [f"| `{s['tokenized']}` | {s.get('weight', 1.0)} | {', '.join(s.get('tasks', card['tasks']))} |"
               for s in data["sources"]]
    weights = ", ".join(f"`{t}` {v}" for t, v in data["task_weights"].items() if v > 0)
    tokens, processes = card.get("trained_tokens"), card.get("processes", 1)
    batch = train_config["batch_size"] * processes * optim["grad_accum"]
    parts = f"{train_config['batch_size']} per micro-batch x {processes} process{'es' if processes > 1 else ''}"
    return ["## Training", "",
            "| pre-tokenized source (`talk2face tokenize`) | weight | tasks |", "|---|---:|---|", *sources, "",
            f"- Task weights: {weights}.",
            f"- Steps: {card.get('step')} of {optim['max_steps']} optimizer steps of {batch} sequences "
            f"({parts} x {optim['grad_accum']} accumulated)"
            + (f", {tokens:,} tokens" if tokens else "") + f"; {OPTIMIZERS[optim.get('name', 'adamw')]}, peak learning rate {optim['lr']}, "
            f"{optim['warmup_steps']} warm-up steps, seed {train_config['seed']}; context {data['max_length']} tokens.",
            *([f"- Started from the pretrained language model `{card['init_from']}` (`init_from`): its weights, its "
               "config's shape and its tokenizer as the text side, the specials and image codes appended after its "
               "text ids."] if card.get("init_from") else []),
            "- The whole config: `train_config.yaml` (`python -m talk2face_train.train train_config.yaml "
            "--output_dir=NEW` trains it again).",
            *made, ""]


def evaluation_section(report: Path, folder: Path) -> list[str]:
    """The figures of a `make eval` report.md, its headings one level down and its pictures linked
    relative to the card's folder."""
    pictures = os.path.relpath(report.parent.resolve(), folder.resolve())
    body = [("#" + line if line.startswith("#") else line).replace("](", f"]({pictures}/")
            for line in report.read_text().split("\n") if not line.startswith("# ")]
    return ["## Evaluation", "", f"`make eval` figures (the full report: `{pictures}/{report.name}`).", *body]
