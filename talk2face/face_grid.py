"""Token embeddings that tell each image code which cell of the face grid it fills.

The stock Llama has no absolute positions (RoPE is relative), and a face starts at a different
offset after every prompt, so a code's cell (eye row or chin row) must be inferred by counting
back to `<boi>`. A linear probe shows what that costs (README, diagnosis): the SynFace codes read
0.775 balanced attribute accuracy with one weight vector per (cell, code), 0.587 as a bag of
codes; the decoder's hidden states read like the bag. Here every image token gets a learnt cell
embedding added to its token embedding (the learnt absolute positions of BERT / GPT-2, counted
from `<boi>` instead of the sequence start), so the first layer already knows where a code sits.

It replaces `embed_tokens` of a stock `LlamaForCausalLM` (same `weight`, so the output embeddings
stay tied); the config records `face_grid_cells`, and `install` puts the module back at load.
A bare `AutoModelForCausalLM.from_pretrained` of such a folder warns of the unused
`model.embed_tokens.cells.weight` and reads faces without their cells: load with talk2face.

Cells are counted along each run of image tokens. A call with one token per row continues the
runs of the previous call (the KV-cached decoding step); a longer call starts afresh.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


class FaceGridEmbedding(nn.Embedding):
    """nn.Embedding over the unified vocabulary, plus a learnt embedding per face-grid cell."""

    def __init__(self, token_embedding: nn.Embedding, image_ids: range, cells: int) -> None:
        super().__init__(token_embedding.num_embeddings, token_embedding.embedding_dim, token_embedding.padding_idx)
        self.weight = token_embedding.weight  # the same Parameter: tying with lm_head is kept
        self.image_start, self.image_stop, self.n_cells = image_ids.start, image_ids.stop, cells
        self.cells = nn.Embedding(cells, token_embedding.embedding_dim)
        nn.init.normal_(self.cells.weight, std=token_embedding.weight.std().item())
        self._runs: torch.Tensor | None = None  # (B,) image tokens at the end of the last call

    def is_image(self, ids: torch.Tensor) -> torch.Tensor:
        """Same shape as ids: True for the image tokens, the ones that get a cell."""
        return (ids >= self.image_start) & (ids < self.image_stop)

    def cell_index(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids -> ((B, T) cell of each image token, (B, T) bool is-image)."""
        is_image = self.is_image(ids)
        count = is_image.long().cumsum(1)  # (B, T) image tokens so far
        if ids.shape[1] == 1 and self._runs is not None and len(self._runs) == len(ids):
            count = count + self._runs[:, None]  # the decoding step: the run goes on
        # the count at the last non-image token, carried right: where the current run started
        start = torch.where(is_image, torch.zeros_like(count), count).cummax(1).values
        cell = count - start - 1  # (B, T): 0 at the first code after <boi>
        self._runs = torch.where(is_image[:, -1], cell[:, -1] + 1, torch.zeros_like(cell[:, -1])).detach()
        return cell.clamp(0, self.n_cells - 1), is_image

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cell, is_image = self.cell_index(ids)
        return super().forward(ids) + self.cells(cell) * is_image[..., None].to(self.weight.dtype)  # (B, T, H)


def install(model: PreTrainedModel, image_ids: range, cells: int) -> PreTrainedModel:
    """Give `model` (a LlamaForCausalLM) cell embeddings for its image codes; records it in its config."""
    model.model.embed_tokens = FaceGridEmbedding(model.model.embed_tokens, image_ids, cells)
    model.config.face_grid = {"image_start": image_ids.start, "image_stop": image_ids.stop, "cells": cells}
    return model

