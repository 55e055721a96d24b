"""CelebA and CelebA-HQ (with CelebAMask-HQ's labels), in their published layouts.

CelebA (`type: celeba`), root as unpacked from the official release:

    img_align_celeba/000001.jpg ...     202,599 aligned 178x218 crops
    list_attr_celeba.txt                line 1: the row count; line 2: the 40 attribute names;
                                        then `000001.jpg  -1  1  1 ...` (1 = yes, -1 = no)
    list_eval_partition.txt             `000001.jpg 0` (0 train, 1 validation, 2 test)
    identity_CelebA.txt                 optional: `000001.jpg 2880` (person id)

CelebA-HQ (`type: celebahq`), root as unpacked from CelebAMask-HQ:

    CelebA-HQ-img/0.jpg ... 29999.jpg
    CelebA-HQ-to-CelebA-mapping.txt     header `idx orig_idx orig_file`, then `0 119613 119614.jpg`
    CelebAMask-HQ-attribute-anno.txt    list_attr_celeba.txt's format, keyed by `0.jpg`

CelebA's own label files can be attached to HQ images through the mapping (`celeba_attributes`,
`celeba_partition`, `celeba_identities`, paths relative to the root or absolute).

Split rule for CelebA-HQ and the caption sets built on it (first that applies; `talk2face data
inspect` names the one used):
  1. `split_files`: plain-text lists, one HQ index or file name per line (`0`, `0.jpg`, `0.txt`,
     or a path ending in one, as CelebAText-HQ's `data_flist/*.flist`), or a `.pickle` of such a
     list (read by talk2face.data.name_pickle, which runs nothing); an image in no list is
     skipped and counted. Multi-Modal-CelebA-HQ's official `train/filenames.pickle` and
     `test/filenames.pickle` are its default `split_files` when present.
  2. `celeba_partition` + mapping: the image's CelebA original keeps its official split (the
     split everyone reports on; no CelebA identity crosses it).
  3. otherwise a SHA-1 hash of the HQ index with `split_ratios` (default 0.9/0.05/0.05), the
     same for every HQ-based source, so mixing them never puts one image in two splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from talk2face.config import ConfigError
from talk2face.data.name_pickle import read_name_pickle
from talk2face.data.record import ATTRIBUTES, SPLITS, FaceRecord
from talk2face.data.sources import (
    Opened, Reader, ReadStats, SourceOptions, check_image, check_ratios, hash_split,
    open_label_file, read_partition, read_table, read_two_column_int, text_lines,
)
from talk2face.errors import UserError


def read_attribute_table(path: Path) -> Iterator[tuple[int, str, dict[str, bool]]]:
    """Parse `list_attr_celeba.txt` / `CelebAMask-HQ-attribute-anno.txt`.

    Args:
        path: the attribute file (count line, names line, then `file v1 ... v40`, v in {1, -1}).
    Returns:
        an iterator of (line number, file name, {attribute: bool}); checks every value, the
        names, and that the row count matches line 1 (a truncated download fails loudly).
    """
    lines = text_lines(path)
    (_, first), (_, second) = next(lines, (1, "")), next(lines, (2, ""))
    try:
        expected = int(first.strip())
    except ValueError:
        raise UserError(f"{path}:1: expected the number of rows, got {first.strip()[:80]!r}") from None
    names = second.split()
    unknown = [n for n in names if n not in ATTRIBUTES]
    if not names or unknown:
        raise UserError(f"{path}:2: expected CelebA attribute names, got unknown {unknown or names}")
    count = 0
    for lineno, line in lines:
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise UserError(f"{path}:{lineno}: expected a file name and {len(names)} values "
                            f"(1 or -1), got {len(fields)} fields")
        values = fields[1:]
        bad = next((v for v in values if v not in ("1", "-1")), None)
        if bad is not None:
            raise UserError(f"{path}:{lineno}: attribute values must be 1 or -1, got {bad!r}")
        count += 1
        yield lineno, fields[0], {n: v == "1" for n, v in zip(names, values)}
    if count != expected:
        raise UserError(f"{path}: line 1 says {expected} rows but the file has {count} "
                        "(truncated download? fix line 1 if you cut the file on purpose)")


# ---------------------------------------------------------------------------- CelebA


@dataclass
class CelebAOptions(SourceOptions):
    """Options of `type: celeba`; file names default to the official release's."""

    images: str = "img_align_celeba"  # image folder
    attributes: str | None = "list_attr_celeba.txt"  # null: records without attributes
    partition: str | None = "list_eval_partition.txt"  # null: every image is train
    identities: str | None = None  # e.g. identity_CelebA.txt, to fill FaceRecord.identity


