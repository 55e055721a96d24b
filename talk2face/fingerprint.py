"""A short hash of a model folder's weights: which exact instrument or codebook a result came from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from talk2face.errors import UserError

WEIGHTS_NAME = "model.safetensors"


def weights_fingerprint(directory: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of `directory/model.safetensors`."""
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise UserError(f"{path} is missing: not a model folder")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
