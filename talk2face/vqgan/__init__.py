"""The image tokenizer: a VQGAN on taming-transformers' modules (see model.py)."""

from talk2face.vqgan.model import VQGAN, VQGAN_PRESETS, VQGANConfig

__all__ = ["VQGAN", "VQGAN_PRESETS", "VQGANConfig"]
