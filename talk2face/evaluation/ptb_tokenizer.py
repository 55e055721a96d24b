"""A pure-Python stand-in for the COCO caption evaluation's tokenizer (no Java needed).

pycocoevalcap tokenizes every caption with Stanford CoreNLP 3.4.1's PTBTokenizer
(`-preserveLines -lowerCase`) and then drops the tokens in its PUNCTUATIONS list. This module
reproduces that pipeline for the English captions face data sets hold:

- lowercase; curly quotes and dashes become their ASCII forms (’ -> ', “ -> ``, — -> --);
- punctuation is split off words; `. , ; : ! ? ... - -- ' `` ''` are dropped afterwards, exactly
  the PUNCTUATIONS list, while runs such as `!!` or `?!` are one token and survive (as in Java);
- QUIRK kept on purpose: brackets become `-lrb- -rrb- -lsb- -rsb- -lcb- -rcb-`, and because the
  Java output is lowercased while PUNCTUATIONS lists `-LRB-` in upper case, pycocoevalcap never
  drops them. We keep them too, so scores match;
- clitics split as in the Penn Treebank: `she's -> she 's`, `isn't -> is n't`,
  `can't -> ca n't`, `cannot -> can not`, `gonna -> gon na`;
- kept whole: hyphenated words (`34-year-old`), numbers (`1,000`, `3.5`, `12:30`, `-3`, `'90s`),
  words with an inner apostrophe or slash (`o'clock`, `colour/color`), initials and dotted
  abbreviations (`u.s.`, `e.g.`, `b.`), and a list of common abbreviations (`mr.`, `dr.`, `etc.`);
- `% $ # * + = ~ ^ _ &` are tokens of their own and are kept.

Known differences from Java (none occur in SynFace or MM-CelebA-HQ captions): rare clitics
(`'tis`, `y'all`, `rock'n'roll`), feet and inches (`5'11"`), emoticons (`:)` is `-rrb-` here,
`:-rrb-` in Java), `<tags>`, and abbreviations outside the list below. tests/test_caption_metrics.py
compares against the Java tokenizer itself whenever Java and pycocoevalcap are installed. Java CoreNLP also sometimes leaves the very
first token of its input file un-lowercased (it is nondeterministic); we always lowercase.
"""

from __future__ import annotations

import re

# pycocoevalcap's tokenizer/ptbtokenizer.py drops exactly these tokens after tokenization.
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

# PTB abbreviations that keep their final period (a subset of CoreNLP's list: titles, Latin, months).
_ABBREVIATIONS = (
    "mr|mrs|ms|dr|prof|st|jr|sr|vs|etc|inc|co|corp|ltd|mt|jan|feb|mar|apr|aug|sep|sept|oct|nov|dec"
)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_UNICODE = str.maketrans({"’": "'", "‘": "`", "“": '"', "”": '"', "—": " -- ", "–": " -- "})
# Whole words PTB splits in two.
_SPLIT_WORDS = {
    "cannot": "can not", "gonna": "gon na", "gotta": "got ta", "wanna": "wan na",
    "gimme": "gim me", "lemme": "lem me",
}

_TOKEN = re.compile(
    r"""
    (?P<initials>(?:[a-z]\.){2,}[a-z]?(?![a-z0-9])  # u.s. a.m. e.g. u.s.a
        | [a-z]\.(?![a-z0-9]))                     # an initial: b.
    | (?P<title>(?:"""
    + _ABBREVIATIONS
    + r""")\.(?![a-z0-9])|no\.(?=\s*\d))            # mr. dr. etc. ; no. before a number
    | (?P<number>[-+]\d+(?:[.,:/]\d+)*|'\d+s\b)     # signed numbers (-3, +4), '90s
    | (?P<word>@?[^\W_]+(?:(?:[-/.&]|(?<=\d)[,:](?=\d)|'(?!(?:s|d|m|re|ve|ll)\b))[^\W_]+)*)
    | (?P<clitic>'(?:s|d|m|re|ve|ll)\b)
    | (?P<punct>\.\.\.|--+|[!?]{2,}|[`'"]+|[^\sa-z0-9])
    """,
    re.VERBOSE,
)


def ptb_tokenize(text: str) -> str:
    """Tokenize one caption as pycocoevalcap does (PTBTokenizer, lowercase, punctuation dropped).

    Args:
        text: a caption, any case, any punctuation; newlines count as spaces.

    Returns:
        the tokens joined by single spaces, e.g. "This woman's smiling." -> "this woman 's smiling".
    """
    text = text.translate(_UNICODE).replace("\n", " ")
    lowered = text.lower()
    tokens: list[str] = []
    for match in _TOKEN.finditer(lowered):
        kind, token = match.lastgroup, match.group()
        if kind == "word" and token in _SPLIT_WORDS:
            tokens += _SPLIT_WORDS[token].split()
        elif kind == "word" and token.endswith("n't"):
            tokens += [token[:-3], "n't"]  # isn't -> is n't ; can't -> ca n't ; won't -> wo n't
        elif kind == "punct" and token in _BRACKETS:
            tokens.append(_BRACKETS[token])
        elif kind == "punct" and '"' in token:
            tokens.append("''")  # PTB writes double quotes as `` or '', both dropped
        else:
            tokens.append(token)
    return " ".join(t for t in tokens if t not in PUNCTUATIONS)
