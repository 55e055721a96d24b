"""The unified vocabulary: text tokens, then special tokens, then one token per VQ code.

    ids  0 .. T-1            the text tokenizer's own tokens: this project's BPE (`<unk>` is 0), a
                             SentencePiece model or a pretrained LM's tokenizer (talk2face.text_tokenizers)
    ids  T .. T+S-1          specials: <pad> <bos> <eos> <sep> <boi> <eoi> <face>
    ids  T+S .. T+S+K-1      <img_0> .. <img_{K-1}>, CONTIGUOUS
    id   T+S+K               <same>, only in a vocabulary made with `same_token=True`

so "this position must be an image code" is the id range `image_token_range`, and a code is its id
minus `image_token_start`. `<same>` fills a cell of an edit's target face that the source face
already has (data.edit_same: the edit then writes only what it changes; README, edits as changes);
`cell_token_range` is the codes plus `<same>`, every token that fills a cell of a face.
`<sep>` marks the start of the answer; `<boi>`/`<eoi>` enclose a face;
`<face>` only ever appears in rendered template text and is expanded by `encode` into
`<boi> <img_c1> ... <img_cN> <eoi>` with the codes of the face it stands for.

There are no task-marker tokens: the task is said by the prompt's words (a paraphrase from
templates/), so that a user's own wording reaches the same task (AnyFace's "any wording works")
instead of the model learning to key on a marker a free-style prompt would not contain.

`save_pretrained(dir)` writes the HF files (tokenizer.json, tokenizer_config.json,
special_tokens_map.json), so `transformers.AutoTokenizer.from_pretrained(dir)` loads the whole
vocabulary, image tokens included, without this project's code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer

from talk2face.errors import UserError, read_json
from talk2face.text_tokenizers import read_tokenizer

PAD, BOS, EOS, SEP, BOI, EOI, FACE = "<pad>", "<bos>", "<eos>", "<sep>", "<boi>", "<eoi>", "<face>"
SAME = "<same>"  # after the image codes: "the source face's code of this cell" (edits as changes)
SPACE = "▁"  # U+2581, the text tokenizer's Metaspace marker for "a space stood here"
BYTE_LEVEL_SPACE = "Ġ"  # a byte-level BPE's (GPT-2, Llama 3) marker for the same
IMAGE_TOKEN = re.compile(r"<img_\d+>")
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, SEP, BOI, EOI, FACE)
UNK = "<unk>"  # the text tokenizer's own unknown token (id 0), see text_tokenizer.py
MAX_NUMBER = 120  # ages are whole numbers 0..MAX_NUMBER (single tokens in this project's BPE: text_tokenizer.py)
VOCAB_META_KEY = "talk2face_n_codes"  # extra key in tokenizer_config.json


def image_token(code: int) -> str:
    """The token string of VQ code `code`."""
    return f"<img_{code}>"


class Vocab:
    """Text tokens + specials + image-code tokens, as one `tokenizers.Tokenizer`.

    What it assumes of the text tokenizer, checked here (a one-line UserError otherwise):
    - its ids are exactly 0..T-1, and no token is named like a special, `<img_k>` or `<same>`:
      those are appended after T and must neither collide with a text id nor shadow a text token;
    - each answer word (the yes/no of an attribute list) is one token where it stands in running
      text after a space: checked when one is asked for (`token_id`);
    - ages 0..120 may be one token each (`number_token_ids`: estimate_age reads P(age) from one
      softmax) or several (`age_ids`: each age is scored by its sequence log-probability);
    - text is decoded by the tokenizer's own decoder; whole words are the pieces that start with
      its space marker (`space_marker`: "▁" for Metaspace / SentencePiece, "Ġ" for byte-level BPE).
    A post-processor (a pretrained tokenizer's own `<s>` / `<|begin_of_text|>`) is dropped: sequences
    are `<bos> prompt <sep> target <eos>` in this vocabulary's specials, whoever made the text side.

    Args:
        text_tokenizer: the text tokenizer (talk2face.text_tokenizers); it is copied, not changed.
        n_codes: codebook size K of the image tokenizer.
        same_token: append `<same>` after the image codes (edit targets written as changes).
        source: what the text tokenizer is (its file), named in error messages.
    """

    def __init__(self, text_tokenizer: Tokenizer, n_codes: int, same_token: bool = False,
                 source: str = "the text tokenizer") -> None:
        if n_codes < 1:
            raise ValueError(f"n_codes must be >= 1, got {n_codes}")
        spec = text_tokenizer.to_str()
        tok = Tokenizer.from_str(spec)  # a copy: adding tokens below must not change the caller's tokenizer
        tok.post_processor = None
        text_vocab = tok.get_vocab(with_added_tokens=True)
        ours = {t: i for t, i in text_vocab.items() if t in SPECIALS or t == SAME or IMAGE_TOKEN.fullmatch(t)}
        if ours:
            shown = ", ".join(f"{t} (id {i})" for t, i in sorted(ours.items(), key=lambda kv: kv[1])[:3])
            raise UserError(f"{source} already has token(s) named like talk2face's specials or image codes: {shown}"
                            f"{' ...' if len(ours) > 3 else ''}; pass a text tokenizer without them, not a saved Vocab")
        self.n_text = len(text_vocab)
        if self.n_text and max(text_vocab.values()) != self.n_text - 1:
            raise UserError(f"{source}: its {self.n_text} token ids are not 0..{self.n_text - 1} (the highest is "
                            f"{max(text_vocab.values())}): the specials and image codes appended from id {self.n_text} "
                            "would collide with its ids")
        # normalized=False: specials are matched in the raw text, before the text tokenizer's
        # normalizer, and each text span between them is normalized on its own (this project's
        # own normalizer then strips it, so spaces next to <face> change nothing).
        added = tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
        added += tok.add_special_tokens(
            [AddedToken(image_token(k), special=True, normalized=False) for k in range(n_codes)]
        )
        if same_token:
            added += tok.add_special_tokens([AddedToken(SAME, special=True, normalized=False)])
        if added != len(SPECIALS) + n_codes + same_token or tok.get_vocab_size(with_added_tokens=True) != self.n_text + added:
            raise AssertionError("the appended tokens did not get the ids after the text ids")  # checked above: a bug
        self.tokenizer = tok
        self.n_codes = n_codes
        ids = {t: self.n_text + i for i, t in enumerate(SPECIALS)}
        self.pad_id, self.bos_id, self.eos_id = ids[PAD], ids[BOS], ids[EOS]
        self.sep_id, self.boi_id, self.eoi_id, self.face_id = ids[SEP], ids[BOI], ids[EOI], ids[FACE]
        self.image_token_start = self.n_text + len(SPECIALS)
        self.image_token_range = range(self.image_token_start, self.image_token_start + n_codes)
        self.same_id = self.image_token_range.stop if same_token else None
        self.cell_token_range = range(self.image_token_start, self.image_token_range.stop + same_token)
        self.special_ids = frozenset(ids.values())
        self.unk_id = tok.token_to_id(UNK)
        self.source = source
        steps = json.loads(spec)
        byte_level = "ByteLevel" in json.dumps([steps.get("pre_tokenizer"), steps.get("decoder")])
        self.space_marker = BYTE_LEVEL_SPACE if byte_level else SPACE
        # An age answer is the number alone after <sep>, encoded on its own as the target is.
        self.age_ids = [self.encode(str(n)) for n in range(MAX_NUMBER + 1)]  # 121 x (L_n,)
        single = all(len(a) == 1 for a in self.age_ids) and len({int(a[0]) for a in self.age_ids}) == MAX_NUMBER + 1
        # (121,) when every age is one token, else None: estimate_age then scores sequences
        self.number_token_ids = np.concatenate(self.age_ids) if single else None

    def token_id(self, word: str) -> int:
        """The id of `word` as it stands in running text after a space (an answer word of an
        attribute list, e.g. "yes"), which must be exactly one token."""
        before, after = self.encode(word), self.encode(f"{word} {word}")
        if len(after) != len(before) + 1 or not np.array_equal(after[: len(before)], before):
            pieces = [self.tokenizer.id_to_token(int(i)) for i in after[len(before):]]
            raise UserError(f"{self.source} writes the answer word {word!r} as {len(pieces)} tokens {pieces} after a "
                            "space; answer words must be one token (train a text tokenizer with "
                            "talk2face_train.text_tokenizer, or choose other answer words in templates/)")
        return int(after[-1])

    def __len__(self) -> int:
        return self.cell_token_range.stop

    # ---- image codes <-> ids -------------------------------------------------------------------

    def codes_to_ids(self, codes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """VQ codes -> token ids (same type and shape; int64).

        Raises:
            ValueError: a code outside 0..n_codes-1.
        """
        if len(codes) and (codes.min() < 0 or codes.max() >= self.n_codes):
            raise ValueError(f"codes must lie in 0..{self.n_codes - 1}, got {int(codes.min())}..{int(codes.max())}")
        if isinstance(codes, torch.Tensor):
            return codes.long() + self.image_token_start
        return np.asarray(codes, dtype=np.int64) + self.image_token_start

    def ids_to_codes(self, ids: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Token ids -> VQ codes (same type and shape; int64). Exact inverse of `codes_to_ids`.

        Raises:
            ValueError: an id that is not an image token.
        """
        if len(ids) and (ids.min() < self.image_token_range.start or ids.max() >= self.image_token_range.stop):
            raise ValueError(
                f"not image tokens: ids must lie in {self.image_token_range.start}..{self.image_token_range.stop - 1}"
            )
        if isinstance(ids, torch.Tensor):
            return ids.long() - self.image_token_start
        return np.asarray(ids, dtype=np.int64) - self.image_token_start

    def is_image(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask of the image-code tokens in `ids`."""
        return (ids >= self.image_token_start) & (ids < self.image_token_range.stop)

    # ---- text -----------------------------------------------------------------------------------

    def encode(self, text: str, faces: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> np.ndarray:
        """Text with `<face>` placeholders -> ids, each `<face>` expanded with the next face's codes.

        The text part gives the same ids as `PreTrainedTokenizerFast(tokenizer_file=...)` on the
        same string with each `<face>` written out as `<boi><img_c1>...<img_cN><eoi>`.

        Args:
            text: rendered template text; `<face>` marks where a face goes.
            faces: one code array (h*w,) per `<face>`, in order.
        Returns:
            (L,) int64 ids.
        """
        ids = np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        slots = np.flatnonzero(ids == self.face_id)
        if len(slots) != len(faces):
            raise UserError(f"text has {len(slots)} <face> placeholder(s) but {len(faces)} face(s) were given: {text!r}")
        if not len(slots):
            return ids
        parts, start = [], 0
        for slot, codes in zip(slots, faces):
            face_ids = self.codes_to_ids(np.asarray(codes).reshape(-1))
            parts += [ids[start:slot], [self.boi_id], face_ids, [self.eoi_id]]
            start = slot + 1
        parts.append(ids[start:])
        return np.concatenate(parts).astype(np.int64)

    def prompt_ids(self, text: str, faces: Sequence[np.ndarray], max_length: int, min_answer: int = 1) -> np.ndarray:
        """`<bos> prompt <sep>` for inference, leaving room for at least `min_answer` tokens.

        Returns:
            (P+2,) int64 ids.
        """
        prompt = self.encode(text, faces)
        if len(prompt) + 2 + min_answer > max_length:
            raise UserError(
                f"prompt has {len(prompt) + 2} tokens and the answer needs {min_answer}, "
                f"but the model's context is {max_length}"
            )
        return np.concatenate([[self.bos_id], prompt, [self.sep_id]]).astype(np.int64)

    def decode_text(self, ids: np.ndarray | torch.Tensor | list[int]) -> str:
        """Ids -> text, dropping specials and image tokens (the text of an answer or a prompt)."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # ---- files ----------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json to `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        specials = {
            "pad_token": PAD, "bos_token": BOS, "eos_token": EOS, "sep_token": SEP,
            **({"unk_token": UNK} if self.unk_id is not None else {}),  # a byte-level BPE has none
            "additional_special_tokens": [BOI, EOI, FACE] + ([SAME] if self.same_id is not None else []),
        }
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": 1_000_000,  # the decoder's context is the model's, not the tokenizer's
            "clean_up_tokenization_spaces": False,
            VOCAB_META_KEY: self.n_codes,
            **specials,
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Vocab:
        """Load a folder written by `save_pretrained` (and check its layout is this module's)."""
        directory = Path(directory)
        tok_file, cfg_file = directory / "tokenizer.json", directory / "tokenizer_config.json"
        for f in (tok_file, cfg_file):
            if not f.exists():
                raise UserError(f"not a vocabulary folder: {f} is missing")
        config = read_json(cfg_file)
        if not isinstance(config, dict) or VOCAB_META_KEY not in config:
            raise UserError(f"{cfg_file}: missing key {VOCAB_META_KEY!r} (not written by talk2face.vocab)")
        saved = read_tokenizer(tok_file, "the vocabulary").get_vocab(with_added_tokens=True)  # checks the file
        unified = read_json(tok_file)
        pad = next((t["id"] for t in unified.get("added_tokens", []) if t["content"] == PAD), None)
        if pad is None:
            raise UserError(f"{tok_file}: has no {PAD} token")
        # the text tokenizer is the unified one minus everything from <pad> on
        unified["added_tokens"] = [t for t in unified["added_tokens"] if t["id"] < pad]
        vocab = cls(Tokenizer.from_str(json.dumps(unified)), int(config[VOCAB_META_KEY]), same_token=SAME in saved,
                    source=str(tok_file))
        if saved != vocab.tokenizer.get_vocab(with_added_tokens=True):
            raise UserError(f"{tok_file}: token ids do not follow the talk2face layout")
        return vocab
