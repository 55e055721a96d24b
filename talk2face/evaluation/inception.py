"""Standard FID features from a local Inception-v3 file (nothing here downloads it).

    talk2face eval ... --inception inception-2015-12-05.pt

The file is the TorchScript Inception-v3 of StyleGAN2-ADA's metrics (the TensorFlow FID network
of Heusel et al. 2017, converted; published at nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/
pretrained/metrics/inception-2015-12-05.pt). It takes (N, 3, H, W) pixels in [0, 255], resizes
them to 299x299 itself, and with `return_features=True` returns the 2048-d pool features that FID
is defined on; the Fréchet distance of those features is FID.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from talk2face.errors import UserError
from talk2face.vqgan.metrics import to_uint8


class InceptionFeatures:
    """Pool features of the FID Inception network, loaded from `path` onto `device`."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"Inception weights not found: {path} (download inception-2015-12-05.pt yourself)")
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format this file ships in
                warnings.simplefilter("ignore", DeprecationWarning)
                self.net = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as err:
            raise UserError(f"{path}: not a TorchScript Inception file ({err.__class__.__name__})") from None
        self.device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N, D) float32 features, D = 2048 for the real network."""
        pixels = to_uint8(images.cpu())  # FID is defined on saved 8-bit pixels
        return torch.cat([self.net(chunk.to(self.device).float(), return_features=True).float().cpu()
                          for chunk in pixels.split(batch_size)])
