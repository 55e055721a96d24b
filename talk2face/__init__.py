"""talk2face: one Transformer decoder for every face task."""

__version__ = "0.1.0"
