"""Every saved model folder has a README.md a hub user understands: a Hugging Face model card."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import GenerationConfig

from conftest import tiny_train_args
from talk2face.checkpoint import (TEMPLATES_SUBDIR, longest_answer, read_card, vqgan_folder,
                                  write_card_files)
from talk2face.templates import Templates
from talk2face.vocab import Vocab
from talk2face.vqgan import VQGAN


@pytest.fixture(scope="module")
def run(tiny_world, tmp_path_factory):
    """A 4-step tiny run (Muon) that keeps an intermediate model folder at step 2."""
    from talk2face_train.train import main

    out = tmp_path_factory.mktemp("carded")
    main(tiny_train_args(tiny_world, out, "--optim.max_steps=4", "--evaluable_every=2", "--optim.name=muon"))
    return out


@pytest.mark.parametrize("folder", ["final", "evaluable/step_00000002"])
def test_every_saved_folder_has_a_card_naming_its_tasks_and_how_to_load_it(run, folder):
    path = run / folder
    text = (path / "README.md").read_text()
    front = yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL).group(1))
    card, templates = read_card(path), Templates.load(path / TEMPLATES_SUBDIR)
    assert front["library_name"] == "transformers" and set(card["tasks"]) <= set(front["tags"])
    assert ModelCard.load(path / "README.md").data.tags == front["tags"]
    for task in card["tasks"]:
        assert f"| `{task}` | `{templates.get(task).prompt_texts[0]}` |" in text
    assert "<bos> prompt <sep> target <eos>" in text and "4 x 4 = 16 codes" in text and "32 x 32 pixels" in text
    assert f'AutoModelForCausalLM.from_pretrained("{path}")' in text
    assert f'PreTrainedTokenizerFast.from_pretrained("{path}")' in text
    assert f'Talk2Face.from_pretrained("{path}")' in text
    assert "; Muon on the layers' weight matrices and AdamW on the rest, peak learning rate" in text
    assert "- Steps: " in text and "## Evaluation" not in text  # no report is known for a training folder


def test_the_cards_plain_transformers_example_runs(run):
    text = (run / "final" / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[1]
    assert "AutoModelForCausalLM" in example and "Talk2Face" not in example
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(example, {})
    assert out.getvalue().strip()


def test_max_new_tokens_fits_the_longest_answer(run):
    path = run / "final"
    card, vocab, templates = read_card(path), Vocab.from_pretrained(path), Templates.load(path / TEMPLATES_SUBDIR)
    attributes = templates.get("attributes").attributes.render(dict.fromkeys(card["attributes"], True))
    face = 4 * 4 + 2  # <boi>, h*w codes, <eoi>
    assert GenerationConfig.from_pretrained(path).max_new_tokens == max(face, len(vocab.encode(attributes)) + 1) > face
    vqgan = VQGAN.read_config(vqgan_folder(path))
    assert longest_answer(vocab, templates, {**card, "tasks": ["text_to_face", "caption"]}, vqgan) == face


def test_a_shipped_card_keeps_its_story_and_links_the_report_pictures(tiny_model, tmp_path):
    shipped = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_model, shipped)
    (shipped / "eval").mkdir()
    (shipped / "eval" / "report.md").write_text("# talk2face eval\n\n## age\n\n| | MAE |\n|---|---:|\n| model | 9.1 |\n\n"
                                                "![age: predicted vs true age](age_age_scatter.png)\n")
    write_card_files(shipped, shipped, GenerationConfig.from_pretrained(shipped), Vocab.from_pretrained(shipped),
                     Templates.load(shipped / TEMPLATES_SUBDIR), VQGAN.read_config(shipped / "vqgan"),
                     read_card(shipped), yaml.safe_load((shipped / "train_config.yaml").read_text()),
                     title="Tiny shipped model", about="Weights stored in fp16.", made=["- Machine: here."],
                     report=shipped / "eval" / "report.md")
    text = (shipped / "README.md").read_text()
    assert text.split("\n---\n", 1)[1].lstrip().startswith("# Tiny shipped model\n\nWeights stored in fp16.")
    assert "- Machine: here." in text and "### age\n\n| | MAE |" in text and "# talk2face eval" not in text
    assert "![age: predicted vs true age](eval/age_age_scatter.png)" in text
    assert json.loads((shipped / "talk2face.json").read_text()) == read_card(tiny_model)
