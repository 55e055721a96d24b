"""Caption metrics: equal to pycocoevalcap's scorers, tokenizer equal to its Java PTBTokenizer."""

from __future__ import annotations

import shutil

import pytest

from talk2face.evaluation.caption_attributes import attribute_precision_recall, caption_mentions
from talk2face.evaluation.caption_metrics import bleu, caption_scores, cider_d, lcs_length, meteor, rouge_l
from talk2face.evaluation.ptb_tokenizer import PUNCTUATIONS, ptb_tokenize

# (raw caption, what CoreNLP 3.4.1 PTBTokenizer -lowerCase gives after pycocoevalcap drops its
# PUNCTUATIONS), recorded from the Java tokenizer.
GOLDEN = [
    ("This woman has blond hair and is smiling. She wears earrings.",
     "this woman has blond hair and is smiling she wears earrings"),
    ("A man in his sixties, with grey hair & a beard; no glasses!",
     "a man in his sixties with grey hair & a beard no glasses"),
    ("a 34-year-old woman (with bangs) who's smiling -- isn't she?",
     "a 34-year-old woman -lrb- with bangs -rrb- who 's smiling is n't she"),
    ("He can't stop: \"wavy hair\", 'big nose' ... and colour/color 3.5 e.g. Mr. Smith's hat.",
     "he ca n't stop wavy hair big nose and colour/color 3.5 e.g. mr. smith 's hat"),
    ("She's brown-haired; don't you think? ma'am x-ray a.m. U.S.A 3rd 1990s 20s '90s",
     "she 's brown-haired do n't you think ma'am x-ray a.m. u.s.a 3rd 1990s 20s '90s"),
    ("Twenty-five years old!! Cannot, gotta, wanna.", "twenty-five years old !! can not got ta wan na"),
    ("A woman’s face “quoted” naïve #1 [bracket] {curly} a+b = c",
     "a woman 's face quoted naïve # 1 -lsb- bracket -rsb- -lcb- curly -rcb- a + b = c"),
    ("the man's hats' brims. O'Neil ain't I'm you've we'd, 5 o'clock shadow",
     "the man 's hats brims o'neil ai n't i 'm you 've we 'd 5 o'clock shadow"),
    ("Dr. Who and St. Louis, etc. 1,000,000 smiles at 10:30; 50% of $5, -3 +4 3/4.",
     "dr. who and st. louis etc. 1,000,000 smiles at 10:30 50 % of $ 5 -3 +4 3/4"),
]

# Several images, several references each, candidates from perfect to empty-ish: the shared example.
REFS = [
    ["this woman has blond hair and is smiling", "a smiling woman with blond hair",
     "blond woman smiling wearing earrings"],
    ["an old man with gray hair and a beard", "the man has a gray beard", "elderly man gray hair beard",
     "a bearded old man"],
    ["a young girl with bangs", "little girl with bangs and brown hair"],
    ["a man wearing glasses and a hat", "the man wears eyeglasses and a hat", "man glasses hat"],
    ["a woman with wavy black hair and lipstick", "she has wavy black hair", "woman black wavy hair lipstick"],
]
CANDS = [
    "a smiling woman with blond hair",
    "an old man with a beard and gray hair",
    "a girl",
    "a woman wearing a hat",
    "hair",
]


def _pyco():
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: refs for i, refs in enumerate(REFS)}
    res = {i: [cand] for i, cand in enumerate(CANDS)}
    return Bleu, Cider, Rouge, gts, res


def test_bleu_equals_pycocoevalcap():
    Bleu, _, _, gts, res = _pyco()
    expected, expected_per_image = Bleu(4).compute_score(gts, res, verbose=0)
    ours, per_image = bleu(REFS, CANDS)
    assert ours == pytest.approx(expected, abs=1e-6)
    for k in range(4):
        assert per_image[k] == pytest.approx(expected_per_image[k], abs=1e-6)
    assert 0 < ours[3] < ours[0] < 1  # a real spread, not a degenerate example


def test_rouge_l_equals_pycocoevalcap():
    _, _, Rouge, gts, res = _pyco()
    expected, expected_per_image = Rouge().compute_score(gts, res)
    ours, per_image = rouge_l(REFS, CANDS)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert per_image == pytest.approx(list(expected_per_image), abs=1e-6)


def test_cider_d_equals_pycocoevalcap():
    _, Cider, _, gts, res = _pyco()
    expected, expected_per_image = Cider().compute_score(gts, res)
    ours, per_image = cider_d(REFS, CANDS)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert per_image == pytest.approx(list(expected_per_image), abs=1e-6)
    assert ours > 0.3


