"""Data sources: one name per published layout, each yielding FaceRecords.

A source is given as a folder (an imagefolder with `metadata.jsonl`, which is what SynFace writes)
or a YAML file such as

    type: celeba          # a key of READERS
    root: /data/celeba    # the data set's folder in its published layout (relative to this file)
    name: celeba          # optional; defaults to the type
    on_missing: skip      # a listed image that is missing/unreadable: skip (and count) or raise
    # ... reader-specific options (see each reader's Options dataclass)

`open_source(spec)` returns a `Source`; `source.records(split)` yields FaceRecords whose `image`
is a path relative to `source.root`. Images a reader had to skip are counted in
`source.stats[split]` (a `ReadStats`) and summarised in one warning at the end of the pass.

This module also holds what every reader shares: the options every source accepts, `ReadStats`,
the image check, manifest-path validation, whitespace-table parsing and the hash split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from PIL import Image, UnidentifiedImageError

from talk2face.config import ConfigError, from_dict
from talk2face.data.record import MAX_AGE, SPLITS, FaceRecord
from talk2face.errors import UserError


class DataWarning(UserWarning):
    """Records were skipped while reading a source (missing images, malformed names, ...)."""


@dataclass
class ReadStats:
    """What one pass over one split skipped, and why; printed as a one-line summary."""

    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> first few items

    max_examples = 3  # class constant: how many offending items a summary names per reason

    def skip(self, reason: str, item: str) -> None:
        """Count one skipped item under `reason` ("missing image", "malformed name", ...)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < self.max_examples:
            shown.append(item)

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """E.g. `skipped 2 missing image (e.g. a.jpg, b.jpg); 1 malformed name (e.g. x.jpg)`."""
        parts = [
            f"{n} {reason} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in sorted(self.skipped.items())
        ]
        return "skipped " + "; ".join(parts) if parts else "nothing skipped"


@dataclass
class SourceOptions:
    """Options every source YAML accepts; each reader's Options dataclass extends this."""

    on_missing: str = "skip"  # listed image missing or unreadable: "skip" (count it) or "raise"
    verify_images: bool = False  # also open each image's header (slower; catches corrupt files)

    def __post_init__(self) -> None:
        if self.on_missing not in ("skip", "raise"):
            raise ConfigError(f"on_missing must be 'skip' or 'raise', got {self.on_missing!r}")


ReadFn = Callable[[str, ReadStats], Iterator[FaceRecord]]  # (split, stats) -> records
Opened = tuple[ReadFn, str]  # the read function and the split rule in words (`data inspect` says it)


@dataclass(frozen=True)
class Reader:
    """One published layout: its options dataclass and how to open it.

    `open(root, options)` parses the label files once and returns the per-split read function
    and which split rule it applies.
    """

    options: type[SourceOptions]
    open: Callable[[Path, Any], Opened]


@dataclass
class Source:
    """A readable data set: a name, a root folder, and a function that yields records per split."""

    name: str
    root: Path
    read: ReadFn
    split_rule: str  # how records are assigned to splits, in words
    stats: dict[str, ReadStats] = field(default_factory=dict)  # split -> what its last pass skipped

    def records(self, split: str) -> Iterator[FaceRecord]:
        """Yield the split's records; warn once at the end of the pass if any were skipped.

        Args:
            split: "train", "validation" or "test".
        Returns:
            an iterator of FaceRecords whose `image` is a path relative to `self.root`.
        """
        if split not in SPLITS:
            raise UserError(f"source {self.name!r}: split must be one of {SPLITS}, got {split!r}")
        stats = self.stats[split] = ReadStats()
        for record in self.read(split, stats):
            record.source = record.source or self.name
            yield record
        if stats.total:
            warnings.warn(f"source {self.name!r} ({self.root}), split {split}: {stats.summary()}",
                          DataWarning, stacklevel=2)

    def image_path(self, record: FaceRecord) -> Path:
        return self.root / record.image


# ---------------------------------------------------------------------------- shared helpers


