"""The evaluator network: a small CNN that judges faces (attributes and age).

It is trained by this project on REAL images of a data set (train_evaluator.py), never on
generated ones, and then judges generated and edited faces: attribute control, age error,
Fréchet distance and diversity in its feature space. Saved like every model here, as a folder
with `config.json` + `model.safetensors`.

Architecture: `len(channels)` blocks of (conv3x3-BN-ReLU) x convs_per_block, each followed by a
2x2 average pool, then the final map is FLATTENED (not globally pooled: faces are aligned, so
where a pattern is, forehead or chin, tells a hat from a beard) and projected to a D =
feature_dim feature vector, followed by two linear heads: multi-label attribute logits (A) and
age logits over the bins 0..max_age years.
Age is the expected value of the bin distribution (as in DEX, Rothe et al. 2015), which is
smoother than an argmax and still trains with a plain cross-entropy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from talk2face.config import from_dict, to_dict
from talk2face.errors import UserError
from talk2face.fingerprint import weights_fingerprint


@dataclass
class EvaluatorConfig:
    """Shape of the evaluator network."""

    attributes: list[str] = field(default_factory=list)  # CelebA names, the order of the logits
    image_size: int = 64  # the data set's resolution; other sizes are resized to it
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # one block each
    convs_per_block: int = 2  # conv3x3-BN-ReLU layers per block
    feature_dim: int = 256  # width of `features()`, used for Fréchet distance and diversity
    max_age: int = 100  # age bins 0..max_age years


def _block(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers.append(nn.AvgPool2d(2))
    return nn.Sequential(*layers)


class FaceEvaluator(nn.Module):
    """CNN predicting attribute logits and an age distribution from face images."""

    def __init__(self, config: EvaluatorConfig):
        super().__init__()
        if not config.channels:
            raise UserError("evaluator config: 'channels' must list at least one block width")
        self.config = config
        final = config.image_size // 2 ** len(config.channels)  # side of the last feature map
        if final < 1 or config.image_size % 2 ** len(config.channels):
            raise UserError(
                f"evaluator config: image_size {config.image_size} must be divisible by 2**{len(config.channels)} "
                f"(one halving per entry of 'channels')"
            )
        widths = [3, *config.channels]
        self.backbone = nn.Sequential(*[_block(a, b, config.convs_per_block) for a, b in zip(widths, widths[1:])])
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(config.channels[-1] * final * final, config.feature_dim), nn.ReLU())
        self.attribute_head = nn.Linear(config.feature_dim, len(config.attributes))
        self.age_head = nn.Linear(config.feature_dim, config.max_age + 1)
        self.register_buffer("age_bins", torch.arange(config.max_age + 1, dtype=torch.float32), persistent=False)

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            # generated faces may come at another resolution; judge them at the training one
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return images

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            images: (B, 3, H, W) in [-1, 1].

        Returns:
            (features (B, D), attribute logits (B, A), age logits (B, max_age + 1)).
        """
        x = self.backbone(self._resize(images))  # (B, C, h, w)
        features = self.project(x)  # (B, D)
        return features, self.attribute_head(features), self.age_head(features)

    def expected_age(self, age_logits: torch.Tensor) -> torch.Tensor:
        """(B, max_age + 1) logits -> (B,) expected age in years."""
        return age_logits.float().softmax(-1) @ self.age_bins

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Feature vectors for Fréchet distance and diversity.

        Args:
            images: (B, 3, H, W) in [-1, 1].
            batch_size: images per forward pass.

        Returns:
            (B, D) float32.
        """
        self.eval()
        return torch.cat([self(chunk)[0].float() for chunk in images.split(batch_size)])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Judge faces.

        Args:
            images: (B, 3, H, W) in [-1, 1].
            batch_size: images per forward pass.

        Returns:
            (attribute probabilities (B, A) in the order of config.attributes, age (B,) in years).
        """
        self.eval()
        probs, ages = [], []
        for chunk in images.split(batch_size):
            _, attr_logits, age_logits = self(chunk)
            probs.append(attr_logits.float().sigmoid())
            ages.append(self.expected_age(age_logits))
        return torch.cat(probs), torch.cat(ages)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write `config.json` and `model.safetensors` into `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({"model_type": "talk2face-evaluator", **to_dict(self.config)}, indent=2))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(directory / "model.safetensors"))

    @staticmethod
    def fingerprint(directory: str | Path) -> str:
        """A short hash of an evaluator folder's weights: every report names the judge it used."""
        return weights_fingerprint(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> FaceEvaluator:
        """Load a folder written by `save_pretrained` (no pickles involved)."""
        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        for path in (config_path, weights_path):
            if not path.exists():
                raise UserError(f"evaluator folder {directory}: missing {path.name}")
        data = json.loads(config_path.read_text())
        if data.pop("model_type", None) != "talk2face-evaluator":
            raise UserError(f"{config_path}: not a talk2face evaluator (model_type differs)")
        model = cls(from_dict(EvaluatorConfig, data, str(config_path)))
        model.load_state_dict(load_file(str(weights_path)))
        return model.eval()
