"""The device a user names (`--device`): refused on one line if torch does not know it or this
machine lacks it, before any weights are loaded."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from talk2face.errors import UserError


def check_device(name: str) -> str:
    """`name` if torch can run on it here ("cpu", "cuda", "cuda:1", "mps"); else UserError."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: not a device torch knows; use cpu or cuda") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise UserError(f"--device {name!r}: not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return name


def cpu_model() -> str:
    """The CPU's model name (lscpu's 'Model name'), for every figure a benchmark prints."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
