"""`init_from`: the decoder starts from a pretrained Llama LM on disk. A tiny random Llama saved with a
SentencePiece model trained on the tiny SynFace captions stands in for the pretrained LM (no downloads)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from conftest import tiny_train_args
from talk2face.errors import UserError
from talk2face.facade import Talk2Face
from talk2face.modeling import codebook_projection
from talk2face.templates import Templates
from talk2face.vocab import SPECIALS, Vocab
from talk2face_train.pretrained_lm import load_pretrained, pretrained_tokenizer
from talk2face_train.text_tokenizer import TEMPLATE_REPEAT, corpus_from_sources, train_sentencepiece
from talk2face_train.train import main

REPO = Path(__file__).resolve().parents[1]
N_CODES = 64  # the tiny world's codebook


def save_pretrained_lm(folder: Path, tokenizer_model: Path, tied: bool, padded_rows: int = 0) -> Path:
    """A random Llama (3 layers, 32 wide: another shape than any preset) with the SentencePiece model
    as its tokenizer; `padded_rows` unused embedding rows past the tokenizer, as many LMs have."""
    n_text = pretrained_tokenizer(tokenizer_model.parent).get_vocab_size()
    config = LlamaConfig(vocab_size=n_text + padded_rows, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(1)
    LlamaForCausalLM(config).save_pretrained(folder)
    shutil.copy(tokenizer_model, folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="module")
def sentencepiece_model(tiny_world, tmp_path_factory) -> Path:
    """A SentencePiece unigram model of the tiny world's captions and the templates (ages split into digits)."""
    templates = Templates.load(REPO / "templates")
    texts = corpus_from_sources([tiny_world["synface"]]) + templates.corpus() * TEMPLATE_REPEAT
    out = tmp_path_factory.mktemp("sp") / "tokenizer.model"
    train_sentencepiece(texts, out, "unigram", vocab_size=400, required_words=templates.answer_words())
    return out


@pytest.fixture(scope="module")
def pretrained(sentencepiece_model, tmp_path_factory) -> Path:
    """The stand-in pretrained LM: untied output embeddings, 8 padded rows."""
    return save_pretrained_lm(tmp_path_factory.mktemp("pretrained"), sentencepiece_model, tied=False, padded_rows=8)


