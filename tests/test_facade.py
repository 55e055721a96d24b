"""The Talk2Face API on a tiny trained model: shapes, constraints and probability semantics."""

import copy
import numpy as np
import pytest
import torch

from talk2face.errors import UserError
from talk2face.facade import Talk2Face
from talk2face.sampling import Sampling


@pytest.fixture(scope="module")
def talk2face(tiny_model):
    return Talk2Face.from_pretrained(tiny_model, bf16=False)


@pytest.fixture(scope="module")
def faces(tiny_world):
    return sorted((tiny_world["synface"] / "test").glob("*.png"))[:3]


def test_text_to_face_makes_images_of_the_right_size(talk2face):
    images = talk2face.text_to_face(["a smiling woman", "an old man"], num_samples=2, seed=0)
    assert len(images) == 4 and all(im.size == (32, 32) for im in images)


def test_text_to_face_is_reproducible_with_a_seed(talk2face):
    a = talk2face.text_to_face("a man", num_samples=2, seed=3)
    b = talk2face.text_to_face("a man", num_samples=2, seed=3)
    assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]


def test_guided_and_reranked_generation_keep_the_count(talk2face):
    assert len(talk2face.text_to_face("a man", num_samples=2, cfg_scale=3.0, rerank=2, seed=0)) == 2


def test_age_is_an_expectation_over_a_distribution(talk2face, faces):
    probs = talk2face.age_distribution(faces)
    assert probs.shape == (3, 121) and torch.allclose(probs.sum(-1), torch.ones(3), atol=1e-4)
    ages = talk2face.estimate_age(faces)
    assert ages == pytest.approx((probs @ torch.arange(121.0)).tolist(), rel=1e-5)


def teacher_forced_log_probs(model: Talk2Face, prompts, answers) -> torch.Tensor:
    """log P(answer | prompt) by one plain forward pass over each whole `prompt + answer` row: (B, C)."""
    out = torch.zeros(len(prompts), len(answers))
    for i, prompt in enumerate(prompts):
        rows = [np.concatenate([prompt, a]) for a in answers]
        logp = model._logits(rows)[0].log_softmax(-1)  # (C, T, V), left-padded: every answer ends the row
        for j, a in enumerate(answers):
            positions = torch.arange(logp.shape[1] - len(a) - 1, logp.shape[1] - 1)  # those predicting the answer
            out[i, j] = logp[j, positions, torch.from_numpy(np.asarray(a))].sum()
    return out


def test_age_answers_of_several_tokens_are_scored_like_a_full_teacher_forced_pass(talk2face, faces, monkeypatch):
    vocab = talk2face.vocab
    codes = talk2face.encode_faces(faces[:2])
    sharp = copy.deepcopy(talk2face)  # the tiny model attends almost uniformly: sharpen it, so positions count
    with torch.no_grad():
        for layer in sharp.model.model.layers:
            layer.self_attn.q_proj.weight.mul_(30.0)
    # prompts of different lengths (left padding, positions restarting after it) and answers of 1..4 tokens
    prompts = [vocab.prompt_ids("how old is this person? <face>", [codes[0]], 64),
               vocab.prompt_ids("<face> age:", [codes[1]], 64)]
    answers = [np.array([vocab.eos_id]), np.append(vocab.number_token_ids[[3, 4]], vocab.eos_id),
               vocab.number_token_ids[[1, 2, 0]], np.array([vocab.number_token_ids[34], vocab.eos_id])]
    torch.testing.assert_close(sharp._answer_log_probs(prompts, answers).cpu(),
                               teacher_forced_log_probs(sharp, prompts, answers), atol=1e-4, rtol=1e-4)

    # where every age is one token, the one-softmax path is the sequence scoring of one-token answers
    fast = talk2face.age_distribution(faces)
    age_prompts = [talk2face.task_prompt_ids("age", face=c) for c in talk2face.encode_faces(faces)]
    one_token = talk2face._answer_log_probs(age_prompts, [np.array([i]) for i in vocab.number_token_ids])
    torch.testing.assert_close(one_token.softmax(-1).cpu(), fast, atol=1e-5, rtol=1e-4)
    # and a vocabulary whose ages are several tokens scores "<age> <eos>" whole
    monkeypatch.setattr(vocab, "number_token_ids", None)
    ended = [np.append(a, vocab.eos_id) for a in vocab.age_ids]
    scored = talk2face.age_distribution(faces, batch_size=2)
    torch.testing.assert_close(scored, teacher_forced_log_probs(talk2face, age_prompts, ended).softmax(-1),
                               atol=1e-5, rtol=1e-4)
    assert (scored - fast).abs().max() > 1e-4  # P(<eos> | age) weighs in: not the one-softmax figure


