"""The pre-tokenized data format: one module owns the Arrow schema, the rule between a row and a
FaceRecord, the label masks read column-wise, and opening a folder `talk2face tokenize` wrote.

Schema (one row per record; the decoder's training code depends on it):
    id, identity ("" if unknown), source: string
    codes: list<uint16> (h*w codes of the record's image)
    age: int32 (-1 if unknown)
    attributes: list<int8> (40, aligned to ATTRIBUTES; 1 / 0 / -1 unknown)
    captions: list<string>; caption_attributes: list<list<string>>
    edit_source_codes: list<uint16> (empty if not an edit); edit_instructions: list<string>
    edit_attribute: string ("" if none); edit_value: int32

The folder describes itself to plain `datasets.load_from_disk` (see `features`): the id of a
`codes` item holds the grid {"grid_size": [h, w], "n_codes": K}, the id of an `attributes` item
the attribute names in column order. tokenize.json repeats them, with the VQGAN that made the codes,
and summarizes each split's labels (`label_summary`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, Features, List, Value, load_from_disk

from talk2face.data.record import ATTRIBUTES, EditInfo, FaceRecord
from talk2face.errors import UserError
from talk2face.lexicon import WORD

META_NAME = "tokenize.json"
LABELS = ("age", "attributes", "captions", "edit")  # the labels `label_mask` tells apart

FEATURES = Features({
    "id": Value("string"),
    "identity": Value("string"),
    "source": Value("string"),
    "codes": List(Value("uint16")),
    "age": Value("int32"),
    "attributes": List(Value("int8")),
    "captions": List(Value("string")),
    "caption_attributes": List(List(Value("string"))),
    "edit_source_codes": List(Value("uint16")),
    "edit_instructions": List(Value("string")),
    "edit_attribute": Value("string"),
    "edit_value": Value("int32"),
})


def features(grid_size: Sequence[int], n_codes: int) -> Features:
    """FEATURES, with how to read the code and attribute columns in their item features' `id`:
    datasets keeps features in the folder's own metadata (each split's dataset_info.json and Arrow
    schema), where a feature's id survives `load_from_disk` (a list's own id does not)."""
    code = Value("uint16", id=json.dumps({"grid_size": list(grid_size), "n_codes": n_codes}))
    attribute = Value("int8", id=json.dumps(list(ATTRIBUTES)))
    return Features({**FEATURES, "codes": List(code), "attributes": List(attribute)})


def description(split: Dataset) -> dict[str, Any]:
    """What a split's own metadata says of its columns (`features`): any of "grid_size", "n_codes"
    and "attributes"; nothing for folders tokenized before they said it."""
    code, attribute = split.features["codes"].feature.id, split.features["attributes"].feature.id
    return {**(json.loads(code) if code else {}), **({"attributes": json.loads(attribute)} if attribute else {})}


def record_to_row(record: FaceRecord, codes: np.ndarray, edit_codes: np.ndarray | None) -> dict[str, Any]:
    """One FaceRecord plus its image's codes (and its edit source's) -> one row of FEATURES."""
    attrs = record.attributes or {}
    edit = record.edit
    return {
        "id": record.id,
        "identity": record.identity or "",
        "source": record.source,
        "codes": codes.astype(np.uint16),
        "age": -1 if record.age is None else int(record.age),
        "attributes": np.array([int(attrs[a]) if a in attrs else -1 for a in ATTRIBUTES], dtype=np.int8),
        "captions": list(record.captions or []),
        "caption_attributes": [list(c) for c in (record.caption_attributes or [])],
        "edit_source_codes": np.zeros(0, np.uint16) if edit_codes is None else edit_codes.astype(np.uint16),
        "edit_instructions": list(edit.instructions) if edit else [],
        "edit_attribute": edit.attribute if edit else "",
        "edit_value": int(edit.value) if edit else 0,
    }


def row_to_record(row: dict[str, Any], split: str = "train") -> FaceRecord:
    """Inverse of the tokenisation: a row of a tokenised split -> FaceRecord whose image is codes.

    Args:
        row: one row of a split of `load_tokenized(...)[0]`.
        split: the split the row came from (rows do not store it).
    Returns:
        FaceRecord with `image` = (h*w,) uint16 codes, `edit.source` likewise, only the known
        attributes, and None for unknown age / identity / captions.
    """
    known = {a: bool(v) for a, v in zip(ATTRIBUTES, row["attributes"]) if v != -1}
    edit = None
    if row["edit_attribute"]:
        value = int(row["edit_value"]) if row["edit_attribute"] == "age" else bool(row["edit_value"])
        edit = EditInfo(
            source=np.asarray(row["edit_source_codes"], dtype=np.uint16),
            instructions=list(row["edit_instructions"]), attribute=row["edit_attribute"], value=value,
        )
    return FaceRecord(
        image=np.asarray(row["codes"], dtype=np.uint16),
        id=row["id"],
        split=split,
        source=row["source"],
        age=None if row["age"] == -1 else int(row["age"]),
        attributes=known or None,
        captions=list(row["captions"]) or None,
        caption_attributes=[list(c) for c in row["caption_attributes"]] or None,
        identity=row["identity"] or None,
        edit=edit,
    )


def to_record(row: Any) -> FaceRecord:
    """A FaceRecord as is, or a pre-tokenized Arrow row converted by the pre-tokenizer's rule."""
    if isinstance(row, FaceRecord):
        return row
    return row_to_record(row)


