"""Start the decoder from a pretrained language model on disk: `init_from: DIR` in the training config.

The unified token models after Talk2Face (Chameleon, Liquid, Janus, Emu3) do not learn language
from their captions: they start from a pretrained LM and append the image codes to its
vocabulary. Here DIR is a local Hugging Face causal-LM folder of the Llama architecture (Llama,
SmolLM, TinyLlama, ...); nothing is downloaded. Then:

- its config decides the decoder's shape (`model`, the preset, is not used); its context
  (`max_position_embeddings`) must hold `data.max_length`;
- its tokenizer (DIR/tokenizer.json, else DIR/tokenizer.model) is the text side of the
  vocabulary (`data.text_tokenizer` is not used): text ids 0..T-1 are the pretrained ones, and
  talk2face's specials and image codes are appended after them (talk2face.vocab);
- its weights are loaded in fp32 (autocast gives bf16) and the embedding matrix, and the output
  matrix when it is not tied to it, is resized to the unified vocabulary: rows 0..T-1 stay the
  pretrained ones, bit for bit; each special token's row is the mean of the pretrained rows; the
  image rows are the VQGAN codebook's projection (talk2face.modeling.codebook_projection, as for a
  decoder trained from scratch), standardised and given the pretrained rows' per-dimension mean
  and standard deviation, so no code starts out louder or quieter than a word;
- the config's pad/bos/eos ids become the vocabulary's, and training goes on from these weights.

The model card (talk2face.json, `init_from`) and train_config.yaml record the folder it started from.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, LlamaForCausalLM, PretrainedConfig

from talk2face.errors import UserError, read_json
from talk2face.text_tokenizers import SENTENCEPIECE_MODEL, TOKENIZER_JSON, load_text_tokenizer
from talk2face.modeling import codebook_projection
from talk2face.vocab import Vocab

ARCHITECTURE = "llama"  # the model_type init_from accepts: the stock decoder of talk2face.modeling


def check_pretrained(directory: str | Path, max_length: int) -> PretrainedConfig:
    """The config of the pretrained LM folder `directory`, refused (one line naming the folder,
    the file and the numbers) if it is not a Llama causal LM with its tokenizer and enough context."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UserError(f"init_from={directory}: no such folder (init_from is a local Hugging Face model folder; "
                        "nothing is downloaded)")
    raw = read_json(folder / "config.json")
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if model_type != ARCHITECTURE:
        raise UserError(f"init_from: {folder / 'config.json'} has model_type {model_type!r}; only {ARCHITECTURE!r} "
                        "(the Llama architecture: Llama, SmolLM, TinyLlama, ...) can start the decoder")
    if not any((folder / name).is_file() for name in (TOKENIZER_JSON, SENTENCEPIECE_MODEL)):
        raise UserError(f"init_from: {folder} has neither {TOKENIZER_JSON} nor {SENTENCEPIECE_MODEL}: the model's own "
                        "tokenizer is needed (its text ids are the ones its embeddings were trained on)")
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if config.max_position_embeddings < max_length:
        raise UserError(f"init_from: {folder / 'config.json'} has max_position_embeddings {config.max_position_embeddings}, "
                        f"shorter than data.max_length {max_length}")
    return config


def pretrained_tokenizer(directory: str | Path) -> Tokenizer:
    """The text tokenizer of the pretrained LM folder (tokenizer.json, else tokenizer.model)."""
    return load_text_tokenizer(directory, f"init_from={directory}")


def load_pretrained(directory: str | Path, vocab: Vocab, max_length: int,
                    codebook: torch.Tensor | None) -> LlamaForCausalLM:
    """The pretrained LM of `directory`, its embeddings resized to `vocab` (module docstring).

    Args:
        directory: the folder (check_pretrained's checks are run again).
        vocab: the unified vocabulary built on the folder's tokenizer.
        max_length: data.max_length.
        codebook: (K, D) VQGAN code vectors for the image rows, or None for random rows with the
            same statistics (data.codebook_embeddings false).
    Returns:
        LlamaForCausalLM in fp32, its config's vocab_size and special ids those of `vocab`.
    """
    config = check_pretrained(directory, max_length)
    if config.vocab_size < vocab.n_text:
        raise UserError(f"init_from: {directory}: its tokenizer has {vocab.n_text} tokens but the model only "
                        f"{config.vocab_size} embedding rows (config.json vocab_size)")
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, local_files_only=True)
    except (OSError, ValueError) as err:  # no weights file, or weights that do not fit the config
        raise UserError(f"init_from: {directory}: the weights do not load ({str(err).splitlines()[0]})") from None
    extend_embeddings(model, vocab, codebook)
    for key, value in (("pad_token_id", vocab.pad_id), ("bos_token_id", vocab.bos_id), ("eos_token_id", vocab.eos_id)):
        setattr(model.config, key, value)
    # the pretrained sampling defaults (a chat model's temperature, its own eos) would leak into generate
    model.generation_config = GenerationConfig.from_model_config(model.config)
    return model


@torch.no_grad()
def extend_embeddings(model: LlamaForCausalLM, vocab: Vocab, codebook: torch.Tensor | None) -> None:
    """Resize `model`'s embeddings (and an untied lm_head) to `len(vocab)` rows and fill the new ones.

    Rows 0..T-1 (T = vocab.n_text) keep their pretrained values; every row from T on is written
    here (a padded pretrained matrix's unused rows past T included).
    """
    n_text = vocab.n_text
    model.resize_token_embeddings(len(vocab), mean_resizing=False)  # keeps rows 0..T-1; the rest is set below
    matrices = [model.get_input_embeddings().weight]  # (V, H)
    if not model.config.tie_word_embeddings:
        matrices.append(model.get_output_embeddings().weight)  # (V, H), its own statistics
    hidden = matrices[0].shape[1]
    if codebook is not None:
        z = codebook_projection(codebook, hidden)  # (K, H)
    else:
        z = torch.randn(vocab.n_codes, hidden, generator=torch.Generator().manual_seed(0))  # (K, H)
    z = (z - z.mean(0)) / z.std(0, unbiased=False).clamp_min(1e-6)  # (K, H): per dimension mean 0, std 1
    specials = sorted(vocab.special_ids) + ([vocab.same_id] if vocab.same_id is not None else [])
    image = vocab.image_token_range
    for weight in matrices:
        text = weight[:n_text].float()  # (T, H) the pretrained rows
        mean, std = text.mean(0), text.std(0, unbiased=False)  # (H,) each
        # A new token at the mean of the pretrained rows starts as "an average token": on the output
        # side its logit is the average pretrained logit, so adding it barely moves the pretrained
        # LM's next-token distribution (Hewitt 2021, "Initializing new word embeddings for pretrained
        # language models"), where a random row may start far more or less likely than any word.
        weight[specials] = mean.to(weight.dtype)
        weight[image.start : image.stop] = (mean + z * std).to(weight.dtype)  # (K, H)
