"""Train the evaluator network on the real images of a data set.

    python -m talk2face_train.evaluator experiments/evaluator-synface.yaml [--train.epochs=4]

Reads `data.source` (a folder or source YAML, see talk2face.data.sources), trains on its train
split with small shifts and horizontal flips, prints validation and test metrics at the end and
writes the evaluator folder (config.json, model.safetensors) plus `metrics.json` to `out`.
Only data-set images are used, never generated ones: the evaluator must judge the generator
from outside.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from talk2face.cli import ConfigCommand, run_standalone
from talk2face.config import load_config, to_dict
from talk2face.data.images import load_images
from talk2face.data.record import ATTRIBUTES, FaceRecord
from talk2face.data.sources import open_source
from talk2face.errors import UserError
from talk2face.evaluation import face_metrics
from talk2face.evaluation.evaluator import EvaluatorConfig, FaceEvaluator
from talk2face_train.precision import autocast
from talk2face_train.precision import resolve as resolve_precision
from talk2face_train.precision import step_probe
from talk2face_train.schedule import warmup_cosine


@dataclass
class DataConfig:
    source: str = "data/synface"  # data folder or source YAML
    train_split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["validation", "test"])  # reported at the end
    max_train: int = 0  # use at most this many training faces (0 = all)
    max_eval: int = 0  # and this many per evaluation split (0 = all)


@dataclass
class OptimConfig:
    epochs: int = 5  # passes over the training split
    batch_size: int = 128
    lr: float = 3e-3  # AdamW peak learning rate, cosine decay after warmup
    warmup_steps: int = 100
    weight_decay: float = 0.05
    age_weight: float = 0.5  # weight of the age loss next to the attribute BCE
    age_sigma: float = 2.0  # years; width of the Gaussian soft age label (DLDL, Gao et al. 2017)
    shift: int = 3  # largest random translation in pixels (augmentation)
    flip: bool = True  # random horizontal flips (faces are near-symmetric; labels do not change)
    mixed_precision: str = "auto"  # "auto" (measured on this machine, talk2face_train.precision) | "no" | "bf16"
    device: str = ""  # "" = cuda when there is one, else cpu
    seed: int = 0


@dataclass
class EvaluatorTrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: EvaluatorConfig = field(default_factory=EvaluatorConfig)  # empty attributes = all labelled
    train: OptimConfig = field(default_factory=OptimConfig)
    out: str = "runs/evaluator-synface"  # the evaluator folder written at the end


@dataclass
class LabelledImages:
    """One split in memory: uint8 images (N, 3, H, W), attributes (N, A) 1/0/-1, ages (N,) -1 = unknown."""

    images: torch.Tensor
    attributes: torch.Tensor
    ages: torch.Tensor


def read_split(
    source_spec: str, split: str, size: int, names: list[str] | None, limit: int = 0
) -> tuple[LabelledImages, list[str]]:
    """Load the images and labels of one split of a source.

    Args:
        source_spec: a data folder or source YAML.
        split: "train", "validation" or "test".
        size: image side in pixels.
        names: attribute columns; None = every attribute some record of this split labels.
        limit: keep the first `limit` records (0 = all).

    Returns:
        (the split, the attribute names used).
    """
    source = open_source(source_spec)
    records: list[FaceRecord] = []
    for record in source.records(split):
        records.append(record)
        if limit and len(records) >= limit:
            break
    if not records:
        raise UserError(f"data source {source_spec}: split {split!r} has no records")
    if names is None:
        labelled = {name for r in records for name in (r.attributes or {})}
        names = [name for name in ATTRIBUTES if name in labelled]
    chunks = []
    for start in tqdm(range(0, len(records), 512), desc=f"load {split}", unit="chunk", leave=False):
        batch = records[start : start + 512]
        pixels = load_images([source.image_path(r) for r in batch], size)  # (b, 3, size, size)
        chunks.append(pixels.add(1).mul(127.5).round().to(torch.uint8))  # keep RAM at 1 byte/value
    attributes = torch.from_numpy(face_metrics.labels_matrix([r.attributes for r in records], names))
    ages = torch.tensor([float(r.age) if r.age is not None else -1.0 for r in records])
    return LabelledImages(torch.cat(chunks), attributes, ages), names


def augment(images: torch.Tensor, shift: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to `shift` pixels (edge padding) and horizontal flips.

    Args:
        images: (B, 3, H, W) float.
        shift: largest translation in pixels.
        flip: whether to flip half of the images left-right.
        generator: source of randomness.

    Returns:
        (B, 3, H, W) augmented copy.
    """
    b, _, h, w = images.shape
    if flip:
        flips = torch.rand(b, generator=generator) < 0.5  # (B,)
        images = torch.where(flips[:, None, None, None], images.flip(-1), images)
    if shift > 0:
        padded = F.pad(images, (shift,) * 4, mode="replicate")  # (B, 3, H + 2s, W + 2s)
        dx, dy = torch.randint(0, 2 * shift + 1, (2, b), generator=generator)
        images = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    return images


