"""`talk2face tokenize`: VQ-encode every image of a data source once, into an Arrow DatasetDict.

    talk2face tokenize --data data/synface --out data/synface-codes [--vqgan DIR]
    accelerate launch --num_processes N -m talk2face_train.pretokenize --data D --out O   # N GPUs
    torchrun --nproc_per_node N -m talk2face_train.pretokenize --data D --out O --device cpu  # N CPU processes

Training then reads uint16 code columns and never touches pixels. Every image goes through
`load_images` (RGB, centre crop, bicubic resize to the VQGAN's image_size), so images of any size
are accepted; a corrupt or missing file stops the run with its path.

Records stream from the source: a first pass counts them and fingerprints the source, then each
split is cut into shards of `--shard-size` records on the fly, so at most one shard's records
(and rows) are in memory at a time. Under `accelerate launch` or torchrun, shard k of every split
belongs to process k % N, which encodes it on its own device (`--device cuda`: that process's
GPU); the main process alone assembles the output once every process has written its shards.
On several nodes, `--out` must be on a filesystem every node sees.

Resuming: work happens in `<out>.partial/<split>/shard-NNNNN`; a shard is written to a temporary
folder and renamed when complete, so a rerun after an interruption, on any number of processes,
skips finished shards. At the end the shards are assembled (memory-mapped, one Arrow file per
shard) into `<out>.partial/final`, which is renamed to `<out>`: the output folder appears only
when it is whole. The unfinished run records its settings and a fingerprint of the source (every
record and its images' sizes and modification times): a rerun with other settings, or after the
source was edited, is refused instead of mixing old and new rows. One run at a time writes an
`--out`: a second one finds `<out>.lock` held by the first one's main process and stops, every
process of it (the lock is the OS's, released even by `kill -9`).

tokenize.json also summarizes each split's labels ("labels": rows with each label, the attributes
labelled, the caption words), summed from a summary each shard keeps beside its rows.

The rows' schema and reading them back: talk2face_train/tokenized.py. The code grid and the
attribute names are in the folder's own metadata too, so `datasets.load_from_disk` alone reads them.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import itertools
import json
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import datasets
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from datasets import Dataset, DatasetDict, DatasetInfo, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

from talk2face import shipped
from talk2face.cli import run_standalone
from talk2face.config import to_dict
from talk2face.data.images import load_images
from talk2face.data.record import ATTRIBUTES, SPLITS, FaceRecord
from talk2face.data.sources import DataWarning, Source, open_source
from talk2face.device import check_device
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint
from talk2face_train.tokenized import (FEATURES, META_NAME, features, merge_label_summaries, record_to_row,
                                       summarize_labels)

T = TypeVar("T")
SHARD_LABELS = "labels.json"  # a shard's label summary, inside its folder so it is renamed into place with it
# processes wait for the slowest one's shards, then for the main one's assembly; a resumed run can
# leave one process nearly all of the work, far past torch's default of 10 (NCCL) or 30 (gloo) minutes
WAIT_LIMIT = timedelta(hours=24)


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


@dataclass
class Survey:
    """What one streaming pass over a source finds: the shards and progress bar need the counts,
    the check of an unfinished run the fingerprint."""

    counts: dict[str, int]  # split -> records; splits without any are left out
    edits: dict[str, int]  # split -> records that are edits
    fingerprint: str  # a short hash of every record (labels, paths) and its images' sizes and modification times


def survey(source: Source) -> Survey:
    """Read every record of every split once, keeping none."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    edits: dict[str, int] = {}
    for split in SPLITS:
        for record in source.records(split):
            digest.update(json.dumps([split, asdict(record)], sort_keys=True, default=str).encode())
            for image in (record.image, record.edit.source if record.edit else None):
                if isinstance(image, (str, Path)):
                    stat = (source.root / image).stat()
                    digest.update(f"{stat.st_size} {stat.st_mtime_ns}".encode())
            counts[split] = counts.get(split, 0) + 1
            edits[split] = edits.get(split, 0) + (record.edit is not None)
    return Survey(counts, edits, digest.hexdigest()[:16])


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


