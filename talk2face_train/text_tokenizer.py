"""Train the text part of the vocabulary: a small BPE tokenizer for captions and templates (or a
SentencePiece model, `--kind sentencepiece-unigram | sentencepiece-bpe`, below).

    python -m talk2face_train.text_tokenizer --data DIR [DIR ...] --out tokenizers/<name>/tokenizer.json

The shipped SynFace tokenizer was made with exactly

    talk2face synth --n 2000 --size 64 --out /tmp/synface-2000 --seed 0
    python -m talk2face_train.text_tokenizer --data /tmp/synface-2000 --templates templates \
        --vocab-size 1024 --out tokenizers/synface/tokenizer.json

Corpus: every caption and edit instruction of the sources' train split, plus every fixed string of
templates/ (prompts, targets, attribute words) counted TEMPLATE_REPEAT times: every training
sequence holds one prompt, so template words are as frequent as the commonest caption words and
should be whole tokens.

The pipeline, and why:
- normalizer: NFKC, lowercase, typographic dashes/quotes -> ASCII, runs of whitespace -> one
  space, strip. Captions carry no case
  information worth a bigger vocabulary (BERT-uncased did the same for Talk2Face). Strip matters:
  each text span between special tokens is normalized on its own, so "person? <face> estimate"
  tokenizes the same as "person?<face>estimate".
- pre-tokenizer: Metaspace (a space becomes part of the next word, "▁word", SentencePiece-style,
  so decoding restores spaces exactly), then digits: a whole number 0..120 is isolated as one
  piece and any other run of digits is split into single digits (so "1995" never becomes an
  age-like token), then punctuation isolated ("yes," is "▁yes" + ",", so an answer slot is the
  same token wherever it stands).
- model: byte-pair encoding (Sennrich et al. 2016) with `ignore_merges` (as in Llama 3): a
  pre-token that is itself in the vocabulary is one token, whatever the merges say. After
  training, the pieces "▁0".."▁120", "0".."120" and the attribute answer words ("▁yes", "▁no")
  are added to the vocabulary, which guarantees each is ONE token. (Unigram was tried first: the
  `tokenizers` Unigram trainer stopped at ~220 mostly single-letter pieces on the SynFace corpus,
  which has only ~230 distinct words, while BPE learns every word whole.)
- `<unk>` (id 0) for characters never seen; every ASCII letter, digit and punctuation sign is in
  the initial alphabet, so English text never hits it.

The saved file is a plain `tokenizer.json`: `transformers.PreTrainedTokenizerFast(tokenizer_file=...)`
loads it without this project. `talk2face.vocab.Vocab` adds the specials and image tokens.

SentencePiece (`--kind sentencepiece-unigram` or `sentencepiece-bpe`, Kudo & Richardson 2018) trains
the kind of tokenizer the Llama 2 / Mistral / Gemma families use, on the same corpus: it writes the
SentencePiece model as `tokenizer.model` beside `--out`, and `--out` itself as its conversion to a
`tokenizer.json` (talk2face.text_tokenizers; either file can be `data.text_tokenizer`). Its options
follow those families, with this project's case folding:
- normalisation `nmt_nfkc_cf`: NFKC and case folding (lowercase, as above), extra whitespace removed;
- `split_digits`: every number is single digits, so an age answer is several tokens ("34" is
  "▁" "3" "4") and `estimate_age` scores each age's whole answer (talk2face.facade);
- `byte_fallback`: a character outside the pieces is its UTF-8 bytes, never `<unk>` (256 of the
  pieces are the bytes); every ASCII letter, digit and punctuation sign is a piece of its own;
- `<unk>` is id 0 and there are no `<s>` / `</s>` pieces: the vocabulary's specials are talk2face's.
The vocabulary size is a soft limit: SentencePiece's unigram trainer stops where its pruning does
(on the SynFace corpus at about 240 pieces besides the bytes, whatever the size asked for), its BPE
trainer at the size asked for.
"""

from __future__ import annotations

import argparse
import io
import json
import string
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tqdm.auto import tqdm

from talk2face import shipped
from talk2face.cli import run_standalone
from talk2face.errors import UserError
from talk2face.text_tokenizers import SENTENCEPIECE_MODEL, from_sentencepiece
from talk2face.vocab import SPACE, Vocab

UNK = "<unk>"
MAX_NUMBER = 120
TEMPLATE_REPEAT = 50  # weight of each template string in the corpus (see the module docstring)
KINDS = ("bpe", "sentencepiece-unigram", "sentencepiece-bpe")  # --kind: this project's BPE, or SentencePiece's
# a whole number 0..120 (optionally after the space marker) standing alone, else one digit
NUMBER_PATTERN = rf"(?<![0-9]){SPACE}?(?:120|1[01][0-9]|[1-9]?[0-9])(?![0-9])|{SPACE}?[0-9]"


def new_pipeline() -> Tokenizer:
    """An untrained BPE tokenizer with this project's normalizer, pre-tokenizer and decoder."""
    tok = Tokenizer(models.BPE(unk_token=UNK, ignore_merges=True))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFKC(), normalizers.Lowercase(),
        # typographic dashes and quotes (which NFKC keeps) -> ASCII, so they are never <unk>
        normalizers.Replace(Regex("[\u2010-\u2015\u2212]"), "-"),
        normalizers.Replace(Regex("[\u2018\u2019\u201a\u201b]"), "'"),
        normalizers.Replace(Regex("[\u201c\u201d\u201e\u201f]"), '"'),
        normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(NUMBER_PATTERN), behavior="isolated"),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    return tok


