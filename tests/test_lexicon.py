"""Free-style words through WordNet: unknown words become related training words, nothing else moves."""

import pytest

from talk2face.errors import UserError
from talk2face.lexicon import Lexicon, vocabulary_words, wordnet_dir

CAPTION_WORDS = ["a", "with", "woman", "man", "glasses", "smiling", "bangs", "black", "hair", "chubby", "big", "nose", "rosy", "old"]


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon(CAPTION_WORDS, keep=["show", "me"])


@pytest.mark.parametrize("word, known", [
    ("specs", "glasses"),  # synonym (spectacles, specs, eyeglasses, glasses)
    ("grin", "smiling"),  # synonym "smile", in the inflection the captions use
    ("fringe", "bangs"),  # synonym "bang" of another sense, inflected
    ("lady", "woman"),  # hypernym
    ("gentleman", "man"),
    ("plump", "chubby"),  # adjective synonym
    ("flushed", "rosy"),  # adjective synonym
    ("prominent", "big"),  # similar adjective
])
def test_unknown_words_become_related_caption_words(lexicon, word, known):
    assert lexicon.map_word(word) == known


def test_a_description_is_rewritten_word_by_word_keeping_the_rest(lexicon):
    assert lexicon("Show me a lady with specs, aged 34!") == "Show me a woman with glasses, aged 34!"


@pytest.mark.parametrize("word", ["woman", "show", "qwzxv", "an", "I"])
def test_known_unrelated_and_short_words_stay(lexicon, word):
    assert lexicon.map_word(word) is None and lexicon(word) == word


def test_a_word_before_a_number_stays(lexicon):
    assert lexicon.map_word("aged") == "old"  # right, alone; before a number it means "of age"
    assert lexicon("a lady aged 34") == "a woman aged 34"


def test_whole_words_of_a_bpe_vocabulary():
    assert vocabulary_words({"▁glasses": 1, "▁70": 2, "es": 3, "▁sm": 4, "▁a": 5}) == ["glasses", "sm", "a"]


def test_a_wordnet_folder_without_files_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TALK2FACE_WORDNET", str(tmp_path))
    with pytest.raises(UserError, match=str(tmp_path)):
        wordnet_dir()