def test_attribute_probabilities_cover_the_trained_attributes(talk2face, faces):
    out = talk2face.classify_attributes(faces)
    assert set(out[0]) == set(talk2face.attributes) and len(talk2face.attributes) >= 20
    one_by_one = [talk2face.classify_attributes([f], batch_size=1)[0] for f in faces]  # no padding at all
    np.testing.assert_allclose([list(d.values()) for d in out], [list(d.values()) for d in one_by_one], atol=1e-4)
    only = talk2face.classify_attributes(faces, names=["Smiling"])
    assert list(only[0]) == ["Smiling"] and only[0]["Smiling"] == pytest.approx(out[0]["Smiling"], abs=1e-6)
    with pytest.raises(UserError, match="not trained"):
        talk2face.classify_attributes(faces, names=["Blurry"])


def test_captions_ignore_the_batch_and_a_task_template_answers_as_its_task(talk2face, faces):
    captions = talk2face.caption(faces, max_new_tokens=8)
    assert captions == [talk2face.caption([f], max_new_tokens=8, batch_size=1)[0] for f in faces]  # padding changes nothing
    assert talk2face.prompt("{face} describe this face:", face=faces[0], max_new_tokens=8) == captions[0]


def test_a_text_answer_is_read_back_by_the_task_named(talk2face, faces, monkeypatch):
    caption = talk2face.caption(faces[:1], max_new_tokens=8)[0]
    read = talk2face.prompt("{face} describe this face:", face=faces[0], max_new_tokens=8, read_as="caption")
    assert read.text == caption  # the caption task's own greedy answer
    # what the tiny model answers is chance: read a known answer back by each task
    monkeypatch.setattr(talk2face, "_generate_text", lambda prompts, max_new_tokens, batch_size: ["a woman with glasses"])
    read = talk2face.prompt("{face} describe this face:", face=faces[0], read_as="caption")
    assert read.ok and read.value == "a woman with glasses"
    as_age = talk2face.prompt("{face} describe this face:", face=faces[0], read_as="age")
    assert not as_age.ok and as_age.value is None and as_age.text == "a woman with glasses"  # no age answer
    with pytest.raises(UserError, match="task"):
        talk2face.prompt("{face} describe this face:", face=faces[0], read_as="height")


def test_edit_returns_one_face_per_input(talk2face, faces):
    edited = talk2face.edit(faces[:2], "make her smile", seed=0)
    assert len(edited) == 2 and edited[0].size == (32, 32)
    again = talk2face.edit(edited, ["add glasses", "remove the glasses"], seed=0)  # chained
    assert len(again) == 2


def test_unknown_placeholder_is_a_user_error(talk2face):
    with pytest.raises(UserError):
        talk2face.prompt("describe {person}", person="x")


def _fake_reading(talk2face, monkeypatch, attribute="Eyeglasses"):
    """The model's attribute reading replaced: P(attribute) = the first code of its region / K,
    every other attribute 0.5 (so only the asked change decides); records the codes it read."""
    from talk2face.edit_regions import regenerated_cells

    cells = regenerated_cells(attribute, talk2face.vqgan.grid_size)
    column = talk2face.attributes.index(attribute)
    read = {}

    def fake_matrix(codes, batch_size=64):
        read.setdefault("codes", []).append(np.stack(codes))
        probs = torch.full((len(codes), len(talk2face.attributes)), 0.5)
        probs[:, column] = torch.tensor([float(c[cells][0]) / talk2face.vqgan.n_codes for c in codes])
        return probs

    monkeypatch.setattr(talk2face, "_attribute_matrix", fake_matrix)
    monkeypatch.setattr(talk2face, "decode_faces", lambda codes: codes.cpu().numpy())
    return cells, read


