"""Turning any image input into the model's pixels, the same way in training and inference.

Rule (documented in README): apply the EXIF orientation (phone photos), convert to RGB (grayscale,
16-bit grayscale by its 0..65535 range, palette and RGBA too; alpha is composited on white), centre-crop to a square on the shorter side, resize with bicubic filtering to
`size x size`, scale to [-1, 1]. Aligned face crops (CelebA-HQ, SynFace) are square already, so
only the resize applies to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from talk2face.errors import UserError

ImageInput = Union[str, Path, Image.Image, np.ndarray]


def open_image(image: ImageInput) -> Image.Image:
    """Open a path, PIL image or HxW[xC] uint8 array as an RGB PIL image."""
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as im:
                im.load()
                pil = im
        except FileNotFoundError:
            raise UserError(f"image not found: {image}") from None
        except (UnidentifiedImageError, OSError) as err:
            raise UserError(f"cannot read image {image}: {err}") from None
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise UserError(f"array image must be uint8 HxW or HxWxC, got {image.dtype} {image.shape}")
        pil = Image.fromarray(image)
    elif isinstance(image, Image.Image):
        pil = image
    else:
        raise UserError(f"unsupported image input of type {type(image).__name__}")
    pil = ImageOps.exif_transpose(pil)  # a phone stores "rotate 90" in EXIF, not in the pixels
    if pil.mode.startswith("I;16") or pil.mode == "I":  # 16-bit grayscale (PIL reads some 16-bit PNGs as "I")
        values = np.asarray(pil, dtype=np.float64)
        if values.max() > 65535 or values.min() < 0:
            raise UserError(f"{image if isinstance(image, (str, Path)) else 'image'}: 32-bit integer pixels; "
                            "save it with 8 or 16 bits per channel")
        pil = Image.fromarray((values / 257).round().astype(np.uint8))  # 65535 -> 255 (RGB's convert clips instead)
    if pil.mode in ("RGBA", "LA", "P"):
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, rgba)
    return pil.convert("RGB")


def center_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square on the shorter side, then resize to size x size (bicubic)."""
    w, h = image.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return image


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB PIL images of one size -> float tensor in [-1, 1], shape (B, 3, H, W)."""
    arrays = np.stack([np.asarray(im, dtype=np.uint8) for im in images])  # (B, H, W, 3)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Float tensor in [-1, 1] of shape (B, 3, H, W) -> RGB PIL images."""
    arrays = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).numpy()) for a in arrays]


def load_images(images: list[ImageInput], size: int) -> torch.Tensor:
    """Preprocess any mix of inputs exactly as in training: (B, 3, size, size) in [-1, 1]."""
    return to_tensor([center_crop_resize(open_image(im), size) for im in images])
