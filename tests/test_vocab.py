"""The text tokenizer and the unified vocabulary: single-token numbers, exact code mapping, HF parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from conftest import CAPTIONS, caption_folder
from talk2face.errors import UserError
from talk2face.templates import Templates
from talk2face_train.text_tokenizer import main as train_main
from talk2face_train.text_tokenizer import train_text_tokenizer
from talk2face.vocab import Vocab

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tokenizers" / "synface" / "tokenizer.json"


@pytest.fixture(scope="module")
def text_tokenizer() -> Tokenizer:
    templates = Templates.load(REPO / "templates")
    return train_text_tokenizer(CAPTIONS * 10 + templates.corpus() * 10, 600, templates.answer_words())


@pytest.fixture(scope="module")
def vocab(text_tokenizer) -> Vocab:
    return Vocab(text_tokenizer, n_codes=37)


@pytest.mark.parametrize("source", ["trained", "shipped"])
def test_numbers_0_to_120_and_answer_words_are_one_token(source, text_tokenizer):
    tok = text_tokenizer if source == "trained" else Tokenizer.from_file(str(SHIPPED))
    vocab = Vocab(tok, n_codes=4)
    assert len(set(vocab.number_token_ids.tolist())) == 121
    for n in range(121):
        assert vocab.encode(str(n)).tolist() == [vocab.number_token_ids[n]]
        assert vocab.decode_text([vocab.number_token_ids[n]]) == str(n)
    # the number inside a sentence is the same token as the bare answer
    assert vocab.number_token_ids[34] in vocab.encode("a 34-year-old woman")
    assert len(vocab.encode("yes")) == len(vocab.encode("no")) == 1
    assert vocab.token_id("yes") in vocab.encode("smiling yes, hat no")
    # other numbers split into digits, never into an age-like token
    assert len(vocab.encode("1995")) == 4 and len(vocab.encode("121")) == 3


def test_text_round_trip_is_lowercased_nfkc(vocab):
    assert vocab.decode_text(vocab.encode("A  34-year-old Woman, SMILING.")) == "a 34-year-old woman, smiling."
    assert vocab.decode_text(vocab.encode("ﬁne")) == "fine"  # NFKC folds the ligature
    typographic = vocab.encode("a man — “quiet”, it’s 30–40")
    assert vocab.unk_id == 0 and 0 not in typographic
    assert vocab.decode_text(typographic) == 'a man - "quiet", it\'s 30-40'


def test_layout_specials_then_contiguous_image_tokens(vocab):
    assert len(vocab) == vocab.n_text + 7 + 37
    assert vocab.image_token_range == range(len(vocab) - 37, len(vocab))
    specials = [vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.sep_id, vocab.boi_id, vocab.eoi_id, vocab.face_id]
    assert specials == list(range(vocab.n_text, vocab.n_text + 7))
    assert vocab.tokenizer.token_to_id("<img_0>") == vocab.image_token_start
    assert vocab.tokenizer.token_to_id("<img_36>") == len(vocab) - 1


def test_codes_ids_exact_round_trip_numpy_and_torch(vocab):
    codes = np.arange(37, dtype=np.uint16)[::-1].copy()
    ids = vocab.codes_to_ids(codes)
    assert ids.dtype == np.int64 and set(ids.tolist()) == set(vocab.image_token_range)
    np.testing.assert_array_equal(vocab.ids_to_codes(ids), codes)
    t = torch.tensor([[0, 5], [36, 1]])
    assert torch.equal(vocab.ids_to_codes(vocab.codes_to_ids(t)), t)
    with pytest.raises(ValueError):
        vocab.codes_to_ids(np.array([37]))
    with pytest.raises(ValueError):
        vocab.ids_to_codes(np.array([vocab.eos_id]))


def test_encode_expands_faces_in_order(vocab):
    a, b = np.array([1, 2, 3]), np.array([4, 5, 6])
    ids = vocab.encode("<face> make her smile <face>", [a, b])
    img = vocab.image_token_start
    assert ids[:5].tolist() == [vocab.boi_id, img + 1, img + 2, img + 3, vocab.eoi_id]
    assert ids[-5:].tolist() == [vocab.boi_id, img + 4, img + 5, img + 6, vocab.eoi_id]
    assert vocab.decode_text(ids) == "make her smile"
    with pytest.raises(UserError, match="1 <face>"):
        vocab.encode("<face> caption:", [])


def test_hf_fast_tokenizer_gives_the_same_ids(tmp_path, text_tokenizer, vocab):
    text_file = tmp_path / "tokenizer.json"
    text_tokenizer.save(str(text_file))
    hf = PreTrainedTokenizerFast(tokenizer_file=str(text_file))
    for text in CAPTIONS + ["How old is this person? 77", "born 1995 (120)"]:
        assert hf.encode(text, add_special_tokens=False) == vocab.encode(text).tolist()

    vocab.save_pretrained(tmp_path / "vocab")
    full = AutoTokenizer.from_pretrained(tmp_path / "vocab")
    assert len(full) == len(vocab)
    assert (full.pad_token_id, full.bos_token_id, full.eos_token_id) == (vocab.pad_id, vocab.bos_id, vocab.eos_id)
    codes = np.array([0, 36, 7])
    text = "how old is this person? <face> age:"
    spelled = text.replace("<face>", "<boi>" + "".join(f"<img_{c}>" for c in codes) + "<eoi>")
    assert full.encode(spelled, add_special_tokens=False) == vocab.encode(text, [codes]).tolist()


def test_save_and_load_pretrained(tmp_path, vocab):
    vocab.save_pretrained(tmp_path)
    loaded = Vocab.from_pretrained(tmp_path)
    assert len(loaded) == len(vocab) and loaded.n_codes == 37
    assert loaded.tokenizer.get_vocab(with_added_tokens=True) == vocab.tokenizer.get_vocab(with_added_tokens=True)
    np.testing.assert_array_equal(loaded.number_token_ids, vocab.number_token_ids)
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(UserError, match="tokenizer_config.json is missing"):
        Vocab.from_pretrained(tmp_path)


def test_the_same_token_follows_the_image_codes_and_survives_a_save(tmp_path, text_tokenizer, vocab):
    edits = Vocab(text_tokenizer, n_codes=37, same_token=True)
    assert vocab.same_id is None and vocab.cell_token_range == vocab.image_token_range
    assert edits.image_token_range == vocab.image_token_range  # every other id is where it was
    assert edits.same_id == vocab.image_token_range.stop == len(edits) - 1 == edits.tokenizer.token_to_id("<same>")
    assert edits.cell_token_range == range(edits.image_token_start, len(edits))
    assert not edits.is_image(np.array([edits.same_id])).any()
    assert edits.encode("<same> add glasses").tolist()[0] == edits.same_id
    edits.save_pretrained(tmp_path)
    loaded = Vocab.from_pretrained(tmp_path)
    assert loaded.same_id == edits.same_id and len(loaded) == len(edits)
    assert AutoTokenizer.from_pretrained(tmp_path).convert_tokens_to_ids("<same>") == edits.same_id
    vocab.save_pretrained(tmp_path / "plain")
    assert Vocab.from_pretrained(tmp_path / "plain").same_id is None


def test_a_saved_vocab_is_not_a_text_tokenizer(vocab):
    with pytest.raises(UserError, match="text tokenizer"):
        Vocab(vocab.tokenizer, n_codes=8)


def test_cli_trains_a_reproducible_tokenizer(tmp_path):
    caption_folder(tmp_path, CAPTIONS * 3)
    outs = [tmp_path / "a" / "tokenizer.json", tmp_path / "b" / "tokenizer.json"]
    for out in outs:
        assert train_main(["--data", str(tmp_path / "src"), "--templates", str(REPO / "templates"),
                           "--vocab-size", "500", "--out", str(out)]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert train_main(["--data", str(tmp_path / "src"), "--vocab-size", "50", "--out", str(outs[0])]) == 2
