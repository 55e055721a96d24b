"""Which CelebA attributes a caption claims, and how many of those claims are true.

`caption_mentions(text)` matches a small lexicon of phrases per attribute (synonyms included:
"glasses"/"spectacles", "grey"/"gray hair", "moustache"/"mustache", ...). A phrase is negated
when a cue (no, not, n't, without, never, nor, neither, lacks) precedes it in the same clause;
clauses end at punctuation and at "and", "but", "who", "which", "that", "while". A negated
phrase is a claim that the attribute is ABSENT, never that it is present: "no glasses" does not
mention Eyeglasses. Some phrases claim absence by themselves ("woman" -> not Male,
"beard" -> not No_Beard, "elderly" -> not Young); negating them flips the claim
("without a beard" -> No_Beard). A stated age ("a 29-year-old", "50 years old") claims Young
when it is below YOUNG_BELOW and not Young otherwise.

Claims are written as attribute names; absence claims get a leading "!" ("!Eyeglasses"), the
same convention SynFace uses in `FaceRecord.caption_attributes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from talk2face.data.record import ATTRIBUTES, YOUNG_BELOW

_HAIR = r"(?:\s+\w+){0,2}\s+hair|-haired"  # "blond hair", "blond wavy hair", "blond-haired"

# attribute -> [(regex, value claimed when not negated)]. Regexes are matched on lowercase text
# with word boundaries that treat hyphens as part of a word ("34-year-old" is not "old").
LEXICON: dict[str, list[tuple[str, bool]]] = {
    "5_o_Clock_Shadow": [(r"(?:5|five)\s+o'?clock\s+shadow|stubble|stubbly", True)],
    "Arched_Eyebrows": [(r"arched\s+(?:eye)?brows?", True)],
    "Attractive": [(r"attractive|beautiful|handsome|pretty|good-looking|gorgeous", True)],
    "Bags_Under_Eyes": [(r"bags\s+under\s+(?:\w+\s+)?eyes|eye\s+bags|puffy\s+eyes", True)],
    "Bald": [(r"bald|hairless|shaved\s+head|no\s+hair", True)],
    "Bangs": [(r"bangs|fringe", True)],
    "Big_Lips": [(r"(?:big|full|thick|large)\s+lips", True)],
    "Big_Nose": [(r"(?:big|large|prominent)\s+nose", True)],
    "Black_Hair": [(rf"black(?:{_HAIR})|jet-black|hair\s+is\s+black", True)],
    "Blond_Hair": [(rf"blonde?(?:{_HAIR})?|hair\s+is\s+blonde?", True)],
    "Blurry": [(r"blurry|blurred|out\s+of\s+focus", True)],
    "Brown_Hair": [(rf"brown(?:{_HAIR})|brunette|hair\s+is\s+brown", True)],
    "Bushy_Eyebrows": [(r"(?:bushy|thick|heavy)\s+(?:eye)?brows?", True)],
    "Chubby": [(r"chubby|plump|round-faced", True)],
    "Double_Chin": [(r"double\s+chin", True)],
    "Eyeglasses": [(r"(?:eye|sun)?glasses|spectacles|specs|bespectacled", True)],
    "Goatee": [(r"goatee", True)],
    "Gray_Hair": [(rf"(?:gr[ae]y|silver|white)(?:{_HAIR})|hair\s+is\s+(?:gr[ae]y|silver|white)|greying|graying", True)],
    "Heavy_Makeup": [(r"(?:heavy\s+)?make-?up|made\s+up", True)],
    "High_Cheekbones": [(r"high\s+cheekbones", True)],
    "Male": [
        (r"man|men|male|boy|guy|gentleman|gent|he|him|his|himself|father|husband", True),
        (r"woman|women|female|girl|lady|she|her|hers|herself|mother|wife", False),
    ],
    "Mouth_Slightly_Open": [(r"(?:mouth\s+(?:is\s+)?(?:slightly\s+|a\s+bit\s+)?open)|open\s+mouth|parted\s+lips|lips\s+parted", True)],
    "Mustache": [(r"mo?ustache|moustached|mustached", True)],
    "Narrow_Eyes": [(r"narrow\s+eyes|squinting", True)],
    "No_Beard": [
        (r"beards?|bearded", False),
        (r"clean-shaven|clean\s+shaven|beardless", True),
    ],
    "Oval_Face": [(r"oval\s+face|oval-shaped\s+face", True)],
    "Pale_Skin": [(r"pale(?:\s+skin|-skinned)?|fair-skinned", True)],
    "Pointy_Nose": [(r"(?:pointy|pointed)\s+nose", True)],
    "Receding_Hairline": [(r"receding\s+hairline|balding", True)],
    "Rosy_Cheeks": [(r"(?:rosy|pink|red|flushed)\s+cheeks|rosy-cheeked", True)],
    "Sideburns": [(r"sideburns", True)],
    "Smiling": [
        (r"smil(?:e|es|ing|ed)|grin(?:s|ning)?|beaming", True),
        (r"(?:serious|neutral|stern|grim)\s+(?:expression|face|look)|frown(?:s|ing)?", False),
    ],
    "Straight_Hair": [(rf"straight(?:{_HAIR})", True)],
    "Wavy_Hair": [(rf"(?:wavy|curly)(?:{_HAIR})?|hair\s+is\s+(?:wavy|curly)", True)],
    "Wearing_Earrings": [(r"earrings?", True)],
    "Wearing_Hat": [(r"hat|cap|beanie|hats", True)],
    "Wearing_Lipstick": [(r"lipstick|lip\s+colou?r|painted\s+lips", True)],
    "Wearing_Necklace": [(r"necklace", True)],
    "Wearing_Necktie": [(r"neck-?tie|tie", True)],
    "Young": [
        (r"young|youthful|child|kid|teen|teenager|teenage|toddler|baby|girls?|boys?"
         r"|in\s+(?:his|her|their)\s+(?:teens|twenties)", True),
        (r"(?<!years\s)(?<!year\s)old|older|elderly|senior|aged|middle-aged"
         r"|in\s+(?:his|her|their)\s+(?:forties|fifties|sixties|seventies|eighties|nineties)", False),
    ],
}
assert set(LEXICON) <= set(ATTRIBUTES), sorted(set(LEXICON) - set(ATTRIBUTES))

# an age stated in digits: "a 34-year-old", "34 years old", "34 years of age", "aged 34", "age 34"
_STATED_AGE = re.compile(
    r"(?<![\w-])(\d{1,3})(?:-year-old|\s+years?\s+old|\s+years?\s+of\s+age)|\baged\s+(\d{1,3})\b|\bage\s+(\d{1,3})\b")


def stated_ages(text: str) -> list[int]:
    """The ages a text states in digits, in order ("a 34-year-old" -> [34]; "a man" -> [])."""
    return [int(next(g for g in m.groups() if g)) for m in _STATED_AGE.finditer(text.lower())]

_PATTERNS = [
    (name, re.compile(rf"(?<![\w'-])(?:{regex})(?![\w-])"), value)
    for name, entries in LEXICON.items()
    for regex, value in entries
]
# No_Beard is true of nearly every woman and child, and captions never say so: leaving it in
# recall would measure that convention, not the caption. Claims about it still count.
_RECALL_SKIP = frozenset({"No_Beard"})
_CLAUSE_END = re.compile(r"[.;,:!?()]|\b(?:and|but|who|which|that|while|whereas)\b")
_NEGATION = re.compile(r"(?<![\w-])(?:no|not|without|never|nor|neither|lacks?|lacking)(?![\w-])|n't\b")


def caption_claims(text: str) -> dict[str, bool]:
    """Attribute -> the value the caption claims for it (True: present, False: absent).

    Args:
        text: one caption, raw.

    Returns:
        the claims; an attribute the caption does not talk about is missing. When a caption
        claims both values (rare: "a man ... her"), presence wins.
    """
    lowered = text.lower().replace("’", "'")
    clauses = [m.end() for m in _CLAUSE_END.finditer(lowered)]
    claims: dict[str, bool] = {}
    for name, pattern, value in _PATTERNS:
        for match in pattern.finditer(lowered):
            start = max((c for c in clauses if c <= match.start()), default=0)
            negated = _NEGATION.search(lowered, start, match.start()) is not None
            claim = value != negated
            claims[name] = claims.get(name, False) or claim
    for age in stated_ages(lowered):
        claims["Young"] = claims.get("Young", False) or age < YOUNG_BELOW
    return claims


def caption_mentions(text: str, with_negations: bool = False) -> set[str]:
    """The CelebA attributes a caption mentions as present.

    Args:
        text: one caption, raw ("A smiling woman without glasses.").
        with_negations: also return the attributes claimed absent, as "!Name".

    Returns:
        e.g. {"Smiling"}, or {"Smiling", "!Male", "!Eyeglasses"} with negations.
    """
    claims = caption_claims(text)
    present = {name for name, value in claims.items() if value}
    if with_negations:
        present |= {f"!{name}" for name, value in claims.items() if not value}
    return present


def attribute_precision_recall(
    mentioned: Sequence[set[str]], truth: Sequence[Mapping[str, bool]]
) -> dict[str, float]:
    """Precision and recall of the attribute claims of captions, micro-averaged over captions.

    Args:
        mentioned: per caption, its claims as `caption_mentions` returns them ("Name" present,
            "!Name" absent; absence claims count for precision only).
        truth: per caption, the true attributes of its face (name -> bool); names missing here
            are unknown and ignored on both sides.

    Returns:
        {"precision", "recall", "f1", "claims", "true_present"}: precision = correct claims / claims;
        recall = present attributes claimed / present attributes (of the attributes the
        lexicon covers, No_Beard excepted). A ratio with no denominator is 0.
    """
    if len(mentioned) != len(truth):
        raise ValueError(f"{len(mentioned)} caption claim sets but {len(truth)} truth dicts")
    claims = correct = present = recalled = 0
    for said, labels in zip(mentioned, truth):
        for claim in said:
            name, value = (claim[1:], False) if claim.startswith("!") else (claim, True)
            if name in labels:
                claims += 1
                correct += labels[name] == value
        for name, value in labels.items():
            if value and name in LEXICON and name not in _RECALL_SKIP:
                present += 1
                recalled += name in said
    precision = correct / claims if claims else 0.0
    recall = recalled / present if present else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "claims": claims, "true_present": present}