def _on_main(state: PartialState, work: Callable[[], T]) -> T:
    """`work()` run by the main process; its result, or its UserError raised again, on every process."""
    result = error = None
    if state.is_main_process:
        try:
            result = work()
        except UserError as err:
            error = str(err)
    result, error = broadcast_object_list([result, error])
    if error is not None:
        raise UserError(error)
    return result


def _shards(work: Path, counts: dict[str, int], shard_size: int) -> dict[str, list[tuple[Path, int]]]:
    """split -> (folder, records) of each of its shards, in order."""
    return {split: [(work / split / f"shard-{k:05d}", min(shard_size, n - start))
                    for k, start in enumerate(range(0, n, shard_size))] for split, n in counts.items()}


def _write_shard(vq: Any, source: Source, records: list[FaceRecord], path: Path, batch_size: int, progress: tqdm) -> None:
    """Encode `records` into the shard folder `path`, its label summary inside; renamed into place when complete."""
    shard = Dataset.from_list(encode_records(vq, source, records, batch_size, progress), features=FEATURES)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shard.save_to_disk(str(tmp))
    (tmp / SHARD_LABELS).write_text(json.dumps(summarize_labels(shard)))
    tmp.rename(path)


def _write_shards(vq: Any, source: Source, shards: dict[str, list[tuple[Path, int]]], batch_size: int,
                  state: PartialState) -> None:
    """Encode and write this process's shards not written yet; shard k of a split is process
    k % num_processes's, so a rerun on any number of processes reuses every finished shard."""
    def mine(k: int) -> bool:
        return k % state.num_processes == state.process_index

    total = sum(size for paths in shards.values() for k, (_, size) in enumerate(paths) if mine(k))
    done = sum(size for paths in shards.values() for k, (path, size) in enumerate(paths) if mine(k) and path.exists())
    desc = "tokenize" if state.num_processes == 1 else f"tokenize (main process of {state.num_processes}: its shards)"
    with (tqdm(total=total, initial=done, desc=desc, unit="img", disable=not state.is_main_process) as progress,
          warnings.catch_warnings()):
        warnings.simplefilter("ignore", DataWarning)  # the survey already said what the source skips
        for split, paths in shards.items():
            records = source.records(split)
            for k, (path, size) in enumerate(paths):
                shard = itertools.islice(records, size)
                if mine(k) and not path.exists():
                    _write_shard(vq, source, list(shard), path, batch_size, progress)  # the list dies with the call
                else:
                    collections.deque(shard, maxlen=0)  # another process's shard, or one written before: pass it by


def tokenize(
    vqgan_dir: str | Path, data: str | Path, out: str | Path, batch_size: int = 64, shard_size: int = 4096,
    device: str = "cpu",
) -> dict[str, Any]:
    """Encode every record of every split of `data` with the VQGAN in `vqgan_dir` into `out`.

    Every process that `accelerate launch` or torchrun started calls it; each encodes its share
    of the shards, the main process assembles them, and all return once `out` is whole.

    Args:
        vqgan_dir: a folder written by `VQGAN.save_pretrained`.
        data: a data source spec (see `open_source`).
        out: output folder; must not exist yet. `<out>.partial` holds the work in progress.
        batch_size: images per encoder call.
        shard_size: records per resumable shard.
        device: where the VQGAN runs; "cuda" is each process's own GPU.
    Returns:
        the metadata written to `<out>/tokenize.json`.
    """
    from talk2face.vqgan import VQGAN  # imported here: `talk2face --help` must stay light

    out = Path(out)
    if batch_size < 1 or shard_size < 1:
        raise UserError("--batch-size and --shard-size must be positive")
    check_device(device)
    # as the trainer asks for it (the state is one per Python process): without a GPU, processes
    # started by torchrun join over gloo; with GPUs over NCCL, one GPU each
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT_LIMIT)
    vq = VQGAN.from_pretrained(vqgan_dir, device=str(state.device) if device == "cuda" else device)
    source = open_source(data)
    work = out.with_name(out.name + ".partial")
    with contextlib.ExitStack() as held:
        # the main process locks `out` and checks (or records) the job before any process writes;
        # its refusal stops them all
        found = _on_main(state, lambda: _begin(held, vq, vqgan_dir, data, source, out, work, shard_size))
        shards = _shards(work, found.counts, shard_size)
        quiet = datasets.utils.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # one bar for the whole job, not one per shard written
        try:
            _write_shards(vq, source, shards, batch_size, state)
            state.wait_for_everyone()  # every shard is written
            if state.is_main_process:
                _assemble(vq, vqgan_dir, data, source, found, shards, out, work)
        finally:
            if not quiet:
                datasets.enable_progress_bars()
        state.wait_for_everyone()  # `out` is whole: every process returns together, the lock still held
    return json.loads((out / META_NAME).read_text())


