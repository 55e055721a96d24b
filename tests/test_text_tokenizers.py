"""Text tokenizers other than this project's BPE: SentencePiece models (trained here, converted with
parity to `sentencepiece` itself), a byte-level BPE like Llama 3's, and what the vocabulary
assumes of any of them (layout, answer words, multi-token ages, collisions)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

from conftest import CAPTIONS, caption_folder
from talk2face.errors import UserError
from talk2face.templates import Templates
from talk2face.text_tokenizers import load_text_tokenizer
from talk2face.vocab import SPECIALS, Vocab
from talk2face_train.text_tokenizer import TEMPLATE_REPEAT, train_sentencepiece
from talk2face_train.text_tokenizer import main as train_main

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Templates.load(REPO / "templates")
CORPUS = CAPTIONS * 20 + TEMPLATES.corpus() * TEMPLATE_REPEAT
# what the parity test encodes: captions, numbers, case, extra and edge whitespace, unseen characters
PROBES = [*CAPTIONS, "How old is this person? 77", "born 1995 (120)", "  A  34-YEAR-OLD   woman  ", "", " x",
          "ﬁne", "a man — “quiet”, it’s 30–40", "ünïcödé ß", "tabs\tand\nnewlines"]


def llama2_like(out: Path) -> Path:
    """A SentencePiece BPE with Llama 2's options: no normalisation, whitespace kept as it is,
    <unk> <s> </s> at ids 0 1 2, digits split, byte fallback."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, model_type="bpe", vocab_size=400, hard_vocab_limit=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        split_digits=True, byte_fallback=True, character_coverage=1.0, num_threads=1, minloglevel=2)
    out.write_bytes(model.getvalue())
    return out


@pytest.fixture(scope="module")
def sentencepiece_models(tmp_path_factory) -> dict[str, Path]:
    """kind -> tokenizer.model: trained here as unigram and as BPE, and one with Llama 2's options."""
    models = {}
    for kind in ("unigram", "bpe"):
        models[kind] = tmp_path_factory.mktemp(f"sp-{kind}") / "tokenizer.model"
        train_sentencepiece(CORPUS, models[kind], kind, vocab_size=400, required_words=TEMPLATES.answer_words())
    models["llama2-like"] = llama2_like(tmp_path_factory.mktemp("sp-llama2") / "tokenizer.model")
    return models


@pytest.mark.parametrize("kind", ["unigram", "bpe", "llama2-like"])
def test_a_converted_sentencepiece_model_gives_sentencepiece_s_own_ids(kind, sentencepiece_models):
    reference = spm.SentencePieceProcessor(model_file=str(sentencepiece_models[kind]))
    converted = load_text_tokenizer(sentencepiece_models[kind])
    for text in PROBES:
        ids = converted.encode(text, add_special_tokens=False).ids
        assert ids == reference.encode(text), text
        assert converted.decode(ids) == reference.decode(ids), text
    assert converted.token_to_id("<unk>") == 0 and reference.id_to_piece(0) == "<unk>"


def test_a_llama2_like_model_s_control_pieces_stay_text_ids(sentencepiece_models):
    llama2_like_model = sentencepiece_models["llama2-like"]
    vocab = Vocab(load_text_tokenizer(llama2_like_model), n_codes=2)
    assert (vocab.tokenizer.token_to_id("<s>"), vocab.tokenizer.token_to_id("</s>")) == (1, 2)
    assert vocab.n_text == spm.SentencePieceProcessor(model_file=str(llama2_like_model)).get_piece_size()
    ids = vocab.encode("<s>A 34-year-old Man")  # a control piece written in text is that token, and is not decoded
    assert ids[0] == 1 and vocab.decode_text(ids) == "A 34-year-old Man"
    assert vocab.number_token_ids is None and vocab.decode_text(vocab.age_ids[120]) == "120"


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_a_sentencepiece_vocabulary_has_multi_token_ages_and_one_token_answers(kind, sentencepiece_models, tmp_path):
    sentencepiece_model = sentencepiece_models[kind]
    vocab = Vocab(load_text_tokenizer(sentencepiece_model), n_codes=5)
    assert vocab.n_text == spm.SentencePieceProcessor(model_file=str(sentencepiece_model)).get_piece_size()
    assert vocab.pad_id == vocab.n_text and vocab.image_token_range == range(vocab.n_text + len(SPECIALS), len(vocab))
    # split_digits: "34" is "▁" "3" "4", so estimate_age scores sequences, not one softmax
    assert vocab.number_token_ids is None
    assert [vocab.decode_text(a) for a in vocab.age_ids] == [str(n) for n in range(121)]
    assert len(vocab.age_ids[34]) == len(vocab.age_ids[7]) + 1
    yes, no = vocab.token_id("yes"), vocab.token_id("no")
    assert vocab.encode("smiling yes, hat no").tolist().count(yes) == 1 and no in vocab.encode("smiling yes, hat no")
    assert vocab.decode_text(vocab.encode("A 34-year-old WOMAN, smiling.")) == "a 34-year-old woman, smiling."

    vocab.save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    assert len(hf) == len(vocab) and hf.pad_token_id == vocab.pad_id
    codes = np.array([4, 0, 2])
    spelled = "how old is this person? <boi>" + "".join(f"<img_{c}>" for c in codes) + "<eoi> age:"
    assert hf(spelled, add_special_tokens=False).input_ids == vocab.encode(
        "how old is this person? <face> age:", [codes]).tolist()
    loaded = Vocab.from_pretrained(tmp_path)
    assert loaded.tokenizer.get_vocab(with_added_tokens=True) == vocab.tokenizer.get_vocab(with_added_tokens=True)
    assert [a.tolist() for a in loaded.age_ids] == [a.tolist() for a in vocab.age_ids]