def test_in_place_edit_keeps_codes_outside_the_region_and_the_best_candidate(talk2face, faces, monkeypatch):
    source = np.stack(talk2face.encode_faces(faces[:2]))  # (2, 16) codes of 4x4 grids
    cells, read = _fake_reading(talk2face, monkeypatch)
    assert 0 < cells.sum() < len(cells)
    for value in (True, False):
        read.clear()
        out = talk2face.edit_in_place(faces[:2], "Eyeglasses", value, candidates=3, seed=0, keep_weight=1.0)
        assert (out[:, ~cells] == source[:, ~cells]).all()
        candidates = read["codes"][0].reshape(2, 3, -1)
        first = candidates[:, :, cells][..., 0]  # (2, 3)
        best = first.argmax(1) if value else first.argmin(1)
        assert (out == candidates[[0, 1], best]).all()
    with pytest.raises(UserError, match="not trained"):
        talk2face.edit_in_place(faces[:1], "Blurry", True)


def test_a_planned_edit_redraws_the_named_attribute_and_an_age_edit_the_whole_face(talk2face, faces, monkeypatch):
    source = np.stack(talk2face.encode_faces(faces[:2]))  # (2, 16)
    cells, read = _fake_reading(talk2face, monkeypatch)
    asked = {}

    def fake_plan(instructions, batch_size=32):
        asked["instructions"] = list(instructions)
        return [{"add glasses": ("Eyeglasses", True), "make him 70": ("age", 70)}[i] for i in instructions]

    monkeypatch.setattr(talk2face, "plan_edits", fake_plan)
    monkeypatch.setattr(talk2face, "tasks", [*talk2face.tasks, "edit_plan"])
    out = talk2face.edit(faces[:2], ["add glasses", "make him 70"], candidates=3, seed=0)  # (2, 16) codes
    assert asked["instructions"] == ["add glasses", "make him 70"]
    assert (out[0, ~cells] == source[0, ~cells]).all()  # the glasses: only their region redrawn ...
    candidates = read["codes"][0]  # (6, 16): three draws of face 0 by the edit task, three by text-to-face
    assert len(candidates) == 6 and (out[0] == candidates[candidates[:, cells][:, 0].argmax()]).all()  # ... best kept
    whole = talk2face.edit(faces[1:2], ["make him 70"], seed=0)  # the age edit: the edit task decodes it whole
    monkeypatch.setattr(talk2face, "tasks", [t for t in talk2face.tasks if t != "edit_plan"])
    assert (out[1] == whole[0]).all()
    assert (talk2face.edit(faces[1:2], ["make him 70"], seed=0) == whole).all()


def test_descriptions_are_read_with_unknown_words_rewritten(talk2face):
    assert "glasses" in talk2face.caption_words  # the training captions' words travel in the model card
    assert talk2face.free_text("a lady with specs") == "a woman with spectacles"  # both caption words
    talk2face.rewrite_unknown_words = False
    try:
        assert talk2face.free_text("a lady with specs") == "a lady with specs"
    finally:
        talk2face.rewrite_unknown_words = True


def test_wordnet_loads_only_for_a_description_with_an_unknown_word(tiny_model):
    model = Talk2Face.from_pretrained(tiny_model)
    assert model.free_text("a smiling man with glasses") == "a smiling man with glasses"
    assert "lexicon" not in vars(model)  # every word known: nothing to rewrite, WordNet never loaded
    assert model.free_text("a lady with specs") == "a woman with spectacles"
    assert "lexicon" in vars(model)


