"""Caption data sets on CelebA-HQ images: Multi-Modal-CelebA-HQ and CelebAText-HQ.

Both ship one text file per CelebA-HQ image, `<idx>.txt`, with several captions, one per line.
The records are the images that have a caption file; they also carry CelebAMask-HQ attributes
(and CelebA's, split and identity through the mapping) exactly as `type: celebahq` reads them,
so every option of `talk2face.data.celeba.CelebAHQOptions` applies here too.

Multi-Modal-CelebA-HQ (`type: mmcelebahq`; TediGAN's release, 10 grammar-written captions each):

    CelebA-HQ-img/0.jpg ...             the CelebA-HQ images
    text/celeba-caption/0.txt ...
    CelebA-HQ-to-CelebA-mapping.txt
    CelebAMask-HQ-attribute-anno.txt
    train/filenames.pickle, test/filenames.pickle   -- the official split: lists of image names

The official split lists are pickles. When present they are the split (the default
`split_files`), read by a restricted unpickler that admits only a list of strings and refuses
any other content, so a hostile copy runs nothing (talk2face.data.name_pickle). Without them
(or with `official_split_files: {}`), CelebA's official partition applies via the mapping
when `celeba_partition` is set, else the hash split (see talk2face.data.celeba).

CelebAText-HQ (`type: celebatext`; SEA-T2F's release, 15,010 images, 10 human captions each):

    CelebAimg/0.jpg ...
    captions/0.txt ...
    data_flist/train.flist, data_flist/test.flist   -- one image path per line
    CelebAMask-HQ-attribute-anno.txt

Caption text: lines are stripped and blank lines dropped. Some files hold U+FFFD replacement
characters where a full-width character was lost (and invalid UTF-8 is decoded as U+FFFD); each
run of them becomes one space, as the data set's own loader does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from talk2face.config import ConfigError
from talk2face.data.celeba import CelebAHQOptions, hq_index, load_hq_labels
from talk2face.data.record import FaceRecord
from talk2face.data.sources import Opened, Reader, ReadStats, check_image, inside_root
from talk2face.errors import UserError

_REPLACEMENT = re.compile("\ufffd+")


def read_captions(path: Path) -> list[str]:
    """One caption file -> its non-empty, whitespace-normalised lines."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    captions = (" ".join(_REPLACEMENT.sub(" ", line).split()) for line in text.splitlines())
    return [c for c in captions if c]


@dataclass
class CaptionOptions(CelebAHQOptions):
    """CelebA-HQ options plus where the caption files are."""

    captions: str = "text/celeba-caption"  # folder of <idx>.txt files
    # the release's own split lists: the split_files when split_files is not set and they exist
    official_split_files: dict[str, str] = field(
        default_factory=lambda: {"train": "train/filenames.pickle", "test": "test/filenames.pickle"})


@dataclass
class CelebATextOptions(CaptionOptions):
    """Defaults of the CelebAText-HQ release (SEA-T2F's layout)."""

    images: str = "CelebAimg"
    captions: str = "captions"
    mapping: str | None = None  # not shipped with CelebAText-HQ; point it at CelebAMask-HQ's
    split_files: dict[str, str] = field(
        default_factory=lambda: {"train": "data_flist/train.flist", "test": "data_flist/test.flist"})
    official_split_files: dict[str, str] = field(default_factory=dict)  # they are its split_files


def open_captions(root: Path, options: CaptionOptions) -> Opened:
    """Index the caption folder and parse the HQ label files once."""
    official = {s: f for s, f in options.official_split_files.items() if (root / f).is_file()}
    if official and not options.split_files:
        options = dataclasses.replace(options, split_files=official)
    folder = root / options.captions
    if not folder.is_dir():
        raise ConfigError(f"captions: folder not found: {folder}")
    files = {}
    for path in folder.glob("*.txt"):
        files[hq_index(path.name, str(path))] = inside_root(root, path.relative_to(root).as_posix(), str(path))
    if not files:
        raise UserError(f"{folder}: no caption files (<idx>.txt) found")
    labels = load_hq_labels(root, options)

    def read(split: str, stats: ReadStats) -> Iterator[FaceRecord]:
        for idx in sorted(files):
            own = labels.split_of(idx)
            if own is None:
                stats.skip("image in no split list", str(idx))
                continue
            if own != split or not check_image(root, labels.image(idx), options, stats, str(files[idx])):
                continue
            captions = read_captions(files[idx])
            if not captions:
                stats.skip("empty caption file", files[idx].name)
                continue
            record = labels.record(idx, split)
            record.captions = captions
            yield record

    return read, labels.split_rule


MMCELEBAHQ = Reader(CaptionOptions, open_captions)
CELEBATEXT = Reader(CelebATextOptions, open_captions)
