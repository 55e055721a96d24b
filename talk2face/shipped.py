"""The artifacts this repository ships for SynFace, found from the package, not the current folder,
and the examples `make demo` and the web page show them with."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (an editable install)
VQGAN = ROOT / "tokenizers" / "synface-vqgan"  # 64x64 -> 8x8 codes (its README.md is the card)
EVALUATOR = ROOT / "evaluators" / "synface"  # the judge of make eval (its README.md is the card)
MODEL = ROOT / "models" / "synface"  # the SynFace model: the default wherever a model is needed (its README.md is the card)

# Prompts the demo and the web page show: free-style wording, not only the training grammar's.
SHOWCASE_PROMPTS = [
    "a smiling old man with glasses",
    "a young woman with blond hair and earrings",
    "a bald man with a goatee",
    "a little girl with bangs",
    "a serious middle-aged woman with black wavy hair",
    "a man in his sixties wearing a hat",
]
SHOWCASE_EDITS = ["make them smile", "add glasses", "make them look 30 years older", "give them gray hair"]
