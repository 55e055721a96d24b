"""The text side of the vocabulary, read from what is on disk.

    load_text_tokenizer("tokenizers/synface/tokenizer.json")     # a `tokenizers` JSON file
    load_text_tokenizer("llama-2-7b/tokenizer.model")             # a SentencePiece model
    load_text_tokenizer("SmolLM-135M/")                           # a Hugging Face folder

Whatever the source, the result is one `tokenizers.Tokenizer`, so `talk2face.vocab.Vocab` appends
its specials and image codes the same way and a saved model folder loads with `AutoTokenizer`:
- a `tokenizer.json` is read as it is: this project's BPE (talk2face_train.text_tokenizer), a
  byte-level BPE (Llama 3, SmolLM, GPT-2 style) or any other `tokenizers` model;
- a SentencePiece `tokenizer.model` (Llama 2, Mistral, or one trained by
  `talk2face train-text-tokenizer --kind sentencepiece-unigram`) is converted here, following the
  model's own spec: its Unigram or BPE pieces and scores, its normalisation (the precompiled
  character map, extra whitespace removed or not, the "▁" dummy prefix), byte fallback, and its
  control and user-defined pieces as added tokens. tests/test_text_tokenizers.py checks the ids
  equal `sentencepiece`'s own on models trained with this project's options and with Llama 2's;
- a folder gives its `tokenizer.json` (the Hugging Face fast tokenizer, which is what the model
  was trained with) or else its `tokenizer.model`.

Reading a SentencePiece file needs `sentencepiece` and `protobuf` (its model proto); both are
installed with talk2face.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from talk2face.errors import UserError

TOKENIZER_JSON = "tokenizer.json"
SENTENCEPIECE_MODEL = "tokenizer.model"
SP_SPACE = "▁"  # U+2581: SentencePiece writes a space as this
# SentencePiece's ModelProto enums (sentencepiece_model.proto)
SP_UNIGRAM, SP_BPE = 1, 2
SP_CONTROL, SP_USER_DEFINED = 3, 4


def load_text_tokenizer(path: str | Path, what: str = "text tokenizer") -> Tokenizer:
    """A text tokenizer from a `tokenizer.json`, a SentencePiece `.model` file or a folder holding one.

    Args:
        path: the file or folder.
        what: what it is, for error messages (e.g. the config key that named it).
    Returns:
        the tokenizer (no specials or image codes added: `Vocab` adds them).
    Raises:
        UserError: a missing path, a folder with neither file, a file that does not load.
    """
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in (TOKENIZER_JSON, SENTENCEPIECE_MODEL) if (path / name).is_file()]
        if not found:
            raise UserError(f"{what}: {path} holds neither {TOKENIZER_JSON} nor {SENTENCEPIECE_MODEL}")
        path = found[0]
    if not path.is_file():
        raise UserError(f"{what}: tokenizer file not found: {path}")
    return from_sentencepiece(path) if path.suffix == ".model" else read_tokenizer(path, what)


def read_tokenizer(path: str | Path, what: str) -> Tokenizer:
    """A `tokenizers` JSON file; a missing or malformed one raises UserError naming it and `what` it is."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what}: tokenizer file not found: {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for a malformed file
        raise UserError(f"{path}: not a tokenizers JSON file ({str(err).splitlines()[0]})") from None


def from_sentencepiece(path: str | Path) -> Tokenizer:
    """Convert a SentencePiece model file into an equivalent `tokenizers.Tokenizer`.

    Raises:
        UserError: the file is not a SentencePiece model, or uses an option this converter lacks.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    path = Path(path)
    try:
        processor = spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as err:  # sentencepiece raises RuntimeError/OSError for a bad file
        raise UserError(f"{path}: not a SentencePiece model ({str(err).splitlines()[0]})") from None
    proto = sentencepiece_model_pb2.ModelProto.FromString(processor.serialized_model_proto())
    trainer, spec = proto.trainer_spec, proto.normalizer_spec
    if trainer.treat_whitespace_as_suffix:
        raise UserError(f"{path}: SentencePiece models with treat_whitespace_as_suffix are not supported")
    pieces = [(p.piece, p.score) for p in proto.pieces]
    if trainer.model_type == SP_UNIGRAM:
        model = models.Unigram(pieces, unk_id=trainer.unk_id, byte_fallback=trainer.byte_fallback)
    elif trainer.model_type == SP_BPE:
        from transformers.convert_slow_tokenizer import generate_merges

        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        # SentencePiece merges the pair whose result scores highest: rank merges by that score
        model = models.BPE(vocab, generate_merges(vocab, pieces), unk_token=trainer.unk_piece, fuse_unk=True,
                           byte_fallback=trainer.byte_fallback)
    else:
        raise UserError(f"{path}: SentencePiece model type {trainer.model_type} is not supported (Unigram or BPE are)")
    tok = Tokenizer(model)

    steps = [normalizers.Precompiled(spec.precompiled_charsmap)] if spec.precompiled_charsmap else []
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend(SP_SPACE))
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SP_SPACE)])
    if trainer.split_by_whitespace:  # no piece crosses a word start: split there, as SentencePiece does
        # a word starts at each "▁", or (whitespace-only pieces allowed, as in Llama 2) at each run of them
        word = f"{SP_SPACE}+[^{SP_SPACE}]*" if trainer.allow_whitespace_only_pieces else f"{SP_SPACE}[^{SP_SPACE}]*"
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(word), behavior="isolated")
    tail = [decoders.Strip(" ", left=1)] if spec.add_dummy_prefix else []
    tok.decoder = decoders.Sequence([decoders.Replace(SP_SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), *tail])

    # control pieces (<s>, </s>) are special tokens; user-defined pieces are matched whole in text
    added = [AddedToken(p.piece, special=p.type == SP_CONTROL, normalized=False)
             for p in proto.pieces if p.type in (SP_CONTROL, SP_USER_DEFINED)]
    tok.add_tokens(added)
    return tok
