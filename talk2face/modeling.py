"""The decoder: a stock transformers Llama causal LM, sized by a named preset.

Face knowledge lives in the vocabulary (image-code tokens), the templates and the logits
processors, never in a custom model class, so a saved folder loads with
`AutoModelForCausalLM.from_pretrained` and serves with any HF-compatible stack. The one addition,
optional (`face_grid`), is an embedding of each image code's cell in the face grid, swapped in
for `embed_tokens` (talk2face.face_grid): a folder trained with it loads with
`talk2face.checkpoint.load_decoder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from talk2face.errors import UserError


@dataclass(frozen=True)
class DecoderPreset:
    """Width and depth of the decoder; the vocabulary and context come from the data."""

    n_layer: int
    hidden: int
    n_head: int
    intermediate: int  # SwiGLU width; ~8/3 * hidden as in Llama, rounded for fast matmuls


# Named sizes (LlamaGen's GPT_models idea). Parameter counts exclude the embeddings.
MODEL_PRESETS: dict[str, DecoderPreset] = {
    "tiny": DecoderPreset(n_layer=2, hidden=64, n_head=4, intermediate=128),  # tests, seconds
    "mini": DecoderPreset(n_layer=4, hidden=128, n_head=4, intermediate=352),  # ~20 CPU minutes (compute-optimal there), ~0.8M
    "small": DecoderPreset(n_layer=4, hidden=256, n_head=4, intermediate=704),  # SynFace on a 2-core CPU, ~3M
    "medium": DecoderPreset(n_layer=6, hidden=384, n_head=6, intermediate=1024),  # SynFace on one GPU, ~10M
    "base": DecoderPreset(n_layer=12, hidden=768, n_head=12, intermediate=2048),  # Talk2Face's 12x768, ~85M
    "large": DecoderPreset(n_layer=24, hidden=1024, n_head=16, intermediate=2816),  # GPU clusters, ~300M
}


def build_model(
    preset: str,
    vocab_size: int,
    max_length: int,
    pad_id: int,
    bos_id: int,
    eos_id: int,
) -> LlamaForCausalLM:
    """A freshly initialised Llama decoder.

    Args:
        preset: a key of MODEL_PRESETS.
        vocab_size: size of the unified vocabulary (text + specials + image codes).
        max_length: longest sequence (prompt + answer) the model will see.
        pad_id, bos_id, eos_id: special token ids, stored in the config for `generate`.
    Returns:
        LlamaForCausalLM in fp32 (autocast handles bf16).
    """
    if preset not in MODEL_PRESETS:
        raise UserError(f"unknown model preset {preset!r}; choose one of {sorted(MODEL_PRESETS)}")
    p = MODEL_PRESETS[preset]
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden,
        intermediate_size=p.intermediate,
        num_hidden_layers=p.n_layer,
        num_attention_heads=p.n_head,
        num_key_value_heads=p.n_head,
        max_position_embeddings=max_length,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,  # input and output embeddings share weights: fewer params, same quality at this size
    )
    return LlamaForCausalLM(config)


def codebook_projection(codebook: torch.Tensor, hidden: int) -> torch.Tensor:
    """The VQGAN's code vectors, unit-normalised, through a fixed Gaussian projection to `hidden`.

    Codes that look alike get alike rows (a Gaussian projection keeps inner products up to small
    distortion), so what the decoder learns about one code carries over to its neighbours.

    Args:
        codebook: (K, D) code vectors, in code order.
        hidden: the decoder's width H.
    Returns:
        (K, H) float32 rows whose entries are N(0, 1) (a unit vector times Gaussian columns).
    """
    generator = torch.Generator().manual_seed(0)
    projection = torch.randn(codebook.shape[1], hidden, generator=generator)  # (D, H)
    codes = torch.nn.functional.normalize(codebook.float().cpu(), dim=1)  # (K, D)
    return codes @ projection  # (K, H)


@torch.no_grad()
def init_image_embeddings(model: LlamaForCausalLM, codebook: torch.Tensor, first_image_id: int) -> None:
    """Start the image-token embeddings as a random projection of the VQGAN's code vectors
    (`codebook_projection`); random rows would have to be learnt one by one. Rows keep the scale
    of Llama's own initialisation. The embeddings are tied, so the output side starts the same way.

    Args:
        model: a freshly built decoder.
        codebook: (K, D) code vectors, in code order.
        first_image_id: vocabulary id of `<img_0>`; the image ids are contiguous.
    """
    weight = model.get_input_embeddings().weight  # (V, H)
    rows = codebook_projection(codebook, weight.shape[1]) * model.config.initializer_range  # (K, H), N(0, range^2) entries
    weight[first_image_id : first_image_id + len(codebook)] = rows.to(weight.device, weight.dtype)
