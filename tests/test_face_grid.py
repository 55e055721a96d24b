"""Face-grid cell embeddings: cells counted from <boi>, KV-cached decoding, save and load."""

from __future__ import annotations

import numpy as np
import torch

from conftest import tiny_train_args
from talk2face import face_grid
from talk2face.checkpoint import load_decoder
from talk2face.modeling import build_model
from talk2face.facade import Talk2Face
from talk2face_train.train import main

IMAGES = range(50, 90)  # image-token ids of the toy vocabulary below


def grid_model(cells: int = 4):
    torch.manual_seed(0)
    return face_grid.install(build_model("tiny", 100, 64, 0, 1, 2), IMAGES, cells).eval()


def test_cells_count_from_the_start_of_each_face():
    model = grid_model()
    ids = torch.tensor([[0, 1, 5, 50, 61, 52, 77, 7, 60, 60],
                        [1, 60, 61, 62, 8, 9, 10, 11, 12, 13]])
    cell, is_image = model.model.embed_tokens.cell_index(ids)
    assert is_image.tolist()[0] == [False] * 3 + [True] * 4 + [False] + [True] * 2
    assert cell[is_image].tolist() == [0, 1, 2, 3, 0, 1, 0, 1, 2]


def test_the_same_code_embeds_differently_in_another_cell():
    model = grid_model()
    embedded = model.model.embed_tokens(torch.tensor([[1, 60, 60, 60]]))  # (1, 4, H)
    assert not torch.allclose(embedded[0, 1], embedded[0, 2])
    assert torch.equal(model.model.embed_tokens.weight, model.lm_head.weight)  # still tied


def test_kv_cached_generation_matches_full_forward_passes():
    model = grid_model(cells=6)
    prompt = torch.tensor([[1, 5, 50, 51, 52, 53, 54, 55, 6, 7]])  # a face, then text
    generated = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6,
                               min_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None,
                               suppress_tokens=list(range(50)) + list(range(90, 100)))  # image tokens only
    ids = prompt
    with torch.no_grad():
        for _ in range(6):  # no cache: every step sees the whole sequence
            logits = model(ids, use_cache=False).logits[:, -1]
            logits[:, :50] = logits[:, 90:] = -torch.inf
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    assert torch.equal(generated, ids)


def test_a_saved_folder_loads_with_its_cells(tmp_path):
    model = grid_model()
    model.save_pretrained(tmp_path)
    loaded = load_decoder(tmp_path)
    ids = torch.tensor([[1, 5, 50, 61, 52, 7]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-6)
    assert loaded.config.face_grid == {"image_start": 50, "image_stop": 90, "cells": 4}


def test_a_trained_grid_model_reads_cells_and_decodes_the_same_static(tiny_world, tmp_path):
    final = main(tiny_train_args(tiny_world, tmp_path / "run", "--face_grid=true")).final_dir
    face = sorted((tiny_world["synface"] / "test").glob("*.png"))[0]
    plain = Talk2Face.from_pretrained(final, bf16=False)
    grid = plain.model.model.embed_tokens
    assert isinstance(grid, face_grid.FaceGridEmbedding) and grid.n_cells == plain.n_image_tokens
    with_cells = plain.age_distribution([face])
    torch.nn.init.zeros_(grid.cells.weight)
    assert not torch.allclose(plain.age_distribution([face]), with_cells)  # the trained cells are used
    static, reference = (Talk2Face.from_pretrained(final, bf16=False) for _ in range(2))
    reference.decoder = None  # transformers' generate, the embedding module counting the cells
    a, b = (m.text_to_face("a man", num_samples=2, cfg_scale=2.0, seed=5) for m in (static, reference))  # guided
    # the static decoder counts the cells as the embedding module does
    assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]
