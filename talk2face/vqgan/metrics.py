"""Reconstruction quality of a VQGAN and the pixels it is measured on.

Shared by training (periodic evaluation) and the benchmark, so both report the same numbers.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from talk2face.data.images import load_images
from talk2face.data.sources import open_source
from talk2face.errors import UserError


def load_split_pixels(data: str, split: str, size: int, limit: int = 0, chunk: int = 512) -> torch.Tensor:
    """Every record image of one split, preprocessed by `load_images`, kept as uint8.

    uint8 holds a 20k-face 64x64 split in 250 MB and needs no decoding per step.

    Args:
        data: a data source spec (see `open_source`).
        split: "train", "validation" or "test".
        size: image side the VQGAN takes.
        limit: keep only the first `limit` records (0 = all).
        chunk: images preprocessed per call.
    Returns:
        (N, 3, size, size) uint8.
    """
    source = open_source(data)
    paths = [source.image_path(r) for r in source.records(split)]
    if limit:
        paths = paths[:limit]
    if not paths:
        raise UserError(f"data source {data} has no images in split {split!r}")
    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)
    for start in tqdm(range(0, len(paths), chunk), desc=f"read {split}", unit="chunk", leave=False):
        images = load_images(paths[start:start + chunk], size)  # (b, 3, S, S) in [-1, 1]
        out[start:start + len(images)] = to_uint8(images)
    return out


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels, rounding the way saved images are."""
    return images.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> [-1, 1] floats."""
    return pixels.float().div(127.5).sub(1.0)


def psnr(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB, on the [0, 255] scale of saved pixels.

    Args:
        images, target: (B, 3, H, W) in [-1, 1].
    Returns:
        (B,) PSNR; a perfect image is capped at 100 dB.
    """
    a, b = to_uint8(images).float(), to_uint8(target).float()
    mse = (a - b).pow(2).flatten(1).mean(1)  # (B,)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(255.0**2 * 1e-10))


@torch.no_grad()
def evaluate_reconstruction(vq, pixels: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    """Encode and decode `pixels`; report PSNR and how much of the codebook the codes use.

    Args:
        vq: a VQGAN.
        pixels: (N, 3, S, S) uint8.
        batch_size: images per call.
    Returns:
        psnr (mean dB over images), usage (share of the n_codes codes that occur at least once),
        perplexity (exp of the code entropy; n_codes if all codes are equally frequent).
    """
    was_training = vq.training
    vq.eval()
    counts = torch.zeros(vq.n_codes, dtype=torch.long)
    scores = []
    for start in range(0, len(pixels), batch_size):
        images = to_float(pixels[start:start + batch_size]).to(vq.device)  # (b, 3, S, S)
        codes = vq.encode(images)  # (b, h*w)
        scores.append(psnr(vq.decode(codes).cpu(), images.cpu()))
        counts += torch.bincount(codes.flatten().cpu(), minlength=vq.n_codes)
    vq.train(was_training)
    p = counts.float() / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {
        "psnr": torch.cat(scores).mean().item(),
        "usage": (counts > 0).float().mean().item(),
        "perplexity": math.exp(entropy),
    }