def test_rerank_scores_the_description_as_the_model_read_it(tiny_model, monkeypatch):
    model = Talk2Face.from_pretrained(tiny_model)
    scored = []
    likelihood = model.caption_likelihood
    monkeypatch.setattr(model, "caption_likelihood", lambda codes, texts: scored.extend(texts) or likelihood(codes, texts))
    model.text_to_face(["a lady with specs"], num_samples=1, rerank=2, seed=0)
    assert scored == ["a woman with spectacles"] * 2  # not the raw words, which the captions never used


@pytest.fixture(scope="module")
def same_token_model(tiny_world, tmp_path_factory):
    """A tiny decoder trained with data.edit_same (edit targets written as changes), face grid on."""
    from conftest import tiny_train_args
    from talk2face_train.train import main

    run = tmp_path_factory.mktemp("edit_same")
    final = main(tiny_train_args(tiny_world, run, "--data.edit_same=true", "--face_grid=true", "--optim.max_steps=2")).final_dir
    return Talk2Face.from_pretrained(final, bf16=False)


def test_an_edit_written_as_changes_takes_the_source_code_wherever_it_writes_same(same_token_model, faces, monkeypatch):
    model = same_token_model
    same = model.vocab.same_id
    assert same == model.vocab.image_token_range.stop
    assert model.model.config.face_grid["image_stop"] == same + 1  # <same> fills a cell of the face grid
    source = np.stack(model.encode_faces(faces[:2]))  # (2, 16)
    monkeypatch.setattr(model, "decode_faces", lambda codes: codes.cpu().numpy())
    # the hook below biases the head module's output, which `generate` calls; the static decoder
    # computes a face's logits from the head's weights (tests/test_decoding.py: the same codes)
    monkeypatch.setattr(model, "decoder", None)
    favoured = {}  # vocabulary id -> logit bonus, added after the decoder's head

    def bias(module, args, logits):  # (B, T, V)
        for token, bonus in favoured.items():
            logits[..., token] += bonus
        return logits

    hook = model.model.lm_head.register_forward_hook(bias)
    try:
        favoured[same] = 1e4  # every cell "the same": the edit is the source face
        np.testing.assert_array_equal(model.edit(faces[:2], "add glasses", seed=0), source)
        favoured[same], favoured[model.vocab.image_token_start + 5] = -1e4, 1e4  # every cell code 5
        assert (model.edit(faces[:2], "add glasses", seed=0) == 5).all()
        favoured.clear()
        favoured[same] = 1e4
        faces_drawn = model.text_to_face("a man", num_samples=2, seed=0)  # <same> is an edit's token only
        assert ((faces_drawn >= 0) & (faces_drawn < model.vqgan.n_codes)).all()
    finally:
        hook.remove()


def test_the_kept_redraw_trades_the_asked_change_against_the_other_attributes(talk2face, monkeypatch):
    source = np.zeros((1, 16), dtype=np.int64)
    drawn = torch.tensor([[[1] * 16, [2] * 16]])  # (1 face, 2 candidates, 16 codes)
    monkeypatch.setattr(talk2face, "_generate_faces", lambda *a, **kw: drawn[0])
    glasses, other = talk2face.attributes.index("Eyeglasses"), talk2face.attributes.index("Smiling")

    def reading(codes, batch_size=64):  # source: no glasses, not smiling; draw 1: glasses 0.95 but smiling,
        probs = torch.full((len(codes), len(talk2face.attributes)), 0.1)  # draw 2: glasses 0.8, all else kept
        for row, code in enumerate(int(c[0]) for c in codes):
            probs[row, glasses] = {0: 0.1, 1: 0.95, 2: 0.8}[code]
            probs[row, other] = 0.99 if code == 1 else 0.1
        return probs

    monkeypatch.setattr(talk2face, "_attribute_matrix", reading)
    pick = {w: int(talk2face._redraw_region(source, [("Eyeglasses", True)], [([None], [None])], 2, w,
                                            Sampling(), 8)[0, 0]) for w in (0.0, 3.0)}
    assert pick == {0.0: 1, 3.0: 2}  # without the keep term the surer glasses win; with it, the kept face
    with pytest.raises(UserError, match="keep_weight"):
        talk2face._redraw_region(source, [("Eyeglasses", True)], [([None], [None])], 2, -1.0, Sampling(), 8)
