"""UTKFace: age, gender and race parsed from the file names (`type: utkface`).

Layout: the "Aligned & Cropped Faces" release unpacks to `UTKFace/` with 23,708 files named
`[age]_[gender]_[race]_[date&time].jpg.chip.jpg`, e.g. `25_0_2_20170116174525125.jpg.chip.jpg`;
the in-the-wild release (`part1/ part2/ part3/`) uses the same stem with a plain `.jpg`. Point
`root` at the folder above them and `images` at the image folder (subfolders are scanned).

Labels: age in years (0..116 in the release); gender 0 = male, 1 = female, so
`attributes = {"Male": gender == 0}`; race 0..4 = White, Black, Asian, Indian, Others, kept as a
name in `record.extra["race"]`. A few released files lack a field (e.g. `39_1_20170116174525125
.jpg.chip.jpg` has no race): such names are skipped and counted, or raise with
`on_malformed: raise`.

Split: UTKFace has none and no person ids, so each file goes to a split by a SHA-1 hash of its
file name with `split_ratios` (default 0.8 train / 0.1 validation / 0.1 test): deterministic on
every machine. The same person can appear in two splits; report age numbers with that caveat.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from talk2face.config import ConfigError
from talk2face.data.record import MAX_AGE, FaceRecord
from talk2face.data.sources import (
    Opened, Reader, ReadStats, SourceOptions, check_image, check_ratios, hash_split, inside_root,
)
from talk2face.errors import UserError

RACES: tuple[str, ...] = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's race codes 0..4

_NAME = re.compile(r"^(\d{1,3})_(\d)_(\d)_(\d+)\.jpg(?:\.chip\.jpg)?$", re.IGNORECASE)
_IMAGE_SUFFIXES = (".jpg", ".jpeg")


@dataclass
class UTKFaceOptions(SourceOptions):
    """Options of `type: utkface`."""

    images: str = "UTKFace"  # image folder under root ("." for root itself); scanned recursively
    on_malformed: str = "skip"  # a file name that is not age_gender_race_date: "skip" or "raise"
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train/val/test

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ratios(self.split_ratios)
        if self.on_malformed not in ("skip", "raise"):
            raise ConfigError(f"on_malformed must be 'skip' or 'raise', got {self.on_malformed!r}")


def parse_name(name: str) -> tuple[int, bool, str] | None:
    """`25_0_2_20170116174525125.jpg.chip.jpg` -> (25, True, "Asian"); None if malformed.

    Returns:
        (age, is male, race name), or None when the name does not follow the convention.
    """
    match = _NAME.match(name)
    if match is None:
        return None
    age, gender, race = int(match[1]), int(match[2]), int(match[3])
    if age > MAX_AGE or gender > 1 or race >= len(RACES):
        return None
    return age, gender == 0, RACES[race]


def open_utkface(root: Path, options: UTKFaceOptions) -> Opened:
    """List the image folder once (sorted, so passes are reproducible)."""
    folder = root / options.images
    if not folder.is_dir():
        raise ConfigError(f"images: folder not found: {folder}")
    named = sorted(p.relative_to(root).as_posix() for p in folder.rglob("*") if p.name.lower().endswith(_IMAGE_SUFFIXES))
    files = [rel for rel in named if inside_root(root, rel, str(folder)).is_file()]
    if not files:
        raise UserError(f"{folder}: no .jpg images found")

    def read(split: str, stats: ReadStats) -> Iterator[FaceRecord]:
        for rel in files:
            name = rel.rsplit("/", 1)[-1]
            labels = parse_name(name)
            if labels is None:
                if options.on_malformed == "raise":
                    raise UserError(f"{root / rel}: expected a name like age_gender_race_date.jpg"
                                    ".chip.jpg (gender 0/1, race 0-4); set on_malformed: skip to skip it")
                stats.skip("malformed name", name)
                continue
            if hash_split(name, options.split_ratios) != split:
                continue
            if options.verify_images and not check_image(root, rel, options, stats, str(folder)):
                continue
            age, male, race = labels
            yield FaceRecord(image=rel, id=name, split=split, age=age, attributes={"Male": male},
                             extra={"race": race})

    return read, f"a SHA-1 hash of the file name, split_ratios {options.split_ratios} (UTKFace has no official split)"


UTKFACE = Reader(UTKFaceOptions, open_utkface)