def _begin(held: contextlib.ExitStack, vq: Any, vqgan_dir: str | Path, data: str | Path, source: Source, out: Path,
           work: Path, shard_size: int) -> Survey:
    """On the main process: lock `out` (held until `held` closes), survey the source, and accept
    the unfinished run in `work` or record this one."""
    held.enter_context(exclusive(out))
    if out.exists():
        raise UserError(f"output folder already exists: {out} (delete it to tokenize again)")
    found = survey(source)
    if not found.counts:
        raise UserError(f"data source {data} has no records in any split {SPLITS}")
    job = {"vqgan": str(Path(vqgan_dir).resolve()), "vqgan_config": to_dict(vq.config),
           "data": str(data), "shard_size": shard_size, "source_fingerprint": found.fingerprint}
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
    return found


def _shard_labels(path: Path) -> dict[str, Any]:
    """A shard's label summary; read from its rows for a shard written before shards kept one."""
    kept = path / SHARD_LABELS
    return json.loads(kept.read_text()) if kept.exists() else summarize_labels(load_from_disk(str(path)))


def _assemble(vq: Any, vqgan_dir: str | Path, data: str | Path, source: Source, found: Survey,
              shards: dict[str, list[tuple[Path, int]]], out: Path, work: Path) -> None:
    """On the main process: join the written shards into `out`, with tokenize.json."""
    # the grid and attribute names go into the assembled folder's own metadata (tokenized.features);
    # shards keep plain FEATURES, so shards of a run begun by an older version still assemble
    info = DatasetInfo(features=features(vq.grid_size, vq.n_codes))
    dataset = DatasetDict({
        split: concatenate_datasets([load_from_disk(str(path)) for path, _ in paths], info=info)
        for split, paths in shards.items()
    })
    assembled = work / "final"
    shutil.rmtree(assembled, ignore_errors=True)
    # the shards stay memory-mapped and are copied batch by batch, never all in memory; one Arrow
    # file per shard keeps each file small enough for a reader to stream
    dataset.save_to_disk(str(assembled), num_shards={split: len(paths) for split, paths in shards.items()})
    meta = {
        "vqgan": str(Path(vqgan_dir).resolve()), "vqgan_fingerprint": weights_fingerprint(vqgan_dir),
        "vqgan_config": to_dict(vq.config),
        "n_codes": vq.n_codes, "grid_size": list(vq.grid_size), "attributes": list(ATTRIBUTES),
        "image_size": vq.image_size, "data": str(data), "source": source.name,
        "counts": {split: len(ds) for split, ds in dataset.items()},
        "edits": found.edits,
        "labels": {split: merge_label_summaries([_shard_labels(path) for path, _ in paths]) for split, paths in shards.items()},
    }
    (assembled / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    assembled.rename(out)
    shutil.rmtree(work)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vqgan", default=str(shipped.VQGAN), help="VQGAN folder (config.json + model.safetensors); the default is the shipped SynFace one")
    parser.add_argument("--data", required=True, help="data source: an imagefolder or a source YAML")
    parser.add_argument("--out", required=True, help="output folder (an HF DatasetDict); must not exist")
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    parser.add_argument("--shard-size", type=int, default=4096, help="records per resumable shard")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where the VQGAN runs (cuda: each process its own GPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (what the text output already is)")


def run(args: argparse.Namespace) -> int:
    meta = tokenize(args.vqgan, args.data, args.out, args.batch_size, args.shard_size, args.device)
    if PartialState().is_main_process:  # every process returns the same; one says it
        print(json.dumps({"out": args.out, "counts": meta["counts"], "grid_size": meta["grid_size"]}))
    return 0


if __name__ == "__main__":  # as `accelerate launch` / torchrun start it; a user's mistake prints one line, exits 2
    sys.exit(run_standalone(sys.modules[__name__], "python -m talk2face_train.pretokenize"))