def safe_relpath(name: Any, where: str) -> str:
    """Validate a manifest path: relative, inside the data root, '/'-separated.

    Args:
        name: the path as written in the manifest.
        where: "file:line" for the error message.
    Returns:
        the normalised relative path (no "." parts).
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: expected a non-empty relative file path, got {name!r}")
    path = PurePosixPath(name.replace("\\", "/"))
    # A drive letter ("C:/x") is absolute on Windows even though POSIX calls it relative.
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise UserError(f"{where}: path {name!r} escapes the data root; use a path relative to it "
                        "without '..'")
    return path.as_posix()


def inside_root(root: Path, rel: str, where: str) -> Path:
    """`root/rel` with every symlink resolved; refused if that lands outside `root`.

    safe_relpath checks the written path; this checks where the file system takes it, so a link
    inside the data root cannot make a reader open a file elsewhere.
    """
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UserError(f"{where}: {root / rel} is a link to {path}, outside the data root {root}; "
                        "copy the file in, or point root at a folder that holds it")
    return path


def check_image(root: Path, rel: str, options: SourceOptions, stats: ReadStats, where: str) -> bool:
    """Whether image `root/rel` can be used; a bad one is counted in `stats` or raises.

    Args:
        root: the source's data root.
        rel: the image path relative to it.
        options: the source's options (`on_missing`, `verify_images`).
        stats: where a skipped image is counted.
        where: what listed the image ("file:line"), named in the error.
    Returns:
        True if the image exists (and, with `verify_images`, its header decodes).
    """
    path = inside_root(root, rel, where)
    problem = None
    if not path.is_file():
        problem = "missing image"
    elif options.verify_images:
        try:
            with Image.open(path) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            problem = f"unreadable image ({type(err).__name__})"
    if problem is None:
        return True
    if options.on_missing == "raise":
        raise UserError(f"{where}: {problem}: {path} (set on_missing: skip to skip such images)")
    stats.skip(problem, rel)
    return False


def open_label_file(root: Path, name: str, key: str) -> Path:
    """Resolve a label file named by option `key` and fail clearly if it is absent."""
    path = root / name
    if not path.is_file():
        raise UserError(f"{key}: file not found: {path} (set `{key}: null` if your copy lacks it)")
    return path


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 label file, streamed; a line that is not UTF-8 raises
    UserError naming the file, line and byte (not a UnicodeDecodeError without a line)."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{lineno}: not UTF-8 text (byte {raw[err.start]:#04x} at column "
                                f"{err.start + 1}); save the file as UTF-8") from None


def read_table(path: Path, columns: int, header_lines: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Whitespace-separated rows of exactly `columns` fields, after `header_lines` lines.

    Blank lines are skipped. Yields (line number, fields); a row with another field count raises
    UserError naming the file and line.
    """
    for lineno, line in text_lines(path):
        if lineno <= header_lines or not line.strip():
            continue
        fields = line.split()
        if len(fields) != columns:
            raise UserError(f"{path}:{lineno}: expected {columns} whitespace-separated fields, "
                            f"got {len(fields)}: {line.strip()[:80]!r}")
        yield lineno, fields


def read_two_column_int(path: Path) -> dict[str, int]:
    """`file value` rows (list_eval_partition.txt, identity_CelebA.txt) -> {file: int}."""
    table: dict[str, int] = {}
    for lineno, (name, value) in read_table(path, 2):
        try:
            table[name] = int(value)
        except ValueError:
            raise UserError(f"{path}:{lineno}: expected an integer after {name!r}, got {value!r}") from None
    return table


CELEBA_PARTITION = {0: "train", 1: "validation", 2: "test"}  # list_eval_partition.txt codes


def read_partition(path: Path) -> dict[str, str]:
    """CelebA's `list_eval_partition.txt` (`000001.jpg 0`; 0 train, 1 val, 2 test) -> {file: split}."""
    out = {}
    for name, code in read_two_column_int(path).items():
        if code not in CELEBA_PARTITION:
            raise UserError(f"{path}: partition of {name} must be 0, 1 or 2, got {code}")
        out[name] = CELEBA_PARTITION[code]
    return out