def open_celeba(root: Path, options: CelebAOptions) -> Opened:
    """Parse CelebA's split/identity files now; stream the attribute file per pass."""
    partition = read_partition(open_label_file(root, options.partition, "partition")) if options.partition else None
    identities = read_two_column_int(open_label_file(root, options.identities, "identities")) if options.identities else {}
    attr_path = open_label_file(root, options.attributes, "attributes") if options.attributes else None
    if attr_path is None and partition is None:
        raise ConfigError("celeba needs `attributes` or `partition` to list its images")

    def rows() -> Iterator[tuple[str, str, dict[str, bool] | None]]:
        if attr_path is not None:
            for lineno, name, attrs in read_attribute_table(attr_path):
                yield f"{attr_path}:{lineno}", name, attrs
        else:
            for name in partition:
                yield str(root / options.partition), name, None

    def read(split: str, stats: ReadStats) -> Iterator[FaceRecord]:
        for where, name, attrs in rows():
            if partition is not None:
                if name not in partition:
                    stats.skip("image not in the partition file", name)
                    continue
                if partition[name] != split:
                    continue
            elif split != "train":
                continue
            image = f"{options.images}/{name}"
            if not check_image(root, image, options, stats, where):
                continue
            identity = identities.get(name)
            yield FaceRecord(image=image, id=name, split=split, attributes=attrs,
                             identity=None if identity is None else f"celeba/{identity}")

    rule = f"CelebA's official partition ({options.partition})" if partition else "none: every image is train (partition: null)"
    return read, rule


CELEBA = Reader(CelebAOptions, open_celeba)


# ---------------------------------------------------------------------------- CelebA-HQ


@dataclass
class CelebAHQOptions(SourceOptions):
    """Options of `type: celebahq` (and, with caption options, of the caption sets)."""

    images: str = "CelebA-HQ-img"  # image folder
    image_name: str = "{idx}.jpg"  # file name of HQ image number idx (some copies: "{idx:05d}.png")
    mapping: str | None = "CelebA-HQ-to-CelebA-mapping.txt"  # HQ idx -> CelebA file
    attributes: str | None = "CelebAMask-HQ-attribute-anno.txt"  # keyed by `0.jpg`
    celeba_attributes: str | None = None  # list_attr_celeba.txt, joined through the mapping
    celeba_partition: str | None = None  # list_eval_partition.txt, joined through the mapping
    celeba_identities: str | None = None  # identity_CelebA.txt, joined through the mapping
    split_files: dict[str, str] = field(default_factory=dict)  # split -> plain-text list of images
    split_ratios: list[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])  # hash fallback

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ratios(self.split_ratios)
        unknown = sorted(set(self.split_files) - set(SPLITS))
        if unknown:
            raise ConfigError(f"split_files: unknown split(s) {unknown}; use {list(SPLITS)}")
        try:
            self.image_name.format(idx=0)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"image_name must be a format string using {{idx}}, got "
                              f"{self.image_name!r} ({err})") from None


def hq_index(token: str, where: str) -> int:
    """`12`, `12.jpg`, `12.txt`, `some/dir/12.png` -> 12 (how the HQ sets name an image)."""
    base = token.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    if not stem.isdigit():
        raise UserError(f"{where}: expected a CelebA-HQ image index like 12 or 12.jpg, got {token!r}")
    return int(stem)


def read_mapping(path: Path) -> dict[int, str]:
    """`CelebA-HQ-to-CelebA-mapping.txt` -> {HQ idx: CelebA file name}."""
    header = next(text_lines(path), (1, ""))[1].split()
    if header[:3] != ["idx", "orig_idx", "orig_file"]:
        raise UserError(f"{path}:1: expected the header 'idx orig_idx orig_file', got {' '.join(header)!r}")
    mapping = {}
    for lineno, (idx, orig_idx, orig_file) in read_table(path, 3, header_lines=1):
        if not idx.isdigit() or not orig_idx.isdigit():
            raise UserError(f"{path}:{lineno}: expected 'idx orig_idx orig_file' with integer "
                            f"indices, got {idx!r} {orig_idx!r}")
        mapping[int(idx)] = orig_file
    return mapping


def split_list(path: Path) -> list[tuple[str, str]]:
    """The (where, name) entries of one split list: plain text, one name per line, or a `.pickle`."""
    if path.suffix == ".pickle":
        return [(f"{path} (item {i})", name) for i, name in enumerate(read_name_pickle(path))]
    return [(f"{path}:{lineno}", token) for lineno, (token,) in read_table(path, 1)]


def read_split_files(root: Path, split_files: dict[str, str]) -> dict[int, str]:
    """Split lists (one HQ index or file name per entry) -> {HQ idx: split}."""
    out: dict[int, str] = {}
    for split, name in split_files.items():
        for where, token in split_list(open_label_file(root, name, f"split_files.{split}")):
            idx = hq_index(token, where)
            if out.get(idx, split) != split:
                raise UserError(f"{where}: image {idx} is also listed for {out[idx]}")
            out[idx] = split
    return out