def losses(model: FaceEvaluator, images: torch.Tensor, attributes: torch.Tensor, ages: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked attribute BCE and soft-label age cross-entropy for one batch.

    Args:
        model: the evaluator.
        images: (B, 3, H, W) in [-1, 1].
        attributes: (B, A) 1/0/-1 (unknown entries do not count).
        ages: (B,) years, -1 = unknown.
        sigma: width in years of the Gaussian age label.

    Returns:
        (attribute loss, age loss), scalars (0 where a batch has no labels of that kind).
    """
    _, attr_logits, age_logits = model(images)
    known = attributes >= 0  # (B, A)
    bce = F.binary_cross_entropy_with_logits(attr_logits.float(), attributes.clamp(min=0).float(), reduction="none")
    attr_loss = (bce * known).sum() / known.sum().clamp(min=1)
    has_age = ages >= 0  # (B,)
    target = torch.exp(-((model.age_bins[None, :] - ages[:, None]) ** 2) / (2 * sigma**2))  # (B, bins)
    target = target / target.sum(-1, keepdim=True)
    ce = -(target * age_logits.float().log_softmax(-1)).sum(-1)  # (B,)
    age_loss = (ce * has_age).sum() / has_age.sum().clamp(min=1)
    return attr_loss, age_loss


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


@torch.no_grad()
def evaluate(model: FaceEvaluator, split: LabelledImages, batch_size: int = 256) -> dict[str, float]:
    """Attribute accuracy (mean, balanced) and age MAE / CS@5 of the evaluator on one split."""
    probs, ages = model.predict(to_float(split.images), batch_size)
    names = model.config.attributes
    truth = split.attributes.numpy()
    predicted = (probs >= 0.5).numpy()
    out: dict[str, float] = {}
    if names:
        out["attr_mean_acc"] = face_metrics.mean_accuracy(predicted, truth, names)
        out["attr_balanced_acc"] = face_metrics.balanced_accuracy(predicted, truth, names)
        for name, acc in face_metrics.per_attribute_accuracy(predicted, truth, names).items():
            out[f"acc/{name}"] = acc
    has_age = split.ages >= 0
    if has_age.any():
        out["age_mae"] = face_metrics.age_mae(ages[has_age], split.ages[has_age])
        out["age_cs5"] = face_metrics.cumulative_score(ages[has_age], split.ages[has_age])
    return out


def train(cfg: EvaluatorTrainConfig) -> tuple[FaceEvaluator, dict[str, dict[str, float]]]:
    """Train an evaluator as configured and return it with its metrics per evaluation split."""
    torch.manual_seed(cfg.train.seed)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    device = cfg.train.device or ("cuda" if torch.cuda.is_available() else "cpu")
    size = cfg.model.image_size
    train_set, names = read_split(cfg.data.source, cfg.data.train_split, size, cfg.model.attributes or None, cfg.data.max_train)
    cfg.model.attributes = names
    if not names and not (train_set.ages >= 0).any():
        raise UserError(f"data source {cfg.data.source}: the train split has neither attributes nor ages")
    model = FaceEvaluator(cfg.model)
    first = slice(0, cfg.train.batch_size)
    images, attributes, ages = (t.to(device) for t in (to_float(train_set.images[first]), train_set.attributes[first], train_set.ages[first]))

    def probe_loss(m: FaceEvaluator) -> torch.Tensor:
        attr_loss, age_loss = losses(m, images, attributes, ages, cfg.train.age_sigma)
        return attr_loss + cfg.train.age_weight * age_loss

    probe = step_probe(model, lambda m: [torch.optim.AdamW(m.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)],
                       probe_loss, device)
    precision = resolve_precision(cfg.train.mixed_precision, cfg.out, probe, device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    n = len(train_set.ages)
    steps_per_epoch = math.ceil(n / cfg.train.batch_size)
    total = steps_per_epoch * cfg.train.epochs
    warmup = min(cfg.train.warmup_steps, total // 2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total))
    start = time.time()
    with tqdm(total=total, desc="train evaluator", unit="step") as bar:
        for epoch in range(cfg.train.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            for step in range(steps_per_epoch):
                idx = order[step * cfg.train.batch_size : (step + 1) * cfg.train.batch_size]
                images = augment(to_float(train_set.images[idx]), cfg.train.shift, cfg.train.flip, generator).to(device)
                with autocast(device, precision):
                    attr_loss, age_loss = losses(model, images, train_set.attributes[idx].to(device),
                                                 train_set.ages[idx].to(device), cfg.train.age_sigma)
                loss = attr_loss + cfg.train.age_weight * age_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, attr=f"{attr_loss.item():.3f}", age=f"{age_loss.item():.3f}")
    model.cpu()
    metrics = {"train_seconds": {"value": time.time() - start}}
    for split in cfg.data.eval_splits:
        data, _ = read_split(cfg.data.source, split, size, names, cfg.data.max_eval)
        metrics[split] = evaluate(model, data)
    return model, metrics


def main(argv: list[str] | None = None) -> int:
    """`python -m talk2face_train.evaluator CONFIG.yaml [--key=value ...]`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("--"):
        raise UserError("usage: python -m talk2face_train.evaluator CONFIG.yaml [--key=value ...]")
    cfg = load_config(EvaluatorTrainConfig, argv[0], argv[1:])
    model, metrics = train(cfg)
    out = Path(cfg.out)
    model.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    for split, values in metrics.items():
        summary = {k: round(v, 4) for k, v in values.items() if not k.startswith("acc/")}
        print(f"{split}: {summary}")
    print(f"evaluator written to {out}")
    return 0


command = ConfigCommand(main, EvaluatorTrainConfig)  # `talk2face train-evaluator`


if __name__ == "__main__":  # a user's mistake prints one line and exits 2, never a traceback
    sys.exit(run_standalone(command, "python -m talk2face_train.evaluator"))