def hash_split(key: str, ratios: list[float]) -> str:
    """Deterministic split of `key` by its SHA-1: same name -> same split on every machine.

    Args:
        key: a stable name (e.g. the file name).
        ratios: fractions for (train, validation, test), summing to 1.
    """
    u = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2**64  # in [0, 1)
    if u < ratios[0]:
        return "train"
    return "validation" if u < ratios[0] + ratios[1] else "test"


def check_ratios(ratios: list[float], key: str = "split_ratios") -> None:
    """Validate (train, validation, test) fractions."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"{key} must be three non-negative fractions (train, validation, test) "
                          f"summing to 1, got {ratios}")


# ---------------------------------------------------------------------------- imagefolder

# FaceRecord fields a metadata.jsonl row may carry, besides `file_name`.
_RECORD_KEYS = {f.name for f in dataclasses.fields(FaceRecord)} - {"image"}


def _record_from_row(row: Any, prefix: str, where: str) -> FaceRecord:
    """One metadata.jsonl row -> FaceRecord, every field type-checked, paths kept in the root."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "file_name" not in row:
        raise UserError(f"{where}: missing key 'file_name'")
    unknown = sorted(set(row) - _RECORD_KEYS - {"file_name"})
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(_RECORD_KEYS | {'file_name'})}")
    row = dict(row)
    name = safe_relpath(row["file_name"], where)
    row.setdefault("id", name)
    row["file_name"] = prefix + name
    age, attrs, caps = row.get("age"), row.get("attributes"), row.get("captions")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= MAX_AGE):
        raise UserError(f"{where}: 'age' must be a whole number of years 0..{MAX_AGE} (omit it if unknown), got {age!r}")
    if attrs is not None and not (isinstance(attrs, dict) and all(isinstance(v, bool) for v in attrs.values())):
        raise UserError(f"{where}: 'attributes' must map attribute names to true/false, got {attrs!r}")
    if caps is not None and not (isinstance(caps, list) and all(isinstance(c, str) for c in caps)):
        raise UserError(f"{where}: 'captions' must be a list of strings, got {caps!r}")
    edit = row.get("edit")
    if edit is not None:
        if not isinstance(edit, dict) or "source" not in edit:
            raise UserError(f"{where}: 'edit' must be an object with a 'source' path, got {edit!r}")
        # Unlike file_name, an edit source is relative to the data root (as SynFace writes it).
        row["edit"] = dict(edit, source=safe_relpath(edit["source"], f"{where} (edit.source)"))
    try:
        return FaceRecord.from_json(row)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: not a valid FaceRecord line: {err}") from None


def read_imagefolder(root: Path, split: str, options: SourceOptions | None = None,
                     stats: ReadStats | None = None) -> Iterator[FaceRecord]:
    """HF `imagefolder` layout, as SynFace writes it.

    `<root>/<split>/metadata.jsonl` with one FaceRecord.to_json() line per image (`file_name`
    relative to that split folder, `edit.source` relative to the root). Without it, a top-level
    `<root>/metadata.jsonl` is read and its rows are assigned by their `split` field (default
    "train"). Only `file_name` is required; `id` defaults to it. A record whose image or edit
    source is missing is skipped and counted (or raises, by `options.on_missing`).

    Args:
        root: the data root.
        split: which split to read.
        options: on_missing / verify_images (defaults: skip, no verification).
        stats: where skipped images are counted.
    Returns:
        an iterator of FaceRecords with `image` relative to `root`.
    """
    options = options or SourceOptions()
    stats = stats if stats is not None else ReadStats()
    meta, prefix, filtered = root / split / "metadata.jsonl", f"{split}/", False
    if not meta.is_file():
        meta, prefix, filtered = root / "metadata.jsonl", "", True
        if not meta.is_file():
            return
    for lineno, line in text_lines(meta):
        if not line.strip():
            continue
        where = f"{meta}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not a JSON line: {err}") from None
        record = _record_from_row(row, prefix, where)
        if filtered and record.split != split:
            continue
        record.split = split
        if not check_image(root, record.image, options, stats, where):
            continue
        if record.edit is not None and not check_image(root, record.edit.source, options, stats, where):
            continue
        yield record


