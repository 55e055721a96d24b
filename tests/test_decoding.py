"""The static decoder writes exactly what transformers' `generate` with the logits processors writes."""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from transformers import LlamaConfig, LlamaForCausalLM

from talk2face.decoding import Rule, StaticDecoder
from talk2face.errors import UserError
from talk2face.facade import Talk2Face
from talk2face.logits_processors import AllowedRange, GuidedSampler, race
from talk2face.sampling import Sampling

TEXTS = ["a man", "a smiling old woman with glasses and earrings", "a young man with a beard"]  # unequal widths


@pytest.fixture(scope="module")
def static_and_reference(tiny_model):
    static = Talk2Face.from_pretrained(tiny_model, bf16=False)
    reference = Talk2Face.from_pretrained(tiny_model, bf16=False)
    reference.decoder = None  # transformers' generate with the logits processors
    return static, reference


def prompts(model: Talk2Face) -> tuple[list[np.ndarray], list[np.ndarray]]:
    cond = [model.task_prompt_ids("text_to_face", text=t) for t in TEXTS]
    return cond, [model.task_prompt_ids("text_to_face", unconditional=True)] * len(cond)


@pytest.mark.parametrize("sampling", [
    {"cfg_scale": None}, {"cfg_scale": 3.0}, {"cfg_scale": 2.0, "top_k": 5, "temperature": 0.7},
    {"cfg_scale": None, "top_p": 0.8},
])
def test_faces_are_the_codes_generate_draws(static_and_reference, sampling):
    static, reference = static_and_reference
    cond, uncond = prompts(static)
    a, b = (m._generate_faces(cond, uncond, Sampling(seed=3, **sampling), batch_size=2) for m in (static, reference))
    assert a.shape == (3, static.n_image_tokens)
    assert torch.equal(a, b)
    other_seed = static._generate_faces(cond, uncond, Sampling(seed=4, **sampling), batch_size=2)
    assert not torch.equal(a, other_seed)  # the draw follows the seed, so the equality above is not vacuous


def test_faces_under_bf16_autocast_are_the_codes_generate_draws(tiny_model):
    static, reference = (Talk2Face.from_pretrained(tiny_model, bf16=True) for _ in range(2))
    reference.decoder = None
    cond, uncond = prompts(static)
    a, b = (m._generate_faces(cond, uncond, Sampling(cfg_scale=3.0, seed=3), batch_size=3) for m in (static, reference))
    assert torch.equal(a, b)  # the static decoder casts its matrices once, as autocast casts them


def test_grouped_query_attention_decodes_as_generate():
    """Pretrained LMs (init_from) share key / value heads between query heads."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(3, 60, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # left padding
    static = StaticDecoder(model).decode(ids, mask, 10, Rule((20, 60)), torch.Generator().manual_seed(0))
    reference = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=10, min_new_tokens=10, do_sample=False,
        logits_processor=[AllowedRange(20, 60), GuidedSampler(generator=torch.Generator().manual_seed(0))],
        pad_token_id=0, eos_token_id=None,
    )
    assert torch.equal(static, reference[:, 7:])


def test_the_compiled_steps_attention_is_sdpas():
    """Compiled, attention is written out as products and sums (eager: SDPA); both over grouped heads and padding."""
    config = LlamaConfig(vocab_size=60, hidden_size=32, num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    eager, written = StaticDecoder(model), StaticDecoder(model, compiled=True)
    generator = torch.Generator().manual_seed(0)
    q, keys, values = (torch.randn(shape, generator=generator) for shape in ((3, 4, 1, 8), (3, 2, 5, 8), (3, 2, 5, 8)))
    seen = torch.ones(3, 1, 1, 5, dtype=torch.bool)
    seen[0, ..., :2] = False  # a left-padded row
    expected = eager._attend(q, keys, values, seen)  # (3, 4, 1, 8)
    assert torch.allclose(written._attend(q, keys, values, seen), expected, atol=1e-6)
    assert not torch.allclose(eager._attend(q, keys, values, torch.ones_like(seen)), expected, atol=1e-3)  # the mask counts


def test_kept_cells_are_forced_as_generate_forces_them(static_and_reference):
    static, reference = static_and_reference
    cond, uncond = prompts(static)
    rng = np.random.default_rng(0)
    source = rng.integers(0, static.vqgan.n_codes, (3, static.n_image_tokens))
    kept = rng.random((3, static.n_image_tokens)) < 0.7
    a, b = (m._generate_faces(cond, uncond, Sampling(cfg_scale=3.0, seed=1), 3, keep=(source, kept))
            for m in (static, reference))
    assert torch.equal(a, b)
    assert np.array_equal(a.numpy()[kept], source[kept])


def test_text_answers_are_the_tokens_generate_writes(static_and_reference, tiny_world):
    faces = sorted((tiny_world["synface"] / "test").glob("*.png"))[:3]
    static, reference = static_and_reference
    assert static.caption(faces, max_new_tokens=10) == reference.caption(faces, max_new_tokens=10)


def test_the_race_draws_each_token_with_its_probability():
    probs = torch.tensor([[0.1, 0.2, 0.7, 0.0]]).expand(40000, 4)
    tokens = race(probs, torch.rand(probs.shape, generator=torch.Generator().manual_seed(0)))
    frequencies = torch.bincount(tokens, minlength=4) / len(tokens)
    assert torch.allclose(frequencies, probs[0], atol=0.01)
    assert frequencies[3] == 0


def test_a_rule_allows_its_range_or_its_complement():
    assert Rule((3, 6)).allowed_ids(8, torch.device("cpu")).tolist() == [0, 0, 0, 1, 1, 1, 0, 0]
    text = Rule((3, 6), inside=False, also_allowed=(4,)).allowed_ids(8, torch.device("cpu"))
    assert text.tolist() == [1, 1, 1, 0, 1, 0, 1, 1]


def test_the_compiled_step_is_one_graph_for_every_batch_and_prompt_width(tiny_model):
    eager = Talk2Face.from_pretrained(tiny_model, bf16=False)
    compiled = Talk2Face.from_pretrained(tiny_model, bf16=False).compile()
    torch._dynamo.reset()
    counters.clear()
    for texts, samples in ((TEXTS[:1], 2), (TEXTS, 2), (TEXTS[:1], 1)):  # guided: 4 rows, 12 rows, then 2 rows
        a, b = (m.text_to_face(texts, num_samples=samples, cfg_scale=2.0, top_k=10, top_p=0.95, seed=5)
                for m in (eager, compiled))
        assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]
    assert counters["stats"]["unique_graphs"] == 1  # whatever the batch and prompt width


def test_layers_the_step_does_not_compute_decode_with_generate(tiny_model):
    model = Talk2Face.from_pretrained(tiny_model, bf16=False)
    assert StaticDecoder.supports(model.model.config)
    config = LlamaConfig(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, attention_bias=True)
    assert not StaticDecoder.supports(config)
    model.model.config.mlp_bias = True
    biased = Talk2Face(model.model, model.vocab, model.vqgan, model.templates, model.attributes, model.max_length)
    assert biased.decoder is None
    with pytest.raises(UserError, match="does not compute this model's layers"):
        biased.compile()