def byte_level_bpe(individual_digits: bool) -> Tokenizer:
    """A small byte-level BPE like SmolLM's (single digits) or Llama 3's (numbers of up to 3 digits)."""
    tok = Tokenizer(models.BPE())
    if individual_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:  # Llama 3's split: a number of up to 3 digits is a pre-token of its own, without the space before it
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"])
    numbers = [] if individual_digits else [" ".join(map(str, range(121)))] * 50  # Llama 3 has them all whole
    tok.train_from_iterator(CORPUS + numbers, trainer=trainer)
    return tok


def test_a_byte_level_bpe_is_read_with_its_own_space_marker(tmp_path):
    (tmp_path / "smollm").mkdir()
    byte_level_bpe(individual_digits=True).save(str(tmp_path / "smollm" / "tokenizer.json"))
    vocab = Vocab(load_text_tokenizer(tmp_path / "smollm"), n_codes=3)
    assert vocab.space_marker == "Ġ" and vocab.unk_id is None
    # "yes" in an answer list follows a space: "Ġyes", not the bare "yes" of the word alone
    assert vocab.tokenizer.id_to_token(vocab.token_id("yes")) == "Ġyes"
    assert vocab.number_token_ids is None and len(vocab.age_ids[120]) == 3
    assert vocab.decode_text(vocab.encode("a 34-year-old woman, smiling")) == "a 34-year-old woman, smiling"

    llama3 = Vocab(byte_level_bpe(individual_digits=False), n_codes=3)  # every age is one token: the fast path
    assert llama3.number_token_ids is not None and len(set(llama3.number_token_ids.tolist())) == 121

    vocab.save_pretrained(tmp_path / "saved")
    hf = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert len(hf) == len(vocab)  # no <unk> was added for the byte-level BPE that has none
    assert hf("smiling yes, hat no", add_special_tokens=False).input_ids == vocab.encode("smiling yes, hat no").tolist()


def test_a_pretrained_tokenizer_s_own_post_processor_is_dropped(tmp_path):
    spec = json.loads(byte_level_bpe(individual_digits=False).to_str())
    spec["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                                       {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                              "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}}
    vocab = Vocab(Tokenizer.from_str(json.dumps(spec)), n_codes=3)
    vocab.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("a man").input_ids == vocab.encode("a man").tolist()


def test_a_tokenizer_that_would_collide_with_the_appended_tokens_is_refused(tmp_path):
    base = byte_level_bpe(individual_digits=True)
    spec = json.loads(base.to_str())
    spec["model"]["vocab"]["zzz-sparse"] = 5000  # a hole in the ids: <pad> would land on a text id
    (tmp_path / "sparse.json").write_text(json.dumps(spec))
    n = base.get_vocab_size() + 1
    with pytest.raises(UserError, match=rf"sparse.json: its {n} token ids are not 0..{n - 1} \(the highest is 5000\)"):
        Vocab(load_text_tokenizer(tmp_path / "sparse.json"), n_codes=3, source=str(tmp_path / "sparse.json"))
    for named in ("<img_0>", "<pad>"):  # an image code's name, or a special's (Gemma names its own <pad>)
        tok = byte_level_bpe(individual_digits=True)
        tok.add_special_tokens([named])
        with pytest.raises(UserError, match=f"already has token\\(s\\) named like talk2face's .*{named}"):
            Vocab(tok, n_codes=3)


def test_a_file_that_does_not_load_is_one_line_naming_it(tmp_path):
    (tmp_path / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(UserError, match=r"tokenizer.model: not a SentencePiece model") as err:
        load_text_tokenizer(tmp_path / "tokenizer.model")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds neither tokenizer.json nor tokenizer.model"):
        load_text_tokenizer(tmp_path / "empty")


def test_the_cli_trains_a_reproducible_sentencepiece_model(tmp_path):
    caption_folder(tmp_path, CAPTIONS * 3)
    for out in (tmp_path / "a", tmp_path / "b"):
        assert train_main(["--data", str(tmp_path / "src"), "--kind", "sentencepiece-unigram", "--vocab-size", "400",
                           "--out", str(out / "tokenizer.json")]) == 0
    assert (tmp_path / "a" / "tokenizer.model").read_bytes() == (tmp_path / "b" / "tokenizer.model").read_bytes()
    from_json, from_model = (load_text_tokenizer(tmp_path / "a" / name) for name in ("tokenizer.json", "tokenizer.model"))
    assert from_json.encode("a 34-year-old man").ids == from_model.encode("a 34-year-old man").ids
    assert train_main(["--data", str(tmp_path / "src"), "--kind", "sentencepiece-bpe", "--vocab-size", "300",
                       "--out", str(tmp_path / "c" / "tokenizer.json")]) == 2  # too small for the 256 bytes
