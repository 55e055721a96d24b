"""Edit pairs: the same person with exactly one label changed, and natural instructions for it.

`sample_edit(params, rng)` picks one change that keeps the face consistent (no beard for a woman,
no hat on top of bangs, ...) and returns the edited FaceParams with several phrasings of the
instruction. Exactly one published label changes, except for an age edit, which may also flip
Young (derived from the age) — nothing else: age edits stay inside the range every other label
allows (Gray_Hair needs >= 40, facial hair >= 18, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talk2face.data.synface.params import MAX_AGE, MIN_AGE, YOUNG_BELOW, FaceParams, check_consistent

# attribute -> (instructions to add it, instructions to remove it). {obj} = him/her,
# {pos} = his/her, {sub} = he/she.
_INSTRUCTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Smiling": (("make {obj} smile", "add a smile", "give {obj} a smile", "let {obj} smile"),
                ("remove the smile", "make {obj} stop smiling", "give {obj} a serious expression",
                 "make {obj} look serious")),
    "Mouth_Slightly_Open": (("open {pos} mouth slightly", "make {pos} mouth slightly open",
                             "part {pos} lips"),
                            ("close {pos} mouth", "make {obj} close {pos} mouth", "shut {pos} mouth")),
    "Eyeglasses": (("add glasses", "put glasses on {obj}", "give {obj} eyeglasses", "add spectacles"),
                   ("remove the glasses", "take off {pos} glasses", "remove {pos} eyeglasses",
                    "no glasses")),
    "Wearing_Hat": (("add a hat", "put a hat on {obj}", "give {obj} a hat"),
                    ("remove the hat", "take off {pos} hat", "no hat")),
    "Bangs": (("give {obj} bangs", "add bangs", "cut bangs into {pos} hair"),
              ("remove the bangs", "take away {pos} bangs", "no bangs")),
    "Mustache": (("add a mustache", "give {obj} a mustache", "grow a moustache"),
                 ("remove the mustache", "shave off {pos} mustache", "no mustache")),
    "No_Beard": (("remove the beard", "shave off {pos} beard", "make {obj} clean-shaven"),
                 ("add a beard", "give {obj} a full beard", "grow a beard")),
    "Wearing_Lipstick": (("add lipstick", "put lipstick on {obj}", "give {obj} red lips"),
                         ("remove the lipstick", "take off {pos} lipstick", "no lipstick")),
    "Wearing_Earrings": (("add earrings", "give {obj} earrings", "put earrings on {obj}"),
                         ("remove the earrings", "take off {pos} earrings", "no earrings")),
    "Wearing_Necklace": (("add a necklace", "give {obj} a necklace"),
                         ("remove the necklace", "take off {pos} necklace")),
    "Wearing_Necktie": (("add a tie", "give {obj} a necktie", "put a tie on {obj}"),
                        ("remove the tie", "take off {pos} necktie")),
    "Rosy_Cheeks": (("make {pos} cheeks rosy", "add rosy cheeks", "give {obj} pink cheeks"),
                    ("remove the rosy cheeks", "make {pos} cheeks less red")),
    "Bushy_Eyebrows": (("make {pos} eyebrows bushy", "give {obj} thick eyebrows"),
                       ("thin {pos} eyebrows", "make {pos} eyebrows thinner")),
    "Big_Nose": (("make {pos} nose bigger", "give {obj} a big nose"),
                 ("make {pos} nose smaller", "give {obj} a small nose")),
    "Chubby": (("make {obj} chubby", "make {pos} face rounder", "make {obj} look chubbier"),
               ("make {obj} slimmer", "make {pos} face thinner")),
    "Pale_Skin": (("make {pos} skin pale", "make {obj} paler"),
                  ("remove the paleness", "give {obj} a healthier skin tone")),
}
EDITABLE: tuple[str, ...] = tuple(_INSTRUCTIONS) + ("age",)


@dataclass(frozen=True)
class Edit:
    """One edit: the result face, what changed, and how a person would ask for it."""

    params: FaceParams  # the edited face (same identity)
    attribute: str  # a CelebA attribute name, or "age"
    value: bool | int  # the new value
    instructions: list[str]


def _age_range(params: FaceParams) -> tuple[int, int]:
    """The ages every non-age label of `params` allows (see params.check_consistent)."""
    a, lo, hi = params.attributes, MIN_AGE, MAX_AGE
    if a["Gray_Hair"]:
        lo = max(lo, 40)
    if a["Bald"]:
        lo = max(lo, 25)
    if a["Mustache"] or a["Goatee"] or params.full_beard:
        lo = max(lo, 18)
    if a["Wearing_Necktie"]:
        lo = max(lo, 16)
    if a["Wearing_Lipstick"]:
        lo = max(lo, 14)
    return lo, hi


def _age_instructions(params: FaceParams, new_age: int) -> list[str]:
    words = _pronouns(params)
    diff = new_age - params.age
    older = diff > 0
    d = abs(diff)
    out = [f"make {words['obj']} look {d} years {'older' if older else 'younger'}",
           f"make {words['obj']} {new_age} years old",
           f"{'age' if older else 'rejuvenate'} {words['obj']} by {d} years",
           f"show {words['obj']} at the age of {new_age}"]
    if older and new_age >= 65:
        out.append(f"make {words['obj']} an old {'man' if params.has('Male') else 'woman'}")
    if not older and new_age < 12:
        out.append(f"show {words['obj']} as a child")
    if not older and new_age < YOUNG_BELOW <= params.age:
        out.append(f"make {words['obj']} young again")
    return out


def _pronouns(params: FaceParams) -> dict[str, str]:
    male = params.has("Male")
    return {"obj": "him" if male else "her", "pos": "his" if male else "her",
            "sub": "he" if male else "she"}


def candidate_changes(params: FaceParams) -> list[tuple[str, bool]]:
    """(attribute, new value) for every single-label flip that keeps the face consistent."""
    out = []
    for name in _INSTRUCTIONS:
        new = not params.attributes[name]
        if name == "No_Beard":
            # only the full beard toggles No_Beard alone; with a goatee No_Beard is False anyway
            if params.attributes["Goatee"]:
                continue
            edited = params.with_labels(full_beard=not new)
        else:
            edited = params.with_labels(**{name: new})
        changed = {k for k in params.attributes if params.attributes[k] != edited.attributes[k]}
        if changed == {name} and not check_consistent(edited):
            out.append((name, new))
    return out


def sample_edit(params: FaceParams, rng: np.random.Generator, age_share: float = 0.2) -> Edit | None:
    """Pick one consistent edit of `params`, uniformly among attributes; age with `age_share`.

    Args:
        params: the source face.
        rng: randomness for the choice and the wording.
        age_share: probability that the edit changes the age instead of an attribute.
    Returns:
        the Edit, or None if no edit is possible (never happens for sampled faces in practice).
    """
    words = _pronouns(params)
    lo, hi = _age_range(params)
    if rng.random() < age_share and hi - lo >= 10:
        # at least 10 years of change, so the edit is visible
        choices = [g for g in range(lo, hi + 1) if abs(g - params.age) >= 10]
        new_age = int(rng.choice(choices))
        edited = params.with_labels(age=new_age)
        texts = _age_instructions(params, new_age)
        return Edit(edited, "age", new_age, texts)
    changes = candidate_changes(params)
    if not changes:
        return None
    name, new = changes[int(rng.integers(len(changes)))]
    edited = params.with_labels(full_beard=not new) if name == "No_Beard" else params.with_labels(**{name: new})
    add, remove = _INSTRUCTIONS[name]  # for No_Beard, "add" (No_Beard=True) shaves the beard
    texts = [t.format(**words) for t in (add if new else remove)]
    return Edit(edited, name, new, texts)