@pytest.mark.parametrize("tied", [False, True])
def test_the_vocabulary_is_appended_and_the_pretrained_rows_are_kept(tied, sentencepiece_model, tmp_path):
    folder = save_pretrained_lm(tmp_path, sentencepiece_model, tied, padded_rows=0 if tied else 8)
    before = load_file(str(folder / "model.safetensors"))
    vocab = Vocab(pretrained_tokenizer(folder), n_codes=N_CODES, same_token=True)
    codebook = torch.randn(N_CODES, 16, generator=torch.Generator().manual_seed(0))
    model = load_pretrained(folder, vocab, max_length=192, codebook=codebook)

    n_text = vocab.n_text
    assert n_text == pretrained_tokenizer(folder).get_vocab_size()  # the text ids are the pretrained tokenizer's
    assert [vocab.pad_id, vocab.face_id, vocab.image_token_start, vocab.same_id] == [
        n_text, n_text + len(SPECIALS) - 1, n_text + len(SPECIALS), n_text + len(SPECIALS) + N_CODES]
    assert model.config.vocab_size == len(vocab) == n_text + len(SPECIALS) + N_CODES + 1
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (
        vocab.pad_id, vocab.bos_id, vocab.eos_id)
    assert model.generation_config.eos_token_id == vocab.eos_id
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 3)  # the folder's shape

    sides = {"model.embed_tokens.weight": model.get_input_embeddings().weight}
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        assert "lm_head.weight" not in before
    else:
        sides["lm_head.weight"] = model.get_output_embeddings().weight
    for name, weight in sides.items():
        pretrained_rows = before[name][:n_text]  # (T, H)
        assert torch.equal(weight[:n_text], pretrained_rows)  # bit for bit
        mean, std = pretrained_rows.mean(0), pretrained_rows.std(0, unbiased=False)
        for special in [*vocab.special_ids, vocab.same_id]:
            torch.testing.assert_close(weight[special], mean)
        image = weight[vocab.image_token_range.start : vocab.image_token_range.stop]  # (K, H)
        torch.testing.assert_close(image.mean(0), mean, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(image.std(0, unbiased=False), std, atol=1e-5, rtol=1e-4)
        # alike codes, alike rows: the codebook's projection, standardised
        z = codebook_projection(codebook, 32)
        torch.testing.assert_close((image - mean) / std, (z - z.mean(0)) / z.std(0, unbiased=False), atol=1e-4, rtol=1e-4)


def test_training_from_a_pretrained_lm_runs_resumes_and_loads_with_transformers_alone(pretrained, tiny_world, tmp_path):
    start = ["--optim.max_steps=4", "--save_every=2", f"--init_from={pretrained}"]
    full = main(tiny_train_args(tiny_world, tmp_path / "full", *start))
    crashed = tmp_path / "crashed"  # only the step-2 checkpoint survived: resuming replays steps 3 and 4 exactly
    (crashed / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step_00000002", crashed / "checkpoints" / "step_00000002")
    resumed = main(tiny_train_args(tiny_world, crashed, *start, "--resume=latest"))
    assert resumed.losses == pytest.approx(full.losses[2:], rel=1e-5)

    final = full.final_dir
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    vocab = Vocab.from_pretrained(final)
    assert model.config.vocab_size == len(tokenizer) == len(vocab)
    assert (model.config.hidden_size, model.config.max_position_embeddings) == (32, 256)  # the pretrained LM's
    assert not model.config.tie_word_embeddings and "lm_head.weight" in load_file(str(final / "model.safetensors"))
    text = "how old is this person? a 34-year-old man"
    assert tokenizer(text, add_special_tokens=False).input_ids == vocab.encode(text).tolist()
    ids = torch.tensor([[vocab.bos_id, *vocab.encode("a smiling man"), vocab.sep_id]])
    assert model(ids).logits.shape == (1, ids.shape[1], len(vocab))

    card = json.loads((final / "talk2face.json").read_text())
    assert card["init_from"] == str(pretrained.resolve())
    assert yaml.safe_load((final / "train_config.yaml").read_text())["init_from"] == str(pretrained)
    assert "Started from the pretrained language model" in (final / "README.md").read_text()

    # the SentencePiece side writes "34" as several tokens: estimate_age scores whole answers
    t2f = Talk2Face.from_pretrained(final, bf16=False)
    faces = sorted((tiny_world["synface"] / "test").glob("*.png"))[:2]
    assert t2f.vocab.number_token_ids is None
    probs = t2f.age_distribution(faces)
    assert probs.shape == (2, 121) and torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    assert t2f.estimate_age(faces) == pytest.approx((probs @ torch.arange(121.0)).tolist(), rel=1e-5)


def test_face_grid_and_prefix_lm_train_on_a_pretrained_lm(pretrained, tiny_world, tmp_path):
    run = main(tiny_train_args(tiny_world, tmp_path / "grid", "--optim.max_steps=2", f"--init_from={pretrained}",
                               "--face_grid=true", "--prefix_lm=true"))
    t2f = Talk2Face.from_pretrained(run.final_dir, bf16=False)
    assert t2f.model.config.face_grid["image_start"] == t2f.vocab.image_token_start
    assert len(t2f.caption(sorted((tiny_world["synface"] / "test").glob("*.png"))[:1], max_new_tokens=3)) == 1


def bad_folder(pretrained: Path, tmp_path: Path, change: str) -> Path:
    """A copy of the pretrained folder with one thing wrong."""
    folder = tmp_path / f"bad-{change}"
    shutil.copytree(pretrained, folder)
    config = json.loads((folder / "config.json").read_text())
    if change == "gemma":
        config["model_type"] = "gemma"
    elif change == "short":
        config["max_position_embeddings"] = 128
    elif change == "no-tokenizer":
        (folder / "tokenizer.model").unlink()
    elif change == "bad-tokenizer":
        (folder / "tokenizer.model").write_bytes(b"\x00 not a model")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("change, expected", [
    ("missing", "init_from={folder}: no such folder"),
    ("gemma", "init_from: {folder}/config.json has model_type 'gemma'; only 'llama'"),
    ("short", "init_from: {folder}/config.json has max_position_embeddings 128, shorter than data.max_length 192"),
    ("no-tokenizer", "init_from: {folder} has neither tokenizer.json nor tokenizer.model"),
    ("bad-tokenizer", "{folder}/tokenizer.model: not a SentencePiece model"),
])
def test_a_bad_pretrained_folder_is_one_line_before_any_work(change, expected, pretrained, tiny_world, tmp_path):
    folder = tmp_path / "nowhere" if change == "missing" else bad_folder(pretrained, tmp_path, change)
    with pytest.raises(UserError) as err:
        main(tiny_train_args(tiny_world, tmp_path / "run", f"--init_from={folder}"))
    assert expected.format(folder=folder) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_an_age_loss_over_one_token_ages_is_refused_for_a_tokenizer_that_splits_them(pretrained, tiny_world, tmp_path):
    with pytest.raises(UserError, match=r"data.age_sigma=3.0 needs every age 0..120 to be one token, .* up to 4 tokens"):
        main(tiny_train_args(tiny_world, tmp_path / "run", f"--init_from={pretrained}", "--data.age_sigma=3"))
    sentencepiece = np.array(Vocab(pretrained_tokenizer(pretrained), n_codes=1).age_ids[120])
    assert len(sentencepiece) == 4  # "▁" "1" "2" "0"


def test_the_experiment_configs_load():
    from talk2face.config import load_config
    from talk2face_train.train import TrainConfig

    unigram = load_config(TrainConfig, REPO / "experiments" / "synface-sentencepiece.yaml")
    assert unigram.data.age_sigma == 0 and unigram.data.text_tokenizer.endswith("synface-unigram/tokenizer.json")
    pretrained = load_config(TrainConfig, REPO / "experiments" / "init-from-llama.yaml")
    assert pretrained.init_from and pretrained.data.age_sigma == 0 and pretrained.optim.name == "adamw"
