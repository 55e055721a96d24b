"""The training caption grammar: many true descriptions of one face, in three styles.

Styles:
- terse: attribute lists ("woman, 34 years old, blond hair, smiling, earrings");
- sentences like Multi-Modal-CelebA-HQ ("This woman has blond hair and bangs. She is smiling.
  She wears earrings.");
- free style: other word orders, synonyms, age in numbers or words ("a man in his sixties",
  "a little girl", "a 34-year-old woman with glasses"), and sometimes negations ("no glasses").

Every caption is built only from facts that are true of the face, and returns the attribute
names it mentions. Mention convention (FaceRecord.caption_attributes): "Name" = the caption says
the attribute is present; "!Name" = the caption says it is absent ("no glasses" -> "!Eyeglasses",
"a woman" -> "!Male", "an old man" -> "!Young", "with a beard" -> "!No_Beard"). Age expressions
record Young / !Young only when the stated age range lies wholly on one side of YOUNG_BELOW.

The wording here and in `freestyle.py` (the held-out grammar) is disjoint on purpose: keep it so
(tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talk2face.data.synface.params import YOUNG_BELOW, FaceParams


@dataclass(frozen=True)
class Fact:
    """One true statement about a face, in the grammatical forms the templates need."""

    mentions: tuple[str, ...]  # attribute names, "!" prefix for absence
    nps: tuple[str, ...]  # noun phrases: "with {np}", "has {np}"
    terse: str  # the list form
    verb: str = "have"  # "have" (has X), "wear" (wears X) or "be" (is X)
    vps: tuple[str, ...] = ()  # for verb == "be": what follows "is" ("smiling", "bald")


DECADES = {2: "twenties", 3: "thirties", 4: "forties", 5: "fifties", 6: "sixties", 7: "seventies",
           8: "eighties", 9: "nineties"}


def young_mention(lo: int, hi: int) -> list[str]:
    """["Young"] / ["!Young"] when every age in lo..hi agrees, else [] (the phrase is vague)."""
    if hi < YOUNG_BELOW:
        return ["Young"]
    if lo >= YOUNG_BELOW:
        return ["!Young"]
    return []


def person_nouns(params: FaceParams) -> list[tuple[str, list[str]]]:
    """Nouns for the person that are true of its sex and age, with their mentions."""
    age, male = params.age, params.has("Male")
    sex = ["Male"] if male else ["!Male"]
    out: list[tuple[str, list[str]]] = [("person", [])]
    if age <= 2:
        out.append(("baby " + ("boy" if male else "girl"), sex + ["Young"]))
    if age <= 9:
        out.append(("little " + ("boy" if male else "girl"), sex + ["Young"]))
        out.append(("child", ["Young"]))
    if age <= 15:
        out.append(("boy" if male else "girl", sex + ["Young"]))
        out.append(("kid", ["Young"]))
    if 13 <= age <= 19:
        out.append(("teenage " + ("boy" if male else "girl"), sex + ["Young"]))
        out.append(("teenager", ["Young"]))
    if age >= 18:
        out.append(("man" if male else "woman", sex))
    if 18 <= age < YOUNG_BELOW:
        out.append(("young " + ("man" if male else "woman"), sex + ["Young"]))
    if 42 <= age <= 60:
        out.append(("middle-aged " + ("man" if male else "woman"), sex + ["!Young"]))
    if age >= 65:
        out.append(("elderly " + ("man" if male else "woman"), sex + ["!Young"]))
        out.append(("old " + ("man" if male else "woman"), sex + ["!Young"]))
    return out


def age_phrases(params: FaceParams) -> list[tuple[str, list[str]]]:
    """Exact or decade age expressions, as post-noun phrases ("in her sixties", "34 years old")."""
    age = params.age
    pron = "his" if params.has("Male") else "her"
    out = [(f"{age} years old", young_mention(age, age))]
    if age >= 20:
        d = age // 10
        out.append((f"in {pron} {DECADES[d]}", young_mention(d * 10, d * 10 + 9)))
    if age < 2:
        out.append(("1 year old", ["Young"]))
    return out


def _hair_fact(params: FaceParams) -> Fact | None:
    a = params.attributes
    if a["Bald"]:
        return Fact(("Bald",), ("a bald head",), "bald", "be", ("bald",))
    color = {"Black_Hair": "black", "Blond_Hair": "blond", "Brown_Hair": "brown", "Gray_Hair": "gray"}
    name = next(n for n in color if a[n])
    words = [color[name]] + (["grey", "white"] if name == "Gray_Hair" else [])
    mentions = [name]
    wavy = ""
    if a["Wavy_Hair"]:
        wavy, mentions = "wavy ", mentions + ["Wavy_Hair"]
    nps = tuple(f"{wavy}{w} hair" for w in words)
    return Fact(tuple(mentions), nps, nps[0])


def facts(params: FaceParams) -> list[Fact]:
    """Every true positive fact about the face the grammar can say (besides sex and age)."""
    a, male, adult = params.attributes, params.has("Male"), params.age >= 18
    out: list[Fact] = []
    hair = _hair_fact(params)
    if hair:
        out.append(hair)
    if a["Smiling"]:
        out.append(Fact(("Smiling",), ("a smile", "a big smile"), "smiling", "be", ("smiling",)))
    if a["Mouth_Slightly_Open"]:
        out.append(Fact(("Mouth_Slightly_Open",), ("a slightly open mouth", "an open mouth"),
                        "mouth slightly open"))
    wear = [("Eyeglasses", ("glasses", "eyeglasses", "spectacles"), "eyeglasses"),
            ("Wearing_Hat", ("a hat",), "hat"),
            ("Wearing_Earrings", ("earrings",), "earrings"),
            ("Wearing_Necklace", ("a necklace",), "necklace"),
            ("Wearing_Necktie", ("a tie", "a necktie"), "necktie"),
            ("Wearing_Lipstick", ("lipstick",), "lipstick")]
    for name, nps, terse in wear:
        if a[name]:
            out.append(Fact((name,), tuple(dict.fromkeys(nps)), terse, "wear"))
    have = [("Bangs", ("bangs",), "bangs"),
            ("Mustache", ("a mustache", "a moustache"), "mustache"),
            ("Goatee", ("a goatee",), "goatee"),
            ("Pale_Skin", ("pale skin",), "pale skin"),
            ("Rosy_Cheeks", ("rosy cheeks", "pink cheeks"), "rosy cheeks"),
            ("Bushy_Eyebrows", ("bushy eyebrows", "thick eyebrows"), "bushy eyebrows"),
            ("Arched_Eyebrows", ("arched eyebrows",), "arched eyebrows"),
            ("Big_Nose", ("a big nose", "a large nose"), "big nose"),
            ("Narrow_Eyes", ("narrow eyes",), "narrow eyes"),
            ("Big_Lips", ("big lips", "full lips"), "big lips")]
    for name, nps, terse in have:
        if a[name]:
            out.append(Fact((name,), nps, terse))
    if a["Chubby"]:
        out.append(Fact(("Chubby",), ("a chubby face",), "chubby", "be", ("chubby",)))
    if params.full_beard:
        out.append(Fact(("!No_Beard",), ("a beard", "a full beard"), "beard"))
    if male and adult and a["No_Beard"]:
        out.append(Fact(("No_Beard",), ("no beard",), "clean-shaven", "be", ("clean-shaven",)))
    return out


def negative_facts(params: FaceParams) -> list[Fact]:
    """True statements of absence, only where the absence is worth saying for this person."""
    a, male, adult = params.attributes, params.has("Male"), params.age >= 18
    out = []
    if not a["Eyeglasses"]:
        out.append(Fact(("!Eyeglasses",), ("no glasses",), "no glasses"))
    if not a["Wearing_Hat"]:
        out.append(Fact(("!Wearing_Hat",), ("no hat",), "no hat"))
    if not a["Smiling"]:
        out.append(Fact(("!Smiling",), ("a serious expression",), "not smiling", "be", ("not smiling",)))
    if male and adult and not a["Mustache"]:
        out.append(Fact(("!Mustache",), ("no mustache",), "no mustache"))
    if not male and not a["Wearing_Earrings"]:
        out.append(Fact(("!Wearing_Earrings",), ("no earrings",), "no earrings"))
    if not male and params.age >= 14 and not a["Wearing_Lipstick"]:
        out.append(Fact(("!Wearing_Lipstick",), ("no lipstick",), "no lipstick"))
    return out


def _join(items: list[str]) -> str:
    """English list: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(noun: str) -> str:
    """"a"/"an" by sound: "an 8-year-old", "an 18-year-old", "an 11-year-old", "a 1-year-old"."""
    first = noun.split("-")[0].split(" ")[0]
    vowel = noun[0] in "aeiou" or first.startswith("8") or first in ("11", "18")
    return ("an " if vowel else "a ") + noun


