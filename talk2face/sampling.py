"""How face codes are drawn: guidance, filters and seed, checked once when the config is made
(the logits processors in `talk2face/logits_processors.py` apply it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from talk2face.errors import UserError


def check_sampling(cfg_scale: float | None, temperature: float, top_k: int, top_p: float) -> None:
    """Refuse sampling values that would otherwise be clamped or crash mid-generation (nan included)."""
    rules = [
        ("cfg_scale", cfg_scale, cfg_scale is None or (math.isfinite(cfg_scale) and cfg_scale >= 0), "a number >= 0 (1 = off)"),
        ("temperature", temperature, math.isfinite(temperature) and temperature > 0, "a number > 0"),
        ("top_k", top_k, top_k >= 0, "a whole number >= 0 (0 = off)"),
        ("top_p", top_p, 0 < top_p <= 1, "in (0, 1] (1 = off)"),  # nan fails the comparison too
    ]
    for name, value, ok, rule in rules:
        if not ok:
            raise UserError(f"{name}={value}: must be {rule}")


@dataclass(frozen=True)
class Sampling:
    """How face codes are drawn: guidance, filters and seed (checked when made).

    cfg_scale: classifier-free guidance scale (None or 1: unguided); temperature, top_k, top_p:
    sampling filters (1.0 / 0 / 1.0: off); seed: makes the draw reproducible (None: random).
    """

    cfg_scale: float | None = None
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        check_sampling(self.cfg_scale, self.temperature, self.top_k, self.top_p)
