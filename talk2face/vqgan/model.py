"""The image tokenizer: a VQGAN built from taming-transformers' own modules.

    vq = VQGAN.from_pretrained("tokenizers/synface-vqgan")
    codes = vq.encode(load_images(paths, vq.image_size))   # (B, h*w) ints in [0, n_codes)
    images = vq.decode(codes)                                # (B, 3, H, W) in [-1, 1]

The submodules carry taming's names (`encoder`, `quant_conv`, `quantize`, `post_quant_conv`,
`decoder`), so an official taming state dict loads into this class unchanged (see
`taming_checkpoint.py`). Checkpoints written here are folders: `config.json` + `model.safetensors`.

Wrong-size images: `encode` takes tensors of exactly `image_size`; every caller turns files into
such tensors with `talk2face.data.images.load_images`, which centre-crops to a square and resizes
(bicubic) to `image_size`, so any image size is accepted and handled the same way everywhere.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from taming.modules.diffusionmodules.model import Decoder, Encoder
from taming.modules.vqvae.quantize import VectorQuantizer2
from torch import nn

from talk2face.config import from_dict, to_dict
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint
from talk2face.vqgan.config import VQGANConfig
from talk2face.vqgan.taming_checkpoint import load_taming

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPE = "talk2face-vqgan"


class VQGAN(nn.Module):
    """Encoder -> quant_conv -> VectorQuantizer2 -> post_quant_conv -> Decoder (taming modules).

    Attributes:
        config: the architecture.
        n_codes: codebook size K.
        grid_size: (h, w) of the code grid; a face is h*w codes.
        image_size: side of the square input image in pixels.
    """

    def __init__(self, config: VQGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.n_codes = config.n_codes
        self.grid_size = config.grid_size
        self.image_size = config.image_size
        dd = config.ddconfig()
        with contextlib.redirect_stdout(io.StringIO()):  # taming's Decoder prints the z shape
            self.encoder = Encoder(**dd)
            self.decoder = Decoder(**dd)
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.quantize = VectorQuantizer2(config.n_codes, config.embed_dim, beta=config.beta, legacy=config.legacy)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        if config.l2_codes:
            self.normalize_codebook()

    # ---- building blocks, used by training too -------------------------------------------------
    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output before quantisation.

        Args:
            images: (B, 3, H, W) in [-1, 1].
        Returns:
            (B, embed_dim, h, w); unit vectors along dim 1 when `config.l2_codes`.
        """
        patches = F.pixel_unshuffle(images, self.config.patch_size)  # (B, 3 p^2, H/p, W/p)
        z = self.quant_conv(self.encoder(patches))  # (B, D, h, w)
        return F.normalize(z, dim=1) if self.config.l2_codes else z

    def quantize_latents(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Nearest code for every latent vector (taming's VectorQuantizer2).

        Args:
            z: (B, D, h, w) from `latents`.
        Returns:
            z_q: (B, D, h, w) code vectors with straight-through gradients to z;
            loss: scalar codebook + commitment loss;
            codes: (B, h*w) code indices.
        """
        z_q, loss, (_, _, idx) = self.quantize(z)  # idx: (B*h*w,)
        return z_q, loss, idx.view(z.shape[0], -1)

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) code vectors -> (B, 3, H, W) images (unclamped)."""
        return F.pixel_shuffle(self.decoder(self.post_quant_conv(z_q)), self.config.patch_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass.

        Args:
            images: (B, 3, H, W) in [-1, 1].
        Returns:
            recon (B, 3, H, W), vq_loss (scalar), codes (B, h*w), latents z (B, D, h, w).
        """
        z = self.latents(images)  # (B, D, h, w)
        z_q, vq_loss, codes = self.quantize_latents(z)
        return self.decode_latents(z_q), vq_loss, codes, z

    @torch.no_grad()
    def normalize_codebook(self) -> None:
        """Project the code vectors back onto the unit sphere (after each optimiser step)."""
        w = self.quantize.embedding.weight  # (K, D)
        w.copy_(F.normalize(w, dim=1))

    # ---- public API ----------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> code indices.

        Args:
            images: (B, 3, image_size, image_size) float in [-1, 1] (see `load_images`).
        Returns:
            (B, h*w) int64 codes in [0, n_codes), row-major over the grid.
        """
        if images.ndim != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"encode expects (B, 3, {self.image_size}, {self.image_size}) images, got "
                f"{tuple(images.shape)}; use talk2face.data.images.load_images(paths, {self.image_size})"
            )
        z = self.latents(images.to(self.device, torch.float32))  # (B, D, h, w)
        return self.quantize_latents(z)[2]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices -> images.

        Args:
            codes: (B, h*w) integer codes in [0, n_codes).
        Returns:
            (B, 3, image_size, image_size) float in [-1, 1].
        """
        h, w = self.grid_size
        codes = torch.as_tensor(codes, device=self.device).long()
        if codes.ndim != 2 or codes.shape[1] != h * w:
            raise ValueError(f"decode expects (B, {h * w}) codes, got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.n_codes):
            raise ValueError(f"codes must be in [0, {self.n_codes}), got [{int(codes.min())}, {int(codes.max())}]")
        z_q = self.quantize.get_codebook_entry(codes.reshape(-1), (codes.shape[0], h, w, self.config.embed_dim))
        return self.decode_latents(z_q).clamp(-1, 1)  # (B, 3, H, W)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """`decode(encode(images))` in batches: what a face looks like after tokenization.
        (N, 3, image_size, image_size) in [-1, 1] -> the same shape, on this model's device."""
        return torch.cat([self.decode(self.encode(chunk)) for chunk in images.split(batch_size)])

    @property
    def device(self) -> torch.device:
        return self.quantize.embedding.weight.device

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        """Write `config.json` + `model.safetensors` into `directory` (created if needed).

        Args:
            dtype: store floating-point weights in this type (e.g. torch.float16 for a shipped
                folder half the size); they load back into fp32 parameters. None = as they are.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": MODEL_TYPE, **to_dict(self.config)}
        (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @staticmethod
    def fingerprint(directory: str | Path) -> str:
        """A short hash of a VQGAN folder's weights: codes are only meaningful with the very
        codebook that made them, so pre-tokenized data and training compare this."""
        return weights_fingerprint(directory)

    @staticmethod
    def read_config(directory: str | Path) -> VQGANConfig:
        """The architecture of a folder written by `save_pretrained` (its config.json), without its weights."""
        config_path = Path(directory) / CONFIG_NAME
        if not config_path.is_file():
            raise UserError(f"not a VQGAN folder: {config_path} is missing")
        try:
            meta = json.loads(config_path.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{config_path}: not valid JSON: {err}") from None
        if meta.pop("model_type", None) != MODEL_TYPE:
            raise UserError(f"{config_path}: model_type is not {MODEL_TYPE!r}")
        return from_dict(VQGANConfig, meta, str(config_path))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> VQGAN:
        """Load a folder written by `save_pretrained`, in eval mode."""
        config = cls.read_config(directory)
        weights_path = Path(directory) / WEIGHTS_NAME
        if not weights_path.is_file():
            raise UserError(f"not a VQGAN folder: {weights_path} is missing")
        model = cls(config)
        try:
            weights = load_file(str(weights_path))
        except Exception as err:  # safetensors raises its own error type for a truncated or corrupt file
            raise UserError(f"{weights_path}: not a readable safetensors file ({err}); copy it again") from None
        load_checked(model, weights, str(weights_path))
        return model.to(device).eval()

    @classmethod
    def from_taming(cls, ckpt_path: str | Path, yaml_path: str | Path | None = None, image_size: int = 256) -> VQGAN:
        """Load an official taming-transformers checkpoint (VQGAN or Net2NetTransformer `.ckpt`).

        Args:
            ckpt_path: the `.ckpt` file.
            yaml_path: its `configs/*-project.yaml`; without it the architecture is read off the
                weights' shapes.
            image_size: the input side when there is no yaml (256 for taming's face models).
        Returns:
            the model in eval mode, on the CPU.
        """
        config, state = load_taming(ckpt_path, yaml_path, image_size)
        model = cls(config)
        load_checked(model, state, str(ckpt_path))
        return model.eval()


def load_checked(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """`load_state_dict` that raises UserError naming missing/unexpected keys and differing shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if items:
                more = f" ... (+{len(items) - 8} more)" if len(items) > 8 else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:8])}{more}")
        raise UserError(f"{where}: weights do not match the VQGAN config; " + "; ".join(parts))
    model.load_state_dict(state)
