"""Resumable training state: one mechanism for every trainer (the decoder's and the VQGAN's).

    <output_dir>/checkpoints/step_00000500/   accelerate's save_state (the prepared models,
                                               optimisers, schedulers and RNG states)
                                               + trainer_state.json ({"step": ..., and whatever
                                               else the trainer restores})

A checkpoint is written into `step_XXXXXXXX.tmp` and renamed when complete, so a crash never
leaves a complete-looking one; only the newest `keep` survive. `resume="latest"` continues from
the highest complete step, a folder from that checkpoint, None starts fresh.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from talk2face.errors import UserError

STATE_FILE = "trainer_state.json"


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def save_state(accelerator: Accelerator, output_dir: str | Path, step: int, keep: int,
               extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of `step` (every process calls this; the main one writes the files)."""
    final = checkpoints_dir(output_dir) / f"step_{step:08d}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every rank writes its own RNG state into tmp: all must be done before the rename
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **(extra or {})}))
        os.replace(tmp, final)
        for old in sorted(checkpoints_dir(output_dir).glob("step_*[0-9]"))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(output_dir: str | Path, resume: str | None) -> Path | None:
    """The checkpoint folder `resume` points to ("latest" = the highest complete step), or None."""
    if resume is None:
        return None
    if resume != "latest":
        path = Path(resume)
        if not (path / STATE_FILE).exists():
            raise UserError(f"--resume={resume}: not a training checkpoint (no {STATE_FILE})")
        return path
    for path in sorted(checkpoints_dir(output_dir).glob("step_*[0-9]"), reverse=True):  # *.tmp never matches
        if (path / STATE_FILE).is_file():
            return path
        print(f"skipping {path}: no {STATE_FILE} (an incomplete or damaged checkpoint)", file=sys.stderr)
    return None


def read_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer_state.json of a checkpoint: its step and the trainer's own entries."""
    return json.loads((checkpoint / STATE_FILE).read_text())
