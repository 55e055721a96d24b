"""What one SynFace face is made of: its labels (age + CelebA attributes) and its identity.

Labels are what the data set publishes; identity parameters (face shape, skin tone, eye colour,
hair style, background, clothes) vary independently of the labels so that faces with equal labels
still differ. `sample_params(rng)` draws a face whose labels obey the consistency rules below, and
`check_consistent(params)` states those rules in one place (tests and edits use it).

Consistency rules (each one is enforced by sampling and checked by `check_consistent`):
- Young == (age < YOUNG_BELOW). CelebA's "Young" has no published threshold; we pick 36.
- Bald => no hair colour; otherwise exactly one of Black/Blond/Brown/Gray_Hair.
- Bald => not Bangs, not Wavy_Hair (there is no hair to style); Bald only for men aged >= 25.
- Wearing_Hat => not Bald, not Bangs (the brim would hide both).
- Gray_Hair only from age 40.
- No_Beard == not (Goatee or a full beard). Full beard is an identity-independent hidden label
  (`full_beard`): CelebA has no "Beard" attribute, only No_Beard.
- Mustache, Goatee, full beard: men aged >= 18 only. Wearing_Lipstick: women aged >= 14 only.
- Wearing_Necktie: men aged >= 16 only. Pale_Skin: only for lighter skin tones (tone < 0.45).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from talk2face.data.record import YOUNG_BELOW

# The CelebA attributes SynFace draws (exact names from talk2face.data.record.ATTRIBUTES).
SYN_ATTRIBUTES: tuple[str, ...] = (
    "Arched_Eyebrows", "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair",
    "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Eyeglasses", "Goatee", "Gray_Hair", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Pale_Skin", "Rosy_Cheeks",
    "Smiling", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)
HAIR_COLORS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
MIN_AGE, MAX_AGE = 1, 90

EYE_COLORS: tuple[str, ...] = ("brown", "dark brown", "blue", "green", "grey", "hazel")
# short styles are likelier for men, long ones for women; both sexes get every style sometimes
HAIR_STYLES: tuple[str, ...] = ("crop", "side", "medium", "bob", "long", "bun")
HAT_STYLES: tuple[str, ...] = ("cap", "beanie", "brimmed")


@dataclass(frozen=True)
class Identity:
    """What makes a person look like themselves, independent of the labels."""

    face_width: float  # 0.9..1.1, head width multiplier
    jaw: float  # 0 round .. 1 angular/pointed lower face
    skin_tone: float  # 0 lightest .. 1 darkest
    skin_warmth: float  # -1 olive/cool .. 1 warm/red
    eye_color: str
    hair_style: str
    hair_shade: float  # -1..1 small jitter of the hair colour inside its named colour
    background: tuple[tuple[int, int, int], tuple[int, int, int]]  # top, bottom of the gradient
    shirt: tuple[int, int, int]
    accessory: tuple[int, int, int]  # hat / glasses frame / tie colour family
    hat_style: str
    lip_tint: float  # 0..1 which lipstick shade
    part: float  # -1..1 side of the hair parting / fringe sweep


@dataclass(frozen=True)
class FaceParams:
    """Everything `render_face` needs: labels plus identity. Immutable; edits use `replace`."""

    identity_id: str
    identity: Identity
    age: int
    attributes: dict[str, bool] = field(hash=False)  # every name in SYN_ATTRIBUTES
    full_beard: bool = False  # hidden label behind No_Beard (see module docstring)

    def has(self, name: str) -> bool:
        return self.attributes[name]

    def with_labels(self, age: int | None = None, full_beard: bool | None = None,
                    **changes: bool) -> FaceParams:
        """A copy with some labels changed; derived labels (Young, No_Beard) are recomputed."""
        attrs = dict(self.attributes)
        attrs.update(changes)
        age = self.age if age is None else age
        beard = self.full_beard if full_beard is None else full_beard
        attrs["Young"] = age < YOUNG_BELOW
        attrs["No_Beard"] = not (attrs["Goatee"] or beard)
        return replace(self, age=age, attributes=attrs, full_beard=beard)


def _rgb(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))  # type: ignore[return-value]


def sample_identity(rng: np.random.Generator, male: bool) -> Identity:
    """Draw identity parameters. Only the hair-style prior depends on sex (as in real photos)."""
    style_p = [0.3, 0.3, 0.2, 0.07, 0.08, 0.05] if male else [0.04, 0.08, 0.2, 0.22, 0.3, 0.16]
    top = _rgb(rng, 40, 230)
    # the bottom of the background is a darker or lighter variant of the top: a soft gradient
    shift = int(rng.integers(-60, 60))
    bottom = tuple(int(np.clip(c + shift + rng.integers(-25, 25), 0, 255)) for c in top)
    return Identity(
        face_width=float(rng.uniform(0.9, 1.08)),
        jaw=float(rng.uniform(0.0, 1.0)),
        skin_tone=float(rng.beta(1.6, 2.0)),
        skin_warmth=float(rng.uniform(-1, 1)),
        eye_color=str(rng.choice(EYE_COLORS)),
        hair_style=str(rng.choice(HAIR_STYLES, p=style_p)),
        hair_shade=float(rng.uniform(-1, 1)),
        background=(top, bottom),  # type: ignore[arg-type]
        shirt=_rgb(rng, 20, 235),
        accessory=_rgb(rng, 0, 200),
        hat_style=str(rng.choice(HAT_STYLES)),
        lip_tint=float(rng.uniform(0, 1)),
        part=float(rng.uniform(-1, 1)),
    )


def sample_params(rng: np.random.Generator, identity_id: str = "synface") -> FaceParams:
    """Draw one face: identity, age 1..90 (uniform) and consistent CelebA attributes.

    Each attribute is present in roughly 20-60% of faces except those limited to one sex or age
    (Mustache ~18%, Goatee ~10%, Bald ~12%, Wearing_Necktie ~20%).

    Args:
        rng: the only source of randomness (same state => same face).
        identity_id: the person id stored on the record.
    Returns:
        FaceParams that pass `check_consistent`.
    """
    age = int(rng.integers(MIN_AGE, MAX_AGE + 1))
    male = bool(rng.random() < 0.5)
    ident = sample_identity(rng, male)
    adult = age >= 18
    p = rng.random(size=32)  # fixed number of draws: a change to one rule keeps the others' draws
    a: dict[str, bool] = {name: False for name in SYN_ATTRIBUTES}
    a["Male"] = male
    a["Smiling"] = p[0] < 0.5
    a["Mouth_Slightly_Open"] = p[1] < 0.45
    a["Eyeglasses"] = p[2] < (0.15 if age < 8 else 0.32)
    a["Wearing_Hat"] = p[3] < 0.22
    old = np.clip((age - 25) / 50, 0, 1)
    a["Bald"] = male and age >= 25 and not a["Wearing_Hat"] and p[4] < 0.2 + 0.3 * old
    if not a["Bald"]:
        gray_p = 0.0 if age < 40 else min(0.9, 0.15 + (age - 40) / 45)
        if p[5] < gray_p:
            a["Gray_Hair"] = True
        else:
            a[str(rng.choice(["Black_Hair", "Brown_Hair", "Blond_Hair"], p=[0.38, 0.34, 0.28]))] = True
        a["Bangs"] = not a["Wearing_Hat"] and p[6] < 0.38
        a["Wavy_Hair"] = p[7] < 0.35
    beard = False
    if male and adult:
        # none, mustache, goatee, goatee+mustache, full beard, full beard+mustache
        kind = int(rng.choice(6, p=[0.35, 0.2, 0.1, 0.15, 0.1, 0.1]))
        a["Mustache"] = kind in (1, 3, 5)
        a["Goatee"] = kind in (2, 3)
        beard = kind in (4, 5)
    a["Wearing_Lipstick"] = not male and age >= 14 and p[8] < 0.55
    a["Pale_Skin"] = ident.skin_tone < 0.45 and p[9] < 0.5
    a["Rosy_Cheeks"] = p[10] < 0.3
    a["Bushy_Eyebrows"] = p[11] < (0.4 if male else 0.2)
    a["Arched_Eyebrows"] = p[12] < (0.2 if male else 0.5)
    a["Big_Nose"] = p[13] < 0.3
    a["Chubby"] = p[14] < 0.25
    a["Wearing_Earrings"] = p[15] < (0.06 if male else 0.55)
    a["Wearing_Necklace"] = p[16] < (0.1 if male else 0.4)
    a["Wearing_Necktie"] = male and age >= 16 and p[17] < 0.45
    a["Narrow_Eyes"] = p[18] < 0.2
    a["Big_Lips"] = p[19] < 0.25
    a = {k: bool(v) for k, v in a.items()}  # numpy bools are not JSON-serialisable
    base = FaceParams(identity_id, ident, age, a)
    return base.with_labels(full_beard=beard)


def check_consistent(params: FaceParams) -> list[str]:
    """Every broken consistency rule of `params`, as readable strings (empty when consistent)."""
    a, age, problems = params.attributes, params.age, []
    if set(a) != set(SYN_ATTRIBUTES):
        problems.append(f"attribute names differ from SYN_ATTRIBUTES: {sorted(set(a) ^ set(SYN_ATTRIBUTES))}")
        return problems
    colors = [c for c in HAIR_COLORS if a[c]]
    if a["Young"] != (age < YOUNG_BELOW):
        problems.append(f"Young={a['Young']} but age={age}")
    if a["Bald"] and (colors or a["Bangs"] or a["Wavy_Hair"]):
        problems.append("Bald with hair colour, bangs or wavy hair")
    if not a["Bald"] and len(colors) != 1:
        problems.append(f"not Bald but hair colours {colors}")
    if a["Bald"] and (not a["Male"] or age < 25):
        problems.append("Bald only for men aged 25+")
    if a["Wearing_Hat"] and (a["Bald"] or a["Bangs"]):
        problems.append("Wearing_Hat with Bald or Bangs")
    if a["Gray_Hair"] and age < 40:
        problems.append("Gray_Hair under 40")
    if a["No_Beard"] != (not (a["Goatee"] or params.full_beard)):
        problems.append("No_Beard inconsistent with Goatee/full beard")
    if (a["Mustache"] or a["Goatee"] or params.full_beard) and (not a["Male"] or age < 18):
        problems.append("facial hair on a woman or a child")
    if a["Wearing_Lipstick"] and (a["Male"] or age < 14):
        problems.append("lipstick on a man or a child")
    if a["Wearing_Necktie"] and (not a["Male"] or age < 16):
        problems.append("necktie on a woman or a child")
    if a["Pale_Skin"] and params.identity.skin_tone >= 0.45:
        problems.append("Pale_Skin on a dark skin tone")
    return problems
