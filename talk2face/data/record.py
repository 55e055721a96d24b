"""The one record every data source produces, and every later stage consumes.

A reader (CelebA, UTKFace, MM-CelebA-HQ, SynFace, an imagefolder, ...) turns its published layout
into `FaceRecord`s. Fields a source does not have stay `None`: a record from UTKFace has an age and
`{"Male": ...}` but no captions; a record from Multi-Modal-CelebA-HQ has captions and the 40
attributes. The templates decide per task which records can train it (see `FaceRecord.has`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# CelebA's 40 attribute names, in the order of the header of `list_attr_celeba.txt`.
ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

SPLITS: tuple[str, ...] = ("train", "validation", "test")

# The tasks one model learns (each has a templates/<task>.yaml), in the order training defaults list them.
TASKS: tuple[str, ...] = ("text_to_face", "caption", "age", "attributes", "edit", "edit_plan")

# CelebA's "Young" has no published threshold; SynFace labels Young == age < YOUNG_BELOW, and a
# caption's stated age claims Young by the same rule (talk2face.evaluation.caption_attributes).
YOUNG_BELOW = 36

# Ages are whole years 0..MAX_AGE: each is one answer token (vocab.MAX_NUMBER), and -1 is how a
# tokenized row says "unknown", so a reader refuses anything outside the range.
MAX_AGE = 120


@dataclass
class EditInfo:
    """How this record's face was made from another face of the same person.

    The record's own image is the edit *result*; `source` is the face before the edit.
    """

    source: Any  # image path relative to the data root, a PIL image, or VQ codes once tokenized
    instructions: list[str]  # several natural phrasings of the change ("make her smile", ...)
    attribute: str  # the CelebA attribute that changed, or "age"
    value: bool | int  # its new value (True/False for an attribute, the new age for "age")


@dataclass
class FaceRecord:
    """One face and every label a source has for it.

    Attributes:
        image: a path (relative to the source's root), a PIL image, or VQ codes once tokenized.
        id: unique within the source, stable across runs (e.g. the file name).
        split: "train", "validation" or "test".
        source: name of the data source ("synface", "celeba", "utkface", ...).
        age: whole years, if known.
        attributes: CelebA attribute name -> value, for the attributes the source labels.
        captions: free-text descriptions, each true of the face.
        caption_attributes: for each caption, the attribute names it mentions (SynFace only), so
            that caption metrics can check what a caption claims.
        identity: person id; splits never share one.
        edit: set when this face is an edit of another face (see EditInfo).
    """

    image: Any
    id: str
    split: str = "train"
    source: str = ""
    age: int | None = None
    attributes: dict[str, bool] | None = None
    captions: list[str] | None = None
    caption_attributes: list[list[str]] | None = None
    identity: str | None = None
    edit: EditInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific labels (e.g. UTK race)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"record {self.id!r}: split must be one of {SPLITS}, got {self.split!r}")
        if self.attributes:
            unknown = sorted(set(self.attributes) - set(ATTRIBUTES))
            if unknown:
                raise ValueError(f"record {self.id!r}: unknown attribute names {unknown}")

    def has(self, label: str) -> bool:
        """Whether this record carries a label ("age", "attributes", "captions", "edit")."""
        return getattr(self, label) not in (None, {}, [])

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the image must be a path): one line of `metadata.jsonl`."""
        if not isinstance(self.image, str):
            raise TypeError(f"record {self.id!r}: only records whose image is a path can be written")
        row = asdict(self)
        row["file_name"] = row.pop("image")
        if not row["extra"]:
            del row["extra"]  # Arrow cannot type an empty struct column
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> FaceRecord:
        """Inverse of `to_json`."""
        row = dict(row)
        row["image"] = row.pop("file_name")
        if row.get("edit") is not None:
            row["edit"] = EditInfo(**row["edit"])
        return cls(**row)