def label_mask(table: Sequence[Any], label: str) -> np.ndarray:
    """(N,) bool: which rows of `table` have `label` ("captions", "age", "attributes", "edit").

    A pre-tokenized split (`datasets.Dataset` with the columns of FEATURES,
    which marks a missing label with a sentinel: age -1, attribute -1, no captions, edit_attribute
    "") is read column-wise in Arrow, without converting a row; anything else row by row.
    """
    column = {"age": "age", "attributes": "attributes", "captions": "captions", "edit": "edit_attribute"}[label]
    if column in (getattr(table, "column_names", None) or ()):
        import pyarrow.compute as pc

        # in the dataset's own row order, chunk by chunk: never a copy of the column (captions are big)
        col = table.with_format("arrow")[column]
        if label == "age":
            has = pc.not_equal(col, -1)
        elif label == "edit":
            has = pc.not_equal(col, "")
        elif label == "captions":
            has = pc.greater(pc.list_value_length(col), 0)
        else:  # one int8 per ATTRIBUTES entry in every row (record_to_row), -1 = not labelled
            known = pc.not_equal(pc.list_flatten(col), -1).to_numpy(zero_copy_only=False)  # (N * A,)
            return known.reshape(len(col), len(ATTRIBUTES)).any(1)
        return np.asarray(pc.fill_null(has, False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.array([to_record(row).has(label) for row in table], dtype=bool)


def summarize_labels(split: Dataset) -> dict[str, Any]:
    """A split's label summary, as tokenize.json keeps it under "labels".

    Args:
        split: rows of FEATURES.
    Returns:
        {label: rows with it (`label_mask`) for each of LABELS, "attributes_known": the ATTRIBUTES
        that some row labels (in ATTRIBUTES order), "caption_words": the sorted lower-cased words
        (`talk2face.lexicon.WORD`) of every caption}.
    """
    import pyarrow.compute as pc

    table = split.with_format("arrow")
    values = pc.list_flatten(table["attributes"]).to_numpy(zero_copy_only=False)
    known = (values.reshape(-1, len(ATTRIBUTES)) != -1).any(axis=0)  # (A,)
    captions = pc.list_flatten(table["captions"]).to_pylist()
    return {
        **{label: int(label_mask(split, label).sum()) for label in LABELS},
        "attributes_known": [name for name, k in zip(ATTRIBUTES, known) if k],
        "caption_words": sorted({word.lower() for caption in captions for word in WORD.findall(caption)}),
    }


def merge_label_summaries(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The label summary of the rows of several parts, from each part's (`summarize_labels`)."""
    return {
        **{label: sum(part[label] for part in parts) for label in LABELS},
        "attributes_known": [name for name in ATTRIBUTES if any(name in part["attributes_known"] for part in parts)],
        "caption_words": sorted(set().union(*(part["caption_words"] for part in parts))),
    }


def label_summary(meta: dict[str, Any], split: str) -> dict[str, Any] | None:
    """The label summary (`summarize_labels`) of `split` in a folder's tokenize.json (`load_tokenized`);
    None for a folder tokenized before tokenize.json kept one."""
    if "labels" not in meta:
        return None
    if split not in meta["labels"]:
        raise UserError(f"no split {split!r} in this tokenized folder (it has {sorted(meta['labels'])})")
    return meta["labels"][split]


def load_tokenized(directory: str | Path) -> tuple[DatasetDict, dict[str, Any]]:
    """Open a folder written by `tokenize`: (DatasetDict of FEATURES rows, tokenize.json), its
    "grid_size", "n_codes" and "attributes" as the data's own metadata says them (`description`);
    a folder written before that has them from tokenize.json, and its attributes are ATTRIBUTES."""
    directory = Path(directory)
    meta_path = directory / META_NAME
    if not meta_path.is_file():
        raise UserError(f"not a tokenized data folder (no {META_NAME}): {directory}")
    meta = {"attributes": list(ATTRIBUTES), **json.loads(meta_path.read_text())}
    dataset = load_from_disk(str(directory))
    if not isinstance(dataset, DatasetDict):
        raise UserError(f"{directory}: expected a DatasetDict")
    for split, ds in dataset.items():
        missing = sorted(set(FEATURES) - set(ds.features))
        if missing:
            raise UserError(f"{directory}: split {split!r} lacks columns {missing}")
        meta.update(description(ds))
    if meta["attributes"] != list(ATTRIBUTES):  # row_to_record and label_mask read the columns in ATTRIBUTES order
        raise UserError(f"{directory}: its attribute columns are {meta['attributes']}, not this version's ATTRIBUTES; "
                        "tokenize it again")
    return dataset, meta