def test_known_values_without_pycocoevalcap():
    assert lcs_length("a b c d".split(), "a c d e".split()) == 3
    (b1, b2, b3, b4), _ = bleu([["a b c d"]], ["a b c d"])
    assert (b1, b2, b3, b4) == pytest.approx((1, 1, 1, 1), abs=1e-6)
    # unigram precision 2/4, candidate longer than the reference: no brevity penalty
    assert bleu([["a b x"]], ["a b c d"])[0][0] == pytest.approx(0.5, abs=1e-6)
    # ROUGE-L, beta 1.2: P = 2/2, R = 2/4 -> (1 + 1.44) * 0.5 / (0.5 + 1.44)
    assert rouge_l([["a b c d"]], ["a b"])[0] == pytest.approx(2.44 * 0.5 / 1.94)
    with pytest.raises(ValueError, match="candidates"):
        bleu([["a"]], ["a", "b"])


@pytest.mark.parametrize("raw, expected", GOLDEN)
def test_tokenizer_matches_recorded_java_output(raw, expected):
    assert ptb_tokenize(raw) == expected


@pytest.mark.skipif(shutil.which("java") is None, reason="Java not installed")
def test_tokenizer_matches_live_java_tokenizer():
    pytest.importorskip("pycocoevalcap")
    import os
    import subprocess

    import pycocoevalcap.tokenizer.ptbtokenizer as ptb

    jar = os.path.join(os.path.dirname(ptb.__file__), ptb.STANFORD_CORENLP_3_4_1_JAR)
    lines = [raw for raw, _ in GOLDEN] + [c for refs in REFS for c in refs]
    # stdin, not a file: CoreNLP sometimes leaves a file's first token un-lowercased
    out = subprocess.run(
        ["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"],
        input="\n".join(lines), capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    for raw, java in zip(lines, out):
        assert ptb_tokenize(raw) == " ".join(w for w in java.split() if w not in PUNCTUATIONS), raw


def test_caption_scores_tokenizes_raw_text():
    raw_refs = [[r.capitalize() + "." for r in refs] for refs in REFS]
    raw_cands = [c.upper() + "!" for c in CANDS]
    assert caption_scores(raw_refs, raw_cands, with_meteor=False) == pytest.approx(
        caption_scores(REFS, CANDS, with_meteor=False)
    )
    perfect = caption_scores(REFS, [refs[0] for refs in REFS], with_meteor=False)
    assert perfect["BLEU-4"] > 0.99 and perfect["ROUGE-L"] > 0.99


@pytest.mark.slow
def test_meteor_runs_when_java_is_there():
    value = meteor(REFS, CANDS)
    if value is None:
        pytest.skip("METEOR needs Java and pycocoevalcap")
    assert 0 < value < 1


def test_caption_mentions_synonyms_and_negations():
    assert caption_mentions("A smiling woman wearing spectacles.") == {"Smiling", "Eyeglasses"}
    assert "Gray_Hair" in caption_mentions("an old man with gray hair")
    assert "Gray_Hair" in caption_mentions("a grey-haired lady")
    assert "Eyeglasses" not in caption_mentions("a man with no glasses")
    assert caption_mentions("a man with no glasses", with_negations=True) == {"Male", "!Eyeglasses"}
    assert "No_Beard" in caption_mentions("a young man without a beard")
    assert "!No_Beard" in caption_mentions("He has a beard and no glasses.", with_negations=True)
    # the negation ends with its clause: "and" starts a new claim
    assert "Smiling" in caption_mentions("She is not wearing a hat and is smiling.")
    assert "Wearing_Hat" not in caption_mentions("She is not wearing a hat and is smiling.")
    assert "!Young" in caption_mentions("a 60 years old man, elderly", with_negations=True)
    assert "Young" in caption_mentions("a 34-year-old man")  # ages below 36 count as Young
    assert "!Young" in caption_mentions("a man, 50 years old", with_negations=True)
    assert "!Smiling" in caption_mentions("a woman with a serious expression", with_negations=True)


def test_attribute_precision_recall_counts():
    mentioned = [{"Smiling", "Eyeglasses", "!Wearing_Hat"}, {"Male"}]
    truth = [
        {"Smiling": True, "Eyeglasses": False, "Wearing_Hat": False, "Bangs": True},
        {"Male": True, "Smiling": True},
    ]
    scores = attribute_precision_recall(mentioned, truth)
    # claims: Smiling ok, Eyeglasses wrong, !Wearing_Hat ok, Male ok -> 3/4
    assert scores["precision"] == pytest.approx(3 / 4)
    # present: Smiling, Bangs, Male, Smiling -> claimed Smiling and Male -> 2/4
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * 0.75 * 0.5 / 1.25)
