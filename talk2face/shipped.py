"""The artifacts this repository ships for SynFace, found from the package, not the current folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (an editable install)
VQGAN = ROOT / "tokenizers" / "synface-vqgan"  # 64x64 -> 8x8 codes (its README.md is the card)
EVALUATOR = ROOT / "evaluators" / "synface"  # the judge of make eval (its README.md is the card)
MODEL = ROOT / "models" / "synface"  # the SynFace model: the default wherever a model is needed (its README.md is the card)
