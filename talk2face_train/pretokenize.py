"""`talk2face tokenize`: VQ-encode every image of a data source once, into an Arrow DatasetDict.

    talk2face tokenize --data data/synface --out data/synface-codes [--vqgan DIR]

Training then reads uint16 code columns and never touches pixels. Every image goes through
`load_images` (RGB, centre crop, bicubic resize to the VQGAN's image_size), so images of any size
are accepted; a corrupt or missing file stops the run with its path.

Resuming: work happens in `<out>.partial/`; each split is cut into shards of `--shard-size`
records, and a shard is written to a temporary folder and renamed when complete, so a rerun after
an interruption skips finished shards. At the end the shards are assembled into `<out>.partial/
final`, which is renamed to `<out>`: the output folder appears only when it is whole. The
unfinished run records its settings and a fingerprint of the source (every record and its
images' sizes and modification times): a rerun with other settings, or after the source was
edited, is refused instead of mixing old and new rows. One run at a time writes an `--out`: a
second one finds `<out>.lock` held and stops (the lock is the OS's, released even by `kill -9`).

The rows' schema and reading them back: talk2face_train/tokenized.py. The code grid and the
attribute names are in the folder's own metadata too, so `datasets.load_from_disk` alone reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import datasets
from datasets import Dataset, DatasetDict, DatasetInfo, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

from talk2face import shipped
from talk2face.config import to_dict
from talk2face.data.images import load_images
from talk2face.data.record import ATTRIBUTES, SPLITS, FaceRecord
from talk2face.data.sources import Source, open_source
from talk2face.device import check_device
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint
from talk2face_train.tokenized import FEATURES, META_NAME, features, record_to_row


def _image_path(source: Source, image: Any) -> Any:
    """Paths in records are relative to the source root; PIL images / arrays pass through."""
    return source.root / image if isinstance(image, (str, Path)) else image


def encode_records(vq: Any, source: Source, records: list[FaceRecord], batch_size: int, progress: tqdm) -> list[dict]:
    """Encode the images (and edit sources) of `records` in batches; returns their rows."""
    rows = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        edited = [j for j, r in enumerate(batch) if r.edit is not None]
        inputs = [_image_path(source, r.image) for r in batch] + [_image_path(source, batch[j].edit.source) for j in edited]
        codes = vq.encode(load_images(inputs, vq.image_size).to(vq.device)).cpu().numpy()  # (B + E, h*w)
        edit_codes = dict(zip(edited, codes[len(batch):]))
        rows += [record_to_row(r, codes[j], edit_codes.get(j)) for j, r in enumerate(batch)]
        progress.update(len(batch))
    return rows


def source_fingerprint(source: Source, records: dict[str, list[FaceRecord]]) -> str:
    """A short hash of every record (labels, paths) and its images' sizes and modification times."""
    digest = hashlib.sha256()
    for split, recs in records.items():
        for record in recs:
            digest.update(json.dumps([split, asdict(record)], sort_keys=True, default=str).encode())
            for image in (record.image, record.edit.source if record.edit else None):
                if isinstance(image, (str, Path)):
                    stat = (source.root / image).stat()
                    digest.update(f"{stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def exclusive(out: Path):
    """Hold `<out>.lock` for the run; a second run into the same `out` raises UserError."""
    lock = out.with_name(out.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `talk2face tokenize` is writing {out} (it holds {lock}); "
                            "wait for it to finish or choose another --out") from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def _write_shards(vq: Any, source: Source, shards: dict, shard_dir: dict, batch_size: int, total: int, done: int) -> None:
    """Encode and write every shard not written yet (each renamed into place when complete)."""
    with tqdm(total=total, initial=done, desc="tokenize", unit="img") as progress:
        for split, chunks in shards.items():
            for i, chunk in chunks:
                final = shard_dir[split, i]
                if final.exists():
                    continue
                rows = encode_records(vq, source, chunk, batch_size, progress)
                tmp = final.with_name(final.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                Dataset.from_list(rows, features=FEATURES).save_to_disk(str(tmp))
                tmp.rename(final)


def tokenize(
    vqgan_dir: str | Path, data: str | Path, out: str | Path, batch_size: int = 64, shard_size: int = 4096,
    device: str = "cpu",
) -> dict[str, Any]:
    """Encode every record of every split of `data` with the VQGAN in `vqgan_dir` into `out`.

    Args:
        vqgan_dir: a folder written by `VQGAN.save_pretrained`.
        data: a data source spec (see `open_source`).
        out: output folder; must not exist yet. `<out>.partial` holds the work in progress.
        batch_size: images per encoder call.
        shard_size: records per resumable shard.
        device: where the VQGAN runs.
    Returns:
        the metadata written to `<out>/tokenize.json`.
    """
    from talk2face.vqgan import VQGAN  # imported here: `talk2face --help` must stay light

    out = Path(out)
    if batch_size < 1 or shard_size < 1:
        raise UserError("--batch-size and --shard-size must be positive")
    check_device(device)
    with exclusive(out):
        if out.exists():
            raise UserError(f"output folder already exists: {out} (delete it to tokenize again)")
        return _tokenize(VQGAN.from_pretrained(vqgan_dir, device=device), vqgan_dir, data, out, batch_size, shard_size)


def _tokenize(vq: Any, vqgan_dir: str | Path, data: str | Path, out: Path, batch_size: int, shard_size: int) -> dict[str, Any]:
    """`tokenize` once it holds the lock on `out`."""
    source = open_source(data)
    records = {split: list(source.records(split)) for split in SPLITS}
    records = {split: recs for split, recs in records.items() if recs}
    if not records:
        raise UserError(f"data source {data} has no records in any split {SPLITS}")
    work = out.with_name(out.name + ".partial")
    job = {"vqgan": str(Path(vqgan_dir).resolve()), "vqgan_config": to_dict(vq.config),
           "data": str(data), "shard_size": shard_size, "source_fingerprint": source_fingerprint(source, records)}
    job_file = work / "job.json"
    if work.exists():
        previous = json.loads(job_file.read_text()) if job_file.exists() else {}
        if previous.get("source_fingerprint", job["source_fingerprint"]) != job["source_fingerprint"]:
            raise UserError(f"{data} changed since the unfinished run in {work} began (its records or images "
                            f"differ from those in {job_file}): delete {work} to tokenize it again")
        if previous != job:
            raise UserError(f"{work} holds an unfinished run with other settings; delete it or rerun those ({job_file})")
    else:
        work.mkdir(parents=True)
        job_file.write_text(json.dumps(job, indent=2))
    shards = {split: [(i, recs[i:i + shard_size]) for i in range(0, len(recs), shard_size)] for split, recs in records.items()}
    shard_dir = {(split, i): work / split / f"shard-{i // shard_size:05d}" for split in shards for i, _ in shards[split]}
    done = sum(len(chunk) for split in shards for i, chunk in shards[split] if shard_dir[split, i].exists())
    total = sum(len(recs) for recs in records.values())
    quiet = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # one bar for the whole job, not one per shard written
    try:
        _write_shards(vq, source, shards, shard_dir, batch_size, total, done)
        # the grid and attribute names go into the assembled folder's own metadata (tokenized.features);
        # shards keep plain FEATURES, so shards of a run begun by an older version still assemble
        info = DatasetInfo(features=features(vq.grid_size, vq.n_codes))
        dataset = DatasetDict({
            split: concatenate_datasets([load_from_disk(str(shard_dir[split, i])) for i, _ in chunks], info=info)
            for split, chunks in shards.items()
        })
        assembled = work / "final"
        shutil.rmtree(assembled, ignore_errors=True)
        dataset.save_to_disk(str(assembled))
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    meta = {
        "vqgan": job["vqgan"], "vqgan_fingerprint": weights_fingerprint(vqgan_dir), "vqgan_config": job["vqgan_config"],
        "n_codes": vq.n_codes, "grid_size": list(vq.grid_size), "attributes": list(ATTRIBUTES),
        "image_size": vq.image_size, "data": str(data), "source": source.name,
        "counts": {split: len(ds) for split, ds in dataset.items()},
        "edits": {split: sum(1 for r in recs if r.edit is not None) for split, recs in records.items()},
    }
    (assembled / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    assembled.rename(out)
    shutil.rmtree(work)
    return meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vqgan", default=str(shipped.VQGAN), help="VQGAN folder (config.json + model.safetensors); the default is the shipped SynFace one")
    parser.add_argument("--data", required=True, help="data source: an imagefolder or a source YAML")
    parser.add_argument("--out", required=True, help="output folder (an HF DatasetDict); must not exist")
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    parser.add_argument("--shard-size", type=int, default=4096, help="records per resumable shard")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where the VQGAN runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object (what the text output already is)")


def run(args: argparse.Namespace) -> int:
    meta = tokenize(args.vqgan, args.data, args.out, args.batch_size, args.shard_size, args.device)
    print(json.dumps({"out": args.out, "counts": meta["counts"], "grid_size": meta["grid_size"]}))
    return 0
