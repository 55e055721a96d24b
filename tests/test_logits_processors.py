"""Logits processors: constraints mask exactly what they should; guidance pairs stay in step."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from talk2face.logits_processors import AllowedRange, GuidedSampler, KeepCodes, filter_logits
from talk2face.modeling import MODEL_PRESETS, build_model, init_image_embeddings


def test_allowed_range_inside_and_outside():
    scores = torch.zeros(2, 10)
    inside = AllowedRange(4, 7)(None, scores.clone())
    assert torch.isfinite(inside).nonzero()[:, 1].unique().tolist() == [4, 5, 6]
    outside = AllowedRange(4, 7, inside=False, also_allowed=(5,))(None, scores.clone())
    assert torch.isinf(outside).nonzero()[:, 1].unique().tolist() == [4, 6]


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, 1.0, top_k=2, top_p=1.0)).sum() == 2
    # nucleus 0.7: 0.5 alone is below 0.7, 0.5 + 0.3 crosses it -> two tokens kept
    assert torch.isfinite(filter_logits(logits, 1.0, top_k=0, top_p=0.7)).sum() == 2


def test_guided_sampler_pairs_follow_conditional_rows():
    gen = torch.Generator().manual_seed(0)
    cond = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0]])
    uncond = torch.zeros(2, 3)
    out = GuidedSampler(guidance_scale=3.0, generator=gen)(None, torch.cat([cond, uncond]))
    picked = out.argmax(-1)
    assert picked.tolist()[:2] == picked.tolist()[2:]  # twins get the same token
    assert picked.tolist()[:2] == [1, 0]  # guidance sharpens towards the conditional choice


def test_guidance_amplifies_the_difference():
    # cond slightly prefers token 1 over 0; uncond prefers 0. Guidance scale 8 makes 1 dominant.
    cond = torch.log(torch.tensor([[0.45, 0.55]]))
    uncond = torch.log(torch.tensor([[0.7, 0.3]]))
    counts = torch.zeros(2)
    gen = torch.Generator().manual_seed(0)
    sampler = GuidedSampler(guidance_scale=8.0, generator=gen)
    for _ in range(200):
        counts[sampler(None, torch.cat([cond, uncond])).argmax(-1)[0]] += 1
    assert counts[1] > 190


def test_keep_codes_forces_the_source_where_kept():
    torch.manual_seed(0)
    model = build_model("tiny", vocab_size=50, max_length=64, pad_id=0, bos_id=1, eos_id=2)
    prompts = torch.tensor([[1, 5, 6], [1, 7, 8]])
    source = torch.randint(30, 50, (2, 8))
    keep = torch.tensor([[True, False] * 4, [False] * 8])  # row 1 is regenerated entirely
    out = model.generate(
        prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=8, min_new_tokens=8, do_sample=False,
        logits_processor=[AllowedRange(30, 50), GuidedSampler(generator=torch.Generator().manual_seed(0)),
                          KeepCodes(source, keep, start=3)],
        pad_token_id=0,
    )[:, 3:]
    assert torch.equal(out[keep], source[keep])
    assert not torch.equal(out[1], source[1])  # 8 free draws from 20 tokens matching by chance: ~4e-11


def test_generate_with_constraints_yields_only_allowed_tokens():
    torch.manual_seed(0)
    model = build_model("tiny", vocab_size=50, max_length=64, pad_id=0, bos_id=1, eos_id=2)
    prompts = torch.tensor([[1, 5, 6], [1, 7, 8]])
    out = model.generate(
        prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=16, min_new_tokens=16, do_sample=False,
        logits_processor=[AllowedRange(30, 50), GuidedSampler(top_k=5, generator=torch.Generator().manual_seed(0))],
        pad_token_id=0,
    )
    new = out[:, 3:]
    assert new.shape == (2, 16) and bool(((new >= 30) & (new < 50)).all())


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_presets_build_stock_llama(preset, tmp_path):
    model = build_model(preset, vocab_size=100, max_length=32, pad_id=0, bos_id=1, eos_id=2)
    assert isinstance(model, LlamaForCausalLM)
    assert model.config.num_hidden_layers == MODEL_PRESETS[preset].n_layer
    model.save_pretrained(tmp_path)
    assert isinstance(LlamaConfig.from_pretrained(tmp_path), LlamaConfig)


def test_image_embeddings_start_as_a_projection_of_the_codebook():
    torch.manual_seed(0)
    model = build_model("tiny", vocab_size=100, max_length=32, pad_id=0, bos_id=1, eos_id=2)
    before = model.get_input_embeddings().weight.detach().clone()
    codebook = torch.randn(40, 8)
    init_image_embeddings(model, codebook, first_image_id=60)
    after = model.get_input_embeddings().weight.detach()
    assert torch.equal(after[:60], before[:60])  # text and special tokens untouched
    assert torch.equal(model.get_output_embeddings().weight[60:], after[60:])  # tied
    codes, rows = torch.nn.functional.normalize(codebook, dim=1), torch.nn.functional.normalize(after[60:], dim=1)
    upper = torch.triu_indices(40, 40, offset=1)
    similar = torch.stack([(codes @ codes.T)[upper[0], upper[1]], (rows @ rows.T)[upper[0], upper[1]]])
    assert torch.corrcoef(similar)[0, 1] > 0.8  # alike codes, alike embeddings
    assert after[60:].std() == pytest.approx(model.config.initializer_range, rel=0.3)
