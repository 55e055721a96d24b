"""The held-out prompt grammar: free-style descriptions worded unlike any training caption.

Used to test free-style robustness (does the model follow wording it never saw?). Its nouns,
synonyms, age expressions and sentence frames are disjoint from `captions.py`: "lady" and
"gentleman" instead of "woman"/"man", "specs" for glasses, "fair hair" for blond, "aged 34" for
"34 years old", frames like "Picture of ..." or "I'd like to see ...". Every prompt is true of the
face. Keep the two vocabularies disjoint (tests/test_synface.py checks sentences never coincide).
"""

from __future__ import annotations

import numpy as np

from talk2face.data.record import FaceRecord
from talk2face.data.synface.captions import young_mention

# attribute -> held-out phrasings of its presence (noun phrases that follow "with")
HELDOUT_PHRASES: dict[str, tuple[str, ...]] = {
    "Smiling": ("a grin", "a cheerful grin", "a beaming expression"),
    "Mouth_Slightly_Open": ("lips parted", "a gap between the lips"),
    "Eyeglasses": ("specs", "a pair of frames over the eyes"),
    "Wearing_Hat": ("headwear", "something covering the top of the head"),
    "Bald": ("a shaved-looking scalp", "a hairless, shiny scalp"),
    "Bangs": ("a fringe", "a fringe across the forehead"),
    "Black_Hair": ("jet-black locks", "raven locks"),
    "Blond_Hair": ("fair locks", "golden locks", "flaxen locks"),
    "Brown_Hair": ("chestnut locks", "brunette locks"),
    "Gray_Hair": ("silver locks", "silvery locks"),
    "Wavy_Hair": ("curly locks", "locks full of curls"),
    "Mustache": ("a 'stache", "whiskers above the lip"),
    "Goatee": ("a chin tuft", "a tuft of hair on the chin"),
    "Wearing_Lipstick": ("painted lips", "coloured lips"),
    "Pale_Skin": ("a fair complexion", "a very light complexion"),
    "Rosy_Cheeks": ("flushed cheeks", "blushing cheeks"),
    "Bushy_Eyebrows": ("heavy brows", "thick, heavy brows"),
    "Arched_Eyebrows": ("curved brows", "high curved brows"),
    "Big_Nose": ("a prominent nose", "a sizeable nose"),
    "Chubby": ("round, plump features", "plump features"),
    "Wearing_Earrings": ("ear jewellery", "hoops in the ears"),
    "Wearing_Necklace": ("a chain around the neck", "a golden chain at the throat"),
    "Wearing_Necktie": ("a cravat", "a knotted neckpiece"),
    "Narrow_Eyes": ("slit-like eyes", "slender eyes"),
    "Big_Lips": ("pouty lips", "a pouty mouth"),
}
FRAMES: tuple[str, ...] = (
    "Picture of {who}, {feat}.",
    "I'd like to see {who} showing {feat}.",
    "Can you draw {who}? Give them {feat}.",
    "Show me {who} featuring {feat}",
    "Render {who}; notable: {feat}",
    "Portrait: {who}. Key features are {feat}.",
    "{who_cap} — {feat}.",
)


def _who(record: FaceRecord, rng: np.random.Generator) -> tuple[str, list[str]]:
    """A held-out noun phrase for the person, with an age expression the training grammar lacks, and
    what it states in the training captions' mention convention ("lady" -> "!Male"; an age wholly
    on one side of YOUNG_BELOW -> "Young" / "!Young")."""
    a, age = record.attributes or {}, record.age or 30
    male = a.get("Male", False)
    sex = ["Male" if male else "!Male"]
    if age < 13:
        noun, said = ("youngster", []) if rng.random() < 0.5 else ("lad" if male else "lass", sex)
    elif age < 20:
        noun, said = ("adolescent", []) if rng.random() < 0.5 else ("lad" if male else "lass", sex)
    elif age >= 65:
        noun, said = "grandpa" if male else "grandma", sex
    else:
        noun = ("gentleman" if male else "lady") if rng.random() < 0.5 else ("guy" if male else "gal")
        said = sex
    form = int(rng.integers(3))
    if form == 1 and age >= 20:
        rounded = 5 * round(age / 5)
        return f"a {noun} of roughly {rounded}", said + young_mention(rounded - 2, rounded + 2)
    phrase = (f"a {noun} aged {age}", f"a {noun} of {age}", f"a {noun} around age {age}")[form]
    return phrase, said + young_mention(age, age)


def heldout_prompt_claims(record: FaceRecord, rng: np.random.Generator, n: int = 5) -> list[tuple[str, list[str]]]:
    """`n` held-out free-style descriptions of the face in `record`, each with the attributes it names.

    Args:
        record: a SynFace record (uses its age and attributes).
        rng: randomness for word choice.
        n: how many prompts.
    Returns:
        (prompt, what it states) pairs, in the training captions' mention convention: the
        attributes it names as present, plus the sex and age range its noun and number state
        ("!Male", "Young"), so that its claims are of the same kinds as a training caption's.
        Each prompt is true of the face and shares no wording with the training captions.
    """
    present = [k for k, v in (record.attributes or {}).items() if v and k in HELDOUT_PHRASES]
    out: list[tuple[str, list[str]]] = []
    for _ in range(n * 6):
        k = min(len(present), int(rng.integers(1, 4)))
        chosen = [present[i] for i in sorted(rng.choice(len(present), size=k, replace=False))] if k else []
        feats = [HELDOUT_PHRASES[c][int(rng.integers(len(HELDOUT_PHRASES[c])))] for c in chosen]
        feat = ", ".join(feats[:-1]) + " plus " + feats[-1] if len(feats) > 1 else \
            (feats[0] if feats else "an ordinary look")
        who, said = _who(record, rng)
        frame = FRAMES[int(rng.integers(len(FRAMES)))]
        text = frame.format(who=who, who_cap=who[0].upper() + who[1:], feat=feat)
        if all(text != t for t, _ in out):
            out.append((text, said + chosen))
        if len(out) == n:
            break
    return out


def heldout_prompts(record: FaceRecord, rng: np.random.Generator, n: int = 5) -> list[str]:
    """`n` held-out free-style descriptions of the face in `record` (see `heldout_prompt_claims`)."""
    return [text for text, _ in heldout_prompt_claims(record, rng, n)]


# Held-out edit instructions: asking for a feature, or for its absence, worded unlike edits.py's
# instructions ("add glasses", "remove the hat") and with the held-out phrases above.
ASK_FRAMES: tuple[str, ...] = ("could this person get {feat}?", "now with {feat}, please", "I want {feat} on this face")
DROP_FRAMES: tuple[str, ...] = ("this person without {feat}, please", "the same face minus {feat}", "lose {feat}")
# No_Beard is present when the chin is bare: asking for it asks for a shave
EDIT_PHRASES: dict[str, tuple[str, ...]] = {**HELDOUT_PHRASES, "No_Beard": ("a bare, shaven chin", "a smooth chin")}


def heldout_instruction(attribute: str, value: bool | int, rng: np.random.Generator) -> str | None:
    """A held-out free-style instruction asking `attribute` = `value`, or None (an age edit, or an
    attribute without held-out phrases)."""
    phrases = EDIT_PHRASES.get(attribute)
    if not phrases:
        return None
    frames = ASK_FRAMES if value else DROP_FRAMES
    return frames[int(rng.integers(len(frames)))].format(feat=phrases[int(rng.integers(len(phrases)))])
