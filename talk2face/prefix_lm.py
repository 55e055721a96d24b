"""Prefix-LM attention for the stock Llama: bidirectional over `<bos> prompt <sep>`, causal after.

Talk2Face attends bidirectionally over its prompt (a UniLM-style prefix LM, Dong et al. 2019):
every code of a prompt face sees the whole face, not only the codes above it, before any answer
token reads it. Here that is a 4D attention mask, which transformers' Llama takes as given: a
forward pre-hook on `model.model` turns the 2D padding mask of every call that starts a sequence
(no cached tokens) into the prefix mask, with the prefix ending at each row's first `<sep>`. Calls
that continue a KV cache (one decoding step) stay causal, as they must: a generated token sees
every earlier one. So `generate`, the static cache and plain forward passes all apply it, and a
cached decode equals a full pass (tests/test_prefix_lm.py).

The config records `prefix_lm: {"sep_id": ...}` and `install` puts the hook back at load
(`talk2face.checkpoint.load_decoder`). A bare `AutoModelForCausalLM.from_pretrained` of such a
folder applies a causal mask and reads prompts differently: load with talk2face.

A prompt code then sees itself through its successors, so prefix-LM training has no loss on
prompt codes (`data.prompt_face_loss` must be 0).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel


def prefix_mask(ids: torch.Tensor, padding: torch.Tensor, sep_id: int) -> torch.Tensor:
    """(B, T) ids and padding mask (1 = token) -> (B, 1, T, T) bool, True where a query may attend.

    Keys: the row's tokens at or before the query, or anywhere in the prefix when the query is in
    it. The diagonal is always allowed, so a padding query attends to itself and stays finite.
    """
    t = ids.shape[1]
    position = torch.arange(t, device=ids.device)
    is_sep = ids == sep_id
    first_sep = torch.where(is_sep.any(1), is_sep.long().argmax(1), torch.full_like(ids[:, 0], -1))  # (B,)
    in_prefix = position[None] <= first_sep[:, None]  # (B, T); a row without <sep> has no prefix
    causal = position[None, :, None] >= position[None, None, :]  # (1, T, T): query >= key
    allowed = (causal | (in_prefix[:, :, None] & in_prefix[:, None, :])) & padding.bool()[:, None, :]
    return (allowed | torch.eye(t, dtype=torch.bool, device=ids.device))[:, None]


def _apply(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Forward pre-hook of LlamaModel: a call that starts its sequences gets the prefix mask."""
    ids, cache, padding = kwargs.get("input_ids"), kwargs.get("past_key_values"), kwargs.get("attention_mask")
    # one token per row is a decoding step (causal either way; the compiled step is traced, so the
    # cache's length is not asked there)
    if ids is None or ids.shape[1] == 1 or (padding is not None and padding.ndim != 2):
        return args, kwargs
    if cache is not None and cache.get_seq_length() > 0:
        return args, kwargs
    padding = torch.ones_like(ids) if padding is None else padding
    mask = prefix_mask(ids, padding[:, -ids.shape[1]:], module.config.prefix_lm["sep_id"])  # (B, 1, T, T)
    keys = cache.get_mask_sizes(ids.shape[1], 0)[0] if cache is not None else ids.shape[1]
    if keys > ids.shape[1]:  # a static cache attends over all its slots, the unwritten ones masked
        mask = torch.nn.functional.pad(mask, (0, keys - ids.shape[1]), value=False)
    if module.config._attn_implementation != "sdpa":  # eager and others add the mask to the scores
        dtype = module.embed_tokens.weight.dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    return args, {**kwargs, "attention_mask": mask}


def install(model: PreTrainedModel, sep_id: int) -> PreTrainedModel:
    """Give `model` (a LlamaForCausalLM) prefix-LM attention ending at `sep_id`; records it in its config."""
    model.config.prefix_lm = {"sep_id": int(sep_id)}
    model.model.register_forward_pre_hook(_apply, with_kwargs=True)
    return model