@dataclass
class CelebAHQLabels:
    """Every label a CelebA-HQ image can have, parsed once; `split_of` applies the split rule."""

    root: Path
    options: CelebAHQOptions
    mapping: dict[int, str]
    attributes: dict[int, dict[str, bool]]
    split_lists: dict[int, str]
    partition: dict[str, str]
    identities: dict[str, int]

    def split_of(self, idx: int) -> str | None:
        """The split of HQ image idx under the rule in this module's docstring (None: unlisted)."""
        if self.options.split_files:
            split = self.split_lists.get(idx)
            if split == "train" and "validation" not in self.options.split_files:
                return hash_split(f"celebahq/{idx}", self.train_validation_ratios)
            return split
        if self.partition:
            return self.partition.get(self.mapping.get(idx, ""))
        # Hash the HQ index, not the path: every HQ-based source (celebahq, mmcelebahq,
        # celebatext) then puts one image in the same split, so a mixture of them cannot leak.
        return hash_split(f"celebahq/{idx}", self.options.split_ratios)

    @property
    def train_validation_ratios(self) -> list[float]:
        """Lists without a validation part (Multi-Modal-CelebA-HQ's): the share of the train list
        that validates, as in split_ratios, chosen by the same hash as the hash rule."""
        train, validation, _ = self.options.split_ratios
        return [train / (train + validation), validation / (train + validation), 0.0]

    @property
    def split_rule(self) -> str:
        """Which rule `split_of` applies, in words."""
        if self.options.split_files:
            carved = ("" if "validation" in self.options.split_files else
                      f"; validation: {self.train_validation_ratios[1]:.1%} of the train list by a SHA-1 hash of the HQ index")
            return "split_files (" + ", ".join(f"{s}: {f}" for s, f in self.options.split_files.items()) + carved + ")"
        if self.partition:
            return f"CelebA's official partition ({self.options.celeba_partition}) through the mapping"
        return f"a SHA-1 hash of the HQ index, split_ratios {self.options.split_ratios} (no split files given)"

    def image(self, idx: int) -> str:
        return f"{self.options.images}/{self.options.image_name.format(idx=idx)}"

    def record(self, idx: int, split: str) -> FaceRecord:
        orig = self.mapping.get(idx)
        identity = self.identities.get(orig) if orig else None
        return FaceRecord(image=self.image(idx), id=str(idx), split=split,
                          attributes=self.attributes.get(idx),
                          identity=None if identity is None else f"celeba/{identity}",
                          extra={"celeba_file": orig} if orig else {})


def load_hq_labels(root: Path, options: CelebAHQOptions) -> CelebAHQLabels:
    """Parse the mapping, attribute and split files an HQ source names."""
    def path(key: str) -> Path | None:
        name = getattr(options, key)
        return open_label_file(root, name, key) if name else None

    mapping = read_mapping(path("mapping")) if options.mapping else {}
    needs_mapping = [k for k in ("celeba_attributes", "celeba_partition", "celeba_identities") if getattr(options, k)]
    if needs_mapping and not mapping:
        raise ConfigError(f"{needs_mapping} attach CelebA labels through `mapping`, which is not set")
    attributes: dict[int, dict[str, bool]] = {}
    if options.celeba_attributes:
        wanted = {orig: idx for idx, orig in mapping.items()}
        for _, name, attrs in read_attribute_table(path("celeba_attributes")):
            if name in wanted:
                attributes[wanted[name]] = attrs
    if options.attributes:  # CelebAMask-HQ's own file wins where both label an image
        for lineno, name, attrs in read_attribute_table(path("attributes")):
            attributes[hq_index(name, f"{options.attributes}:{lineno}")] = attrs
    return CelebAHQLabels(
        root=root, options=options, mapping=mapping, attributes=attributes,
        split_lists=read_split_files(root, options.split_files),
        partition=read_partition(path("celeba_partition")) if options.celeba_partition else {},
        identities=read_two_column_int(path("celeba_identities")) if options.celeba_identities else {},
    )


def open_celebahq(root: Path, options: CelebAHQOptions) -> Opened:
    """The HQ images are those the mapping lists, else those the attribute file lists."""
    labels = load_hq_labels(root, options)
    indices = sorted(labels.mapping or labels.attributes)
    if not indices:
        raise ConfigError("celebahq needs `mapping` or `attributes` to list its images")
    where = str(root / (options.mapping or options.attributes))

    def read(split: str, stats: ReadStats) -> Iterator[FaceRecord]:
        for idx in indices:
            own = labels.split_of(idx)
            if own is None:
                stats.skip("image in no split list", str(idx))
            elif own == split and check_image(root, labels.image(idx), options, stats, where):
                yield labels.record(idx, split)

    return read, labels.split_rule


CELEBAHQ = Reader(CelebAHQOptions, open_celebahq)
