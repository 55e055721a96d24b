"""The image tokenizer: a VQGAN on taming-transformers' modules (see model.py)."""

from talk2face.vqgan.config import VQGAN_PRESETS, VQGANConfig
from talk2face.vqgan.model import VQGAN

__all__ = ["VQGAN", "VQGAN_PRESETS", "VQGANConfig"]
