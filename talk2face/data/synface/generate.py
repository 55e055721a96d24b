"""Write SynFace to disk as an HF `imagefolder`: `<out>/<split>/<id>.png` + `metadata.jsonl`.

Identity i (0, 1, 2, ...) is drawn from `np.random.default_rng([seed, i])` alone, so the output is
the same for any number of workers, and identity i is the same person in a run of any size.
Each identity gives one base face and, with probability `edit_fraction`, one edited face (an
EditInfo pointing back at the base image). Splits are by identity (i % 20: 18 -> validation,
19 -> test, else train: 90/5/5), so no person is in two splits.

Metadata is streamed to `metadata.jsonl.partial` and renamed to `metadata.jsonl` only after the
last image is written: an interrupted run leaves no metadata file that a loader would accept.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from talk2face.data.record import SPLITS, EditInfo, FaceRecord
from talk2face.data.synface.captions import make_captions
from talk2face.data.synface.edits import sample_edit
from talk2face.data.synface.params import FaceParams, sample_params
from talk2face.data.synface.render import MAX_SIZE, MIN_SIZE, render_face
from talk2face.errors import UserError

CAPTIONS_PER_FACE = 12
EDIT_FRACTION = 0.5  # share of identities that also get an edited face
PARTIAL = "metadata.jsonl.partial"


def split_of(index: int) -> str:
    """The split of identity `index`: 90% train, 5% validation, 5% test, interleaved."""
    r = index % 20
    return "validation" if r == 18 else "test" if r == 19 else "train"


def identity_name(seed: int, index: int) -> str:
    return f"s{seed}-{index:07d}"


def has_edit(seed: int, index: int, edit_fraction: float) -> bool:
    """Whether identity `index` gets an edit pair (its own stream, so the plan is cheap)."""
    return bool(np.random.default_rng([seed, index, 1]).random() < edit_fraction)


def plan(n: int, seed: int, edit_fraction: float) -> list[tuple[int, bool]]:
    """(identity index, with edit) for identities 0, 1, ... until exactly n images are planned."""
    out, count, index = [], 0, 0
    while count < n:
        edit = has_edit(seed, index, edit_fraction) and count + 2 <= n
        out.append((index, edit))
        count += 2 if edit else 1
        index += 1
    return out


def _identity_extra(params: FaceParams) -> dict[str, Any]:
    """Identity parameters stored on the record (same keys on every row: Arrow needs one schema)."""
    ident = params.identity
    return {
        "eye_color": ident.eye_color, "hair_style": ident.hair_style,
        "skin_tone": round(ident.skin_tone, 3), "face_width": round(ident.face_width, 3),
        "jaw": round(ident.jaw, 3), "full_beard": params.full_beard,
    }


def face_record(params: FaceParams, file_name: str, split: str, rng: np.random.Generator,
                n_captions: int = CAPTIONS_PER_FACE, edit: EditInfo | None = None) -> FaceRecord:
    """The FaceRecord of one rendered face (image = `file_name`, relative to its split folder)."""
    captions, mentions = make_captions(params, rng, n_captions)
    return FaceRecord(
        image=file_name, id=Path(file_name).stem, split=split, source="synface", age=params.age,
        attributes=dict(sorted(params.attributes.items())), captions=captions,
        caption_attributes=mentions, identity=params.identity_id, edit=edit,
        extra=_identity_extra(params),
    )


def make_records(seed: int, index: int, with_edit: bool) -> list[tuple[FaceParams, FaceRecord]]:
    """The face(s) of identity `index`: the base face and, if `with_edit`, its edited face.

    Args:
        seed: data set seed.
        index: identity index (decides the split).
        with_edit: also make the edited face.
    Returns:
        [(params, record)] with record.image relative to the split folder.
    """
    rng = np.random.default_rng([seed, index])
    name = identity_name(seed, index)
    split = split_of(index)
    params = sample_params(rng, name)
    base = face_record(params, f"{name}.png", split, rng)
    out = [(params, base)]
    if with_edit:
        edit = sample_edit(params, rng)
        if edit is not None:
            # value is written as an int (1/0 for an attribute, years for age): Arrow needs one
            # type per column, and a JSON column mixing true and 54 does not load (1 == True).
            info = EditInfo(source=f"{split}/{name}.png", instructions=edit.instructions,
                            attribute=edit.attribute, value=int(edit.value))
            out.append((edit.params, face_record(edit.params, f"{name}-edit.png", split, rng, edit=info)))
    return out


@dataclass(frozen=True)
class _Job:
    seed: int
    size: int
    out_dir: str


def _render_identity(job: _Job, index: int, with_edit: bool) -> list[tuple[str, str]]:
    """Render and save the face(s) of one identity; returns (split, metadata line) per image."""
    lines = []
    for params, record in make_records(job.seed, index, with_edit):
        image = render_face(params, job.size)
        buf = io.BytesIO()
        # level 3: as small as level 6 on these flat-colour images, and ~1.5x faster
        image.save(buf, format="PNG", compress_level=3)
        (Path(job.out_dir) / record.split / record.image).write_bytes(buf.getvalue())
        lines.append((record.split, json.dumps(record.to_json(), ensure_ascii=False) + "\n"))
    return lines


def _worker(args: tuple[_Job, int, bool]) -> list[tuple[str, str]]:
    return _render_identity(*args)


def _check_args(n: int, size: int, out_dir: Path, overwrite: bool, edit_fraction: float,
                workers: int | None) -> None:
    if not 0.0 <= edit_fraction <= 1.0:
        raise UserError(f"--edit-fraction must be between 0 and 1, got {edit_fraction!r}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if not isinstance(n, int) or n < 1:
        raise UserError(f"--n must be a positive number of images, got {n!r}")
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(f"--size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(f"output folder {out_dir} is not empty; pass --overwrite to replace its SynFace splits")


def generate(n: int, size: int = 64, seed: int = 0, out_dir: str | Path = "data/synface",
             overwrite: bool = False, workers: int | None = None, edit_fraction: float = EDIT_FRACTION,
             progress: bool = True) -> dict[str, int]:
    """Render n SynFace images with their metadata into an imagefolder.

    Args:
        n: number of images (base + edited faces).
        size: image side, 32..256.
        seed: same seed => byte-identical PNGs and metadata, for any `workers`.
        out_dir: output folder; must be empty or absent unless `overwrite`.
        overwrite: replace the split folders (train/validation/test) of an existing output.
        workers: processes (default: the CPU count, at most 2; 1 renders in this process).
        edit_fraction: share of identities that also get an edit pair.
        progress: show a tqdm bar.
    Returns:
        number of images per split, e.g. {"train": 180, "validation": 10, "test": 10}.
    """
    out = Path(out_dir)
    _check_args(n, size, out, overwrite, edit_fraction, workers)
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir(parents=True)
    job = _Job(seed, size, str(out))
    tasks = [(job, index, edit) for index, edit in plan(n, seed, edit_fraction)]
    workers = workers or min(2, os.cpu_count() or 1)
    counts = dict.fromkeys(SPLITS, 0)
    files = {s: (out / s / PARTIAL).open("w") for s in SPLITS}
    try:
        with tqdm(total=n, desc="synface", unit="face", disable=not progress) as bar:
            for lines in _results(tasks, workers):
                for split, line in lines:
                    files[split].write(line)
                    counts[split] += 1
                bar.update(len(lines))
    finally:
        for f in files.values():
            f.close()
    for split in SPLITS:  # only now does a loader see metadata
        os.replace(out / split / PARTIAL, out / split / "metadata.jsonl")
    return counts


def _results(tasks: list[tuple[_Job, int, bool]], workers: int) -> Iterator[list[tuple[str, str]]]:
    """Results in task order (so the metadata order is the same for any worker count)."""
    if workers <= 1:
        yield from map(_worker, tasks)
        return
    # fork starts workers in milliseconds; where it does not exist (Windows) spawn works the same
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from pool.imap(_worker, tasks, chunksize=32)
