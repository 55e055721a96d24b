"""The artifacts this repository ships for SynFace, found from the package, not the current folder,
and the examples `make demo` and the web page show them with."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_PACKAGED = Path(str(files("talk2face") / "assets"))  # a wheel: setup.py copied the artifacts here
ROOT = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1]  # else the repository (editable)
TEMPLATES = ROOT / "templates"  # one YAML file per task
TEXT_TOKENIZER = ROOT / "tokenizers" / "synface" / "tokenizer.json"  # the SynFace text tokenizer
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