class _Builder:
    """Composes captions for one face from its facts, with the face's own rng."""

    def __init__(self, params: FaceParams, rng: np.random.Generator) -> None:
        self.p, self.rng = params, rng
        self.pos = facts(params)
        self.neg = negative_facts(params)
        self.nouns = person_nouns(params)
        self.pron = "he" if params.has("Male") else "she"

    def pick(self, seq, k: int) -> list:
        k = min(k, len(seq))
        # permutation is ~5x faster than choice(replace=False) and this runs ~15 times per face
        return [seq[i] for i in sorted(self.rng.permutation(len(seq))[:k])] if k else []

    def some(self, lo: int, hi: int, neg: bool = False) -> list[Fact]:
        chosen = self.pick(self.pos, int(self.rng.integers(lo, hi + 1)))
        if neg and self.neg:
            chosen += self.pick(self.neg, 1)
        return chosen

    def noun(self, specific: bool = True) -> tuple[str, list[str]]:
        pool = [n for n in self.nouns if n[0] != "person"] if specific else self.nouns
        return pool[int(self.rng.integers(len(pool)))] if pool else self.nouns[0]

    def np(self, f: Fact) -> str:
        return f.nps[int(self.rng.integers(len(f.nps)))]

    def terse(self) -> tuple[str, list[str]]:
        noun, m = self.noun()
        parts, mentions = [noun], list(m)
        if self.rng.random() < 0.5:
            age, am = age_phrases(self.p)[0]
            parts.append(age)
            mentions += am
        for f in self.some(2, 5, neg=self.rng.random() < 0.3):
            parts.append(f.terse)
            mentions += f.mentions
        sep = [", ", "; ", ", "][int(self.rng.integers(3))]
        return sep.join(parts), mentions

    def sentences(self) -> tuple[str, list[str]]:
        """Multi-Modal-CelebA-HQ style: "This woman has X and Y. She is smiling. She wears Z." """
        noun, mentions = self.noun(specific=self.rng.random() < 0.8)
        chosen = self.some(2, 5)
        mentions = list(mentions)
        subject = ["This ", "The "][int(self.rng.integers(2))] + noun
        out = []
        groups = {v: [f for f in chosen if f.verb == v] for v in ("have", "be", "wear")}
        first = True
        for verb in ("have", "be", "wear"):
            fs = groups[verb]
            if not fs:
                continue
            who = subject if first else self.pron.capitalize()
            first = False
            if verb == "have":
                out.append(f"{who} has {_join([self.np(f) for f in fs])}.")
            elif verb == "be":
                out.append(f"{who} is {_join([f.vps[0] for f in fs])}.")
            else:
                word = ["wears", "is wearing"][int(self.rng.integers(2))]
                out.append(f"{who} {word} {_join([self.np(f) for f in fs])}.")
            for f in fs:
                mentions += f.mentions
        if not out:
            out.append(f"{subject}.")
        return " ".join(out), mentions

    def free(self) -> tuple[str, list[str]]:
        """Free style: adjectives before the noun, age phrases, "with"/"wearing" clauses."""
        noun, mentions = self.noun()
        mentions = list(mentions)
        chosen = self.some(1, 4, neg=self.rng.random() < 0.35)
        adjs = [f for f in chosen if f.verb == "be" and f.vps[0] in ("smiling", "bald", "chubby")]
        rest = [f for f in chosen if f not in adjs]
        pre = " ".join(f.vps[0] for f in adjs)
        for f in chosen:
            mentions += f.mentions
        head = f"{pre} {noun}" if pre else noun
        form = int(self.rng.integers(4))
        if form == 0:  # "a 34-year-old woman with ..."
            head = f"{self.p.age}-year-old {head}"
            mentions += young_mention(self.p.age, self.p.age)
        elif form == 1:  # "a woman in her thirties, with ..."
            phrase, am = age_phrases(self.p)[-1]
            head = f"{head} {phrase},"
            mentions += am
        nps = [self.np(f) if f.verb != "be" else f.nps[0] for f in rest]
        if form == 3 and nps:  # another word order: the features first
            return f"{_join(nps)[0].upper()}{_join(nps)[1:]}: {_article(head.rstrip(','))}.", mentions
        text = _article(head)
        wearing = [f for f in rest if f.verb == "wear"]
        having = [f for f in rest if f.verb != "wear"]
        clauses = []
        if having:
            clauses.append("with " + _join([self.np(f) if f.verb == "have" else f.nps[0] for f in having]))
        if wearing:
            clauses.append("wearing " + _join([self.np(f) for f in wearing]))
        if clauses:
            text += " " + " and ".join(clauses)
        text = text.rstrip(",")
        return text[0].upper() + text[1:] + ("." if self.rng.random() < 0.5 else ""), mentions


def make_captions(params: FaceParams, rng: np.random.Generator, n: int = 12) -> tuple[list[str], list[list[str]]]:
    """`n` distinct true captions of the face (a third terse, a third sentences, a third free).

    Args:
        params: the face.
        rng: randomness for word choice (seeded per face: same seed, same captions).
        n: how many captions (at least 10 are written per face by `generate`).
    Returns:
        (captions, mentions): mentions[i] lists the attribute names caption i states, "!" for absent.
    """
    b = _Builder(params, rng)
    styles = (b.terse, b.sentences, b.free)
    texts: list[str] = []
    mentions: list[list[str]] = []
    for _ in range(n * 6):  # duplicates are dropped; a face with few facts may give fewer
        text, m = styles[len(texts) % 3]()
        if text not in texts:
            texts.append(text)
            mentions.append(sorted(set(m)))
        if len(texts) == n:
            break
    return texts, mentions
