"""The one learning-rate schedule of every trainer: linear warm-up, then cosine decay.

A function of the step alone: never of the wall clock, so a busy machine computes the same run.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The learning-rate multiplier at optimiser step `step` (0-based).

    Rises linearly to 1 over `warmup_steps` ((step + 1) / warmup_steps, so no step runs at 0),
    then follows a cosine from 1 down to `min_ratio` at `total_steps`; constant after it.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