def _open_imagefolder(root: Path, options: SourceOptions) -> Opened:
    if not root.is_dir():
        raise UserError(f"imagefolder root is not a folder: {root}")
    return (lambda split, stats: read_imagefolder(root, split, options, stats),
            "the split folders (<split>/metadata.jsonl), else the 'split' field of metadata.jsonl")


# ---------------------------------------------------------------------------- registry

# type -> (module, attribute holding its Reader). Readers are imported only when used, and their
# modules import the helpers above without an import cycle.
READERS: dict[str, tuple[str, str]] = {
    "imagefolder": ("talk2face.data.sources", "IMAGEFOLDER"),
    "celeba": ("talk2face.data.celeba", "CELEBA"),
    "celebahq": ("talk2face.data.celeba", "CELEBAHQ"),
    "mmcelebahq": ("talk2face.data.captions", "MMCELEBAHQ"),
    "celebatext": ("talk2face.data.captions", "CELEBATEXT"),
    "utkface": ("talk2face.data.utkface", "UTKFACE"),
}

IMAGEFOLDER = Reader(SourceOptions, _open_imagefolder)


def get_reader(kind: str) -> Reader:
    """The Reader registered under `kind` (a key of READERS)."""
    module, attr = READERS[kind]
    return getattr(importlib.import_module(module), attr)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None


def source_from_dict(cfg: dict[str, Any], base: Path, where: str) -> Source:
    """Open a source described by a mapping (`type`, `root`, `name`, reader options).

    Args:
        cfg: the mapping, as in a source YAML file.
        base: folder a relative `root` is resolved against (the YAML file's folder).
        where: the file (and entry) named in error messages.
    """
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: a source must be a mapping with 'type' and 'root', got {cfg!r}")
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in READERS:
        raise UserError(f"{where}: 'type' must be one of {sorted(READERS)}, got {kind!r}")
    if "root" not in cfg:
        raise UserError(f"{where}: missing key 'root'")
    root = (base / str(cfg.pop("root"))).resolve()
    name = str(cfg.pop("name", kind))
    reader = get_reader(kind)
    try:
        options = from_dict(reader.options, cfg, where)
    except ConfigError as err:
        raise UserError(f"{where}: {err}" if where not in str(err) else str(err)) from None
    if not root.is_dir():
        raise UserError(f"{where}: root is not a folder: {root}")
    try:
        read, split_rule = reader.open(root, options)
    except ConfigError as err:
        raise UserError(f"{where}: {err}") from None
    return Source(name, root, read, split_rule)


def open_source(spec: str | Path | dict[str, Any], base: Path | None = None) -> Source:
    """Open a data source.

    Args:
        spec: a folder (imagefolder), a source YAML file, or the YAML's mapping itself.
        base: folder that relative paths in `spec` are resolved against (default: the cwd).
    Returns:
        the opened Source; its label files are parsed here, so format errors surface now.
    """
    base = base or Path.cwd()
    if isinstance(spec, dict):
        return source_from_dict(spec, base, "source")
    path = base / spec
    if path.is_dir():
        return Source(path.name, path.resolve(), *_open_imagefolder(path.resolve(), SourceOptions()))
    if not path.exists():
        raise UserError(f"data source not found: {path}")
    cfg = _load_yaml(path)
    if isinstance(cfg, dict) and "sources" in cfg and "type" not in cfg:
        raise UserError(f"{path}: this is a mixture (it has 'sources'); load it with load_mixture")
    return source_from_dict(cfg or {}, path.parent, str(path))