def required_pieces(words: Sequence[str] = ()) -> list[str]:
    """Pieces that must exist whole: numbers 0..120 (after a space, and bare) and `words` after a space."""
    numbers = [str(n) for n in range(MAX_NUMBER + 1)]
    return [SPACE + n for n in numbers] + numbers + [SPACE + w.lower() for w in words]


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 1024, required_words: Sequence[str] = ()) -> Tokenizer:
    """Train the BPE text tokenizer.

    Args:
        texts: the corpus (captions, instructions, template strings).
        vocab_size: target number of pieces (the trainer may stop below it on a small corpus).
        required_words: words that must be single tokens after a space (attribute answers).
    Returns:
        the trained tokenizer; `<unk>` is id 0; numbers 0..120 and `required_words` are one token each.
    """
    tok = new_pipeline()
    for w in required_words:
        pieces = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(w))
        if len(pieces) != 1:
            raise UserError(f"answer word {w!r} is several words or has punctuation; it cannot be one token")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[UNK], show_progress=False,
        initial_alphabet=list(string.ascii_lowercase + string.digits + string.punctuation),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    spec = json.loads(tok.to_str())
    spec["model"]["ignore_merges"] = True  # a whole pre-token found in the vocab is one token
    vocab: dict[str, int] = spec["model"]["vocab"]
    for piece in required_pieces(required_words):
        vocab.setdefault(piece, len(vocab))  # appended: ids of trained pieces stay where they are
    tok = Tokenizer.from_str(json.dumps(spec))
    for piece in required_pieces(required_words):
        text = piece.replace(SPACE, " ")
        if len(tok.encode(text).ids) != 1:
            raise AssertionError(f"{text!r} is not one token after training")  # a bug here, not bad input
    return tok


def train_sentencepiece(texts: Iterable[str], out_model: str | Path, model_type: str = "unigram",
                        vocab_size: int = 1024, required_words: Sequence[str] = ()) -> Tokenizer:
    """Train a SentencePiece model (options: the module docstring) and write it to `out_model`.

    Args:
        texts: the corpus (captions, instructions, template strings).
        out_model: where the SentencePiece model is written (a `tokenizer.model`).
        model_type: "unigram" or "bpe".
        vocab_size: the number of pieces asked for, bytes included (a soft limit).
        required_words: words that must each be one token after a space (attribute answers).
    Returns:
        the model converted to a `tokenizers.Tokenizer` (talk2face.text_tokenizers.from_sentencepiece).
    """
    import sentencepiece as spm

    alphabet = string.ascii_lowercase + string.digits + string.punctuation
    if vocab_size < 256 + len(alphabet) + 1:
        raise UserError(f"--vocab-size {vocab_size}: a SentencePiece model here needs at least "
                        f"{256 + len(alphabet) + 1} pieces (256 bytes, {len(alphabet)} ASCII characters, <unk>)")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type=model_type, vocab_size=vocab_size,
        hard_vocab_limit=False, normalization_rule_name="nmt_nfkc_cf", split_digits=True, byte_fallback=True,
        required_chars=alphabet, character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
        num_threads=1,  # one thread: the same model from the same corpus, byte for byte
        minloglevel=2,
    )
    out_model = Path(out_model)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    out_model.write_bytes(model.getvalue())
    tok = from_sentencepiece(out_model)
    vocab = Vocab(tok, n_codes=1, source=str(out_model))
    for word in required_words:
        vocab.token_id(word)  # one token after a space, or a UserError naming its pieces
    return tok


def corpus_from_sources(dirs: Sequence[str | Path], split: str = "train") -> list[str]:
    """Every caption and edit instruction of `split` in each source folder."""
    from talk2face.data.sources import open_source

    texts: list[str] = []
    for d in dirs:
        n = 0
        for record in tqdm(open_source(d).records(split), desc=f"reading {d}", unit="rec"):
            n += 1
            texts += record.captions or []
            if record.edit is not None:
                texts += record.edit.instructions
        if n == 0:
            raise UserError(f"{d}: no records in split {split!r}")
    return texts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="data source folders / YAML files")
    parser.add_argument("--templates", default=str(shipped.TEMPLATES), help="templates folder (its text is in the corpus)")
    parser.add_argument("--vocab-size", type=int, default=1024, help="number of text pieces (SentencePiece: at most)")
    parser.add_argument("--kind", choices=KINDS, default="bpe",
                        help="this project's BPE, or a SentencePiece unigram / BPE model (written as tokenizer.model "
                             "beside --out, and converted to --out)")
    parser.add_argument("--split", default="train", help="split whose captions are read")
    parser.add_argument("--out", required=True, help="output tokenizer.json path")


def run(args: argparse.Namespace) -> int:
    from talk2face.templates import Templates

    if args.vocab_size < 100:
        raise UserError(f"--vocab-size must be at least 100 (the alphabet alone is ~70 pieces), got {args.vocab_size}")
    templates = Templates.load(args.templates)
    texts = corpus_from_sources(args.data, args.split) + templates.corpus() * TEMPLATE_REPEAT
    out = Path(args.out)
    if args.kind == "bpe":
        tok = train_text_tokenizer(texts, args.vocab_size, templates.answer_words())
    else:
        model_type = args.kind.removeprefix("sentencepiece-")
        tok = train_sentencepiece(texts, out.with_name(SENTENCEPIECE_MODEL), model_type, args.vocab_size,
                                  templates.answer_words())
        print(f"wrote {out.with_name(SENTENCEPIECE_MODEL)}: the SentencePiece {model_type} model")
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    lengths = [len(e.ids) for e in tok.encode_batch(texts)]
    print(f"wrote {out}: {tok.get_vocab_size()} pieces from {len(texts)} texts; "
          f"{sum(lengths) / len(lengths):.1f} tokens per text on average, longest {max(lengths)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_standalone(sys.modules[__name__], "python -m talk2face_train.text_tokenizer", argv)


if __name__ == "__main__":
    sys.exit(main())
