"""Prefix-LM attention: the mask, KV-cached decoding against full passes, save and load, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from conftest import tiny_train_args
from talk2face import prefix_lm
from talk2face.checkpoint import load_decoder
from talk2face.errors import UserError
from talk2face.modeling import build_model
from talk2face.facade import Talk2Face
from talk2face_train.train import main

SEP = 3


def prefix_model(attn: str = "sdpa"):
    torch.manual_seed(0)
    model = build_model("tiny", 100, 64, 0, 1, 2)
    model.config._attn_implementation = attn
    return prefix_lm.install(model, SEP).eval()


def test_the_mask_is_bidirectional_up_to_the_first_sep_and_causal_after():
    ids = torch.tensor([[0, 1, 5, 6, SEP, 7, SEP, 8]])
    padding = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1]])
    mask = prefix_lm.prefix_mask(ids, padding, SEP)[0, 0]  # (T, T) query x key
    assert mask[1, 1:5].all() and not mask[1, 5:].any()  # <bos> sees the prompt and its <sep>, nothing after
    assert mask[5, 1:6].all() and not mask[5, 6:].any()  # the answer is causal
    assert not mask[1:, 0].any() and mask[0, 0]  # nobody attends to padding, which attends to itself (finite)


def test_a_prompt_token_sees_later_prompt_tokens_but_never_the_answer():
    model = prefix_model()
    base = torch.tensor([[1, 5, 6, 7, SEP, 8, 9]])
    changed_prompt, changed_answer = base.clone(), base.clone()
    changed_prompt[0, 3], changed_answer[0, 6] = 40, 41
    with torch.no_grad():
        out = model(base).logits
        assert not torch.allclose(model(changed_prompt).logits[0, 1], out[0, 1])  # bidirectional prefix
        assert torch.allclose(model(changed_answer).logits[0, :6], out[0, :6], atol=1e-6)  # causal answer


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_kv_cached_generation_matches_full_forward_passes(attn):
    model = prefix_model(attn)
    prompt = torch.tensor([[0, 0, 1, 5, 50, 51, SEP], [1, 6, 52, 53, 54, 7, SEP]])  # left-padded batch
    padding = (prompt != 0).long()
    generated = model.generate(prompt, attention_mask=padding, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                               pad_token_id=0, eos_token_id=None)
    ids = prompt
    with torch.no_grad():
        for _ in range(5):  # no cache: every step is a fresh prefix-LM pass over the whole sequence
            mask = torch.cat([padding, torch.ones(2, ids.shape[1] - prompt.shape[1], dtype=torch.long)], 1)
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            logits = model(ids, attention_mask=mask, position_ids=positions, use_cache=False).logits[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    assert torch.equal(generated, ids)


def test_a_saved_folder_loads_with_its_attention_and_a_bare_load_would_not(tmp_path):
    model = prefix_model()
    model.save_pretrained(tmp_path)
    ids = torch.tensor([[1, 5, 50, 61, SEP, 7]])
    with torch.no_grad():
        expected = model(ids).logits
        assert torch.allclose(load_decoder(tmp_path)(ids).logits, expected, atol=1e-6)
        assert not torch.allclose(AutoModelForCausalLM.from_pretrained(tmp_path)(ids).logits, expected, atol=1e-3)
    assert load_decoder(tmp_path).config.prefix_lm == {"sep_id": SEP}


def test_prefix_lm_training_refuses_a_loss_on_prompt_codes(tiny_world, tmp_path):
    with pytest.raises(UserError, match="prompt_face_loss"):
        main(tiny_train_args(tiny_world, tmp_path / "run", "--prefix_lm=true", "--data.prompt_face_loss=0.5"))


def test_a_trained_prefix_lm_model_decodes_the_same_with_a_static_cache(tiny_world, tmp_path):
    final = main(tiny_train_args(tiny_world, tmp_path / "run", "--prefix_lm=true", "--face_grid=true")).final_dir
    plain, static = (Talk2Face.from_pretrained(final, bf16=False) for _ in range(2))
    assert plain.model.config.prefix_lm == {"sep_id": plain.vocab.sep_id}
    plain.decoder = None  # transformers' generate with its dynamic cache
    a, b = (m.text_to_face("a man", num_samples=2, cfg_scale=2.0, seed=5) for m in (plain, static))  # guided
    # the static decoder's prefill gets the prefix mask, and its steps stay causal
    assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]
    face = sorted((tiny_world["synface"] / "test").glob("*.png"))[0]
    assert plain.caption([face], max_new_tokens=6) == static.caption([face], max_new_tokens=6)
