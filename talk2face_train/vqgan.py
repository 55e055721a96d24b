"""Train the image tokenizer.

    python -m talk2face_train.vqgan experiments/vqgan-synface.yaml [--optim.lr=1e-3 ...]
    accelerate launch -m talk2face_train.vqgan experiments/vqgan-synface.yaml

Losses: L1 + L2 reconstruction, VQ codebook + commitment, and optionally a PatchGAN
discriminator (taming's NLayerDiscriminator, hinge loss, adaptive weight as in taming / Esser et
al. 2021) after a warm-up. A perceptual (LPIPS) loss is not included: it needs VGG weights that
cannot be had offline here.

Codebook usage: l2-normalised codes (the preset's `l2_codes`) plus dead-code restarts: every
`restart_every` steps, each code no batch picked since the last restart is moved onto a latent
drawn from recent encoder outputs (the k-means-style remedy of Dhariwal et al. 2020 / Zeghidour et
al. 2021), until `restart_until` of the run, so the last stretch trains a stable codebook.

Resuming: a checkpoint (talk2face_train/checkpoints.py, the decoder's mechanism) is written to
`<output_dir>/checkpoints` every `save_every` steps and when the run stops; rerunning the same
command continues from the newest (`resume: latest`, the default here). Batches are a pure
function of (seed, step), so a resumed run sees the same data order. The result is
`<output_dir>/final`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import PartialState
from accelerate.utils import broadcast, set_seed
from taming.modules.discriminator.model import NLayerDiscriminator, weights_init
from tqdm.auto import tqdm

from talk2face.cli import ConfigCommand, run_standalone
from talk2face.config import from_dict, load_config, to_dict
from talk2face.errors import UserError
from talk2face_train.checkpoints import find_checkpoint, read_state, save_state
from talk2face_train.precision import resolve as resolve_precision
from talk2face_train.precision import accelerator_for, step_probe
from talk2face_train.schedule import warmup_cosine
from talk2face.vqgan.metrics import evaluate_reconstruction, load_split_pixels, psnr, to_float
from talk2face.vqgan import VQGAN, VQGAN_PRESETS, VQGANConfig


@dataclass
class DataConfig:
    path: str = "data/synface"  # a data source (folder or source YAML, see open_source)
    train_split: str = "train"
    eval_split: str = "test"  # PSNR and usage are reported on this split
    max_train_images: int = 0  # 0 = the whole split
    max_eval_images: int = 1000  # enough for stable PSNR/usage, a few seconds to evaluate


@dataclass
class OptimConfig:
    steps: int = 2000  # optimiser steps
    batch_size: int = 32  # images per step (over all processes)
    lr: float = 2e-3  # peak learning rate (Adam); small fast models take a high one
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    warmup_steps: int = 50  # linear warm-up, then cosine decay
    min_lr_ratio: float = 0.05  # the cosine ends at lr * min_lr_ratio
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    # Stop early after this much training time (0 = off), saving a resumable state and saying so.
    # It never changes what a step computes: the schedule counts steps only, so the same command
    # and seed give the same weights on an idle and on a busy machine.
    time_limit_s: float = 0.0


@dataclass
class LossConfig:
    l1: float = 1.0  # weight of |x - x_rec|
    l2: float = 1.0  # weight of (x - x_rec)^2
    codebook: float = 1.0  # weight of the VQ codebook + commitment loss
    disc_weight: float = 0.0  # 0 = no discriminator; taming uses 0.8 at 256px
    disc_start: int = 1000  # step at which the discriminator starts
    disc_ndf: int = 32  # discriminator base channels
    disc_layers: int = 2  # discriminator depth (3 = taming's, for 256px)


@dataclass
class VQGANTrainConfig:
    preset: str = "synface-64"  # a key of VQGAN_PRESETS
    model: dict[str, Any] = field(default_factory=dict)  # fields of VQGANConfig overriding the preset
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    restart_every: int = 25  # steps between dead-code restarts (0 = never)
    restart_until: float = 0.8  # fraction of the run after which codes are no longer restarted
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (measured, talk2face_train.precision) | "no" | "bf16" | "fp16"
    output_dir: str = "runs/vqgan-synface"
    eval_every: int = 500  # steps between PSNR/usage evaluations on the eval split
    save_every: int = 500  # steps between resumable checkpoints in <output_dir>/checkpoints
    keep_checkpoints: int = 2  # the newest checkpoints kept
    resume: str | None = "latest"  # the newest checkpoint, a checkpoint folder, or None: start fresh


def model_config(cfg: VQGANTrainConfig) -> VQGANConfig:
    """The preset with `cfg.model` applied; unknown field names are an error."""
    if cfg.preset not in VQGAN_PRESETS:
        raise UserError(f"preset {cfg.preset!r} is not one of {sorted(VQGAN_PRESETS)}")
    merged = {**to_dict(VQGAN_PRESETS[cfg.preset]), **cfg.model, "preset": cfg.preset if not cfg.model else ""}
    return from_dict(VQGANConfig, merged, "model")


def lr_at(step: int, optim: OptimConfig) -> float:
    """Linear warm-up to `lr` over the first steps, then cosine decay to `lr * min_lr_ratio` at
    `optim.steps`: a function of the step alone (see `schedule.warmup_cosine`)."""
    return optim.lr * warmup_cosine(step, optim.warmup_steps, optim.steps, optim.min_lr_ratio)


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the images of `step`: consecutive slices of one shuffled order per epoch."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        out += order[offset:offset + batch_size - len(out)].tolist()
    return torch.tensor(out)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss (taming's `hinge_d_loss`) on patch logits."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def adaptive_gan_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """Balance the GAN gradient against the reconstruction gradient at the decoder's last layer
    (Esser et al. 2021, "Taming Transformers", eq. 7)."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()


@torch.no_grad()
def restart_dead_codes(vq: VQGAN, optimizer: torch.optim.Optimizer, counts: torch.Tensor,
                       recent: torch.Tensor, generator: torch.Generator) -> int:
    """Move every code with a zero count onto a random recent latent; reset its Adam moments.

    Args:
        vq: the (unwrapped) model.
        optimizer: its optimiser (the rows' moments would otherwise drag them back).
        counts: (K,) how often each code was picked since the last restart (all processes).
        recent: (M, D) recent encoder latents.
        generator: picks the latents (seeded per step, so the same on every process).
    Returns:
        the number of codes restarted.
    """
    dead = (counts == 0).nonzero().flatten()  # (n_dead,)
    if len(dead) == 0 or len(recent) == 0:
        return 0
    weight = vq.quantize.embedding.weight  # (K, D)
    pick = torch.randint(len(recent), (len(dead),), generator=generator)
    new = recent[pick].to(weight) + 0.01 * recent.std() * torch.randn(len(dead), weight.shape[1], generator=generator).to(weight)
    weight[dead] = F.normalize(new, dim=1) if vq.config.l2_codes else new
    for moment in optimizer.state.get(weight, {}).values():  # Adam's exp_avg, exp_avg_sq
        if torch.is_tensor(moment) and moment.shape == weight.shape:
            moment[dead] = 0
    return len(dead)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train as `argv` (CONFIG [--key=value ...]) says; returns the final metrics."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("--"):
        raise UserError("usage: python -m talk2face_train.vqgan CONFIG.yaml [--key=value ...]")
    cfg = load_config(VQGANTrainConfig, argv[0], argv[1:])
    return train(cfg)


def reconstruction_loss(vq: torch.nn.Module, images: torch.Tensor, loss_cfg: LossConfig):
    """L1 + L2 reconstruction and the VQ loss of one batch.

    Args:
        vq: the (possibly wrapped) VQGAN.
        images: (b, 3, S, S) in [-1, 1].
    Returns:
        (rec_loss, loss, recon (b, 3, S, S) fp32, codes (b, h*w), z (b, D, h, w)).
    """
    recon, vq_loss, codes, z = vq(images)
    recon = recon.float()
    rec_loss = loss_cfg.l1 * (recon - images).abs().mean() + loss_cfg.l2 * (recon - images).pow(2).mean()
    return rec_loss, rec_loss + loss_cfg.codebook * vq_loss, recon, codes, z


def train(cfg: VQGANTrainConfig) -> dict[str, Any]:
    """Run (or resume) the training described by `cfg`; returns the final metrics."""
    set_seed(cfg.seed)
    mcfg = model_config(cfg)
    out_dir = Path(cfg.output_dir)
    vq = VQGAN(mcfg)

    started = time.perf_counter()
    train_pixels = load_split_pixels(cfg.data.path, cfg.data.train_split, mcfg.image_size, cfg.data.max_train_images)
    eval_pixels = load_split_pixels(cfg.data.path, cfg.data.eval_split, mcfg.image_size, cfg.data.max_eval_images)
    load_s = time.perf_counter() - started

    state = PartialState()
    with state.main_process_first():  # the main process measures and records; the others read it
        first_batch = to_float(train_pixels[batch_indices(0, len(train_pixels), cfg.optim.batch_size, cfg.seed)]).to(state.device)
        probe = step_probe(vq, lambda m: [torch.optim.Adam(m.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))],
                           lambda m: reconstruction_loss(m, first_batch, cfg.loss)[1], state.device.type)
        precision = resolve_precision(cfg.mixed_precision, out_dir, probe, state.device.type, log=state.print)
    accelerator = accelerator_for(precision)
    per_process = cfg.optim.batch_size // accelerator.num_processes
    if per_process < 1:
        raise UserError(f"optim.batch_size {cfg.optim.batch_size} < {accelerator.num_processes} processes")

    optimizer = torch.optim.Adam(vq.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
    use_disc = cfg.loss.disc_weight > 0
    disc = d_optimizer = None
    if use_disc:
        disc = NLayerDiscriminator(input_nc=3, ndf=cfg.loss.disc_ndf, n_layers=cfg.loss.disc_layers).apply(weights_init)
        d_optimizer = torch.optim.Adam(disc.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))

    vq, optimizer = accelerator.prepare(vq, optimizer)
    if use_disc:
        disc, d_optimizer = accelerator.prepare(disc, d_optimizer)
    step, counts, history = 0, torch.zeros(mcfg.n_codes, dtype=torch.long), []
    seconds_before = 0.0  # training time of the runs this one resumes
    resume_from = find_checkpoint(out_dir, cfg.resume)
    if resume_from is not None:
        state = read_state(resume_from)
        if state["model"] != to_dict(mcfg):
            raise UserError(f"{resume_from} was trained with another model config; delete it or set --resume=null")
        accelerator.load_state(str(resume_from))
        step, counts, history = state["step"], torch.tensor(state["counts"]), state["history"]
        seconds_before = state["train_seconds"]
        accelerator.print(f"resumed from {resume_from} at step {step}")

    core = accelerator.unwrap_model(vq)
    recent: list[torch.Tensor] = []  # latents of the last few batches, for restarts

    def save() -> None:
        save_state(accelerator, out_dir, step, cfg.keep_checkpoints, extra={
            "train_seconds": train_seconds(), "counts": counts.tolist(), "history": history,
            "model": to_dict(mcfg), "config": to_dict(cfg)})

    def evaluate() -> dict[str, Any]:
        metrics = evaluate_reconstruction(core, eval_pixels)
        history.append({"step": step, **metrics})
        return metrics

    loop_start = time.perf_counter()

    def train_seconds() -> float:
        return seconds_before + time.perf_counter() - loop_start

    progress = tqdm(total=cfg.optim.steps, initial=step, desc="vqgan", unit="step",
                    disable=not accelerator.is_main_process)
    metrics: dict[str, Any] = {}
    stopped_early = False
    while step < cfg.optim.steps:
        lr = lr_at(step, cfg.optim)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = batch_indices(step, len(train_pixels), cfg.optim.batch_size, cfg.seed)
        idx = idx[accelerator.process_index::accelerator.num_processes][:per_process]
        images = to_float(train_pixels[idx]).to(accelerator.device)  # (b, 3, S, S)

        with accelerator.autocast():
            rec_loss, loss, recon, codes, z = reconstruction_loss(vq, images, cfg.loss)
            gan_on = use_disc and step >= cfg.loss.disc_start
            if gan_on:
                g_loss = -disc(recon).mean()
                weight = adaptive_gan_weight(rec_loss, g_loss, core.decoder.conv_out.weight)
                loss = loss + cfg.loss.disc_weight * weight * g_loss
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if cfg.optim.grad_clip:
            accelerator.clip_grad_norm_(vq.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        if mcfg.l2_codes:
            core.normalize_codebook()

        if gan_on:
            for group in d_optimizer.param_groups:
                group["lr"] = lr
            with accelerator.autocast():
                d_loss = hinge_d_loss(disc(images), disc(recon.detach()))
            d_optimizer.zero_grad(set_to_none=True)
            accelerator.backward(d_loss)
            d_optimizer.step()

        counts += accelerator.reduce(torch.bincount(codes.flatten(), minlength=mcfg.n_codes), "sum").cpu()
        recent = (recent + [z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1]).cpu()])[-8:]
        step += 1
        restarted = 0
        if cfg.optim.time_limit_s > 0:
            stopped_early = train_seconds() >= cfg.optim.time_limit_s and step < cfg.optim.steps
            if accelerator.num_processes > 1:  # every process must stop at the same step: rank 0's clock decides
                stopped_early = bool(broadcast(torch.tensor([stopped_early], device=accelerator.device), from_process=0).item())
        done = step >= cfg.optim.steps
        if cfg.restart_every and step % cfg.restart_every == 0 and step <= cfg.restart_until * cfg.optim.steps:
            restarted = restart_dead_codes(core, optimizer, counts, torch.cat(recent), torch.Generator().manual_seed(cfg.seed + step))
            if accelerator.num_processes > 1:
                broadcast(core.quantize.embedding.weight.data, from_process=0)
            counts.zero_()
        elif cfg.restart_every and step % cfg.restart_every == 0:
            counts.zero_()

        progress.update(1)
        postfix = {"loss": f"{loss.item():.4f}", "psnr": f"{psnr(recon.detach(), images).mean().item():.2f}"}
        if restarted:
            postfix["restarted"] = restarted
        if step % cfg.eval_every == 0 or done:
            metrics = evaluate()
            postfix.update(eval_psnr=f"{metrics['psnr']:.2f}", usage=f"{metrics['usage']:.0%}")
            accelerator.print(f"\nstep {step}: eval psnr {metrics['psnr']:.2f} dB, usage {metrics['usage']:.1%}, "
                              f"perplexity {metrics['perplexity']:.0f}", flush=True)
        progress.set_postfix(postfix, refresh=False)
        if step % cfg.save_every == 0 or done or stopped_early:
            save()
        if stopped_early:
            break
    progress.close()

    if stopped_early:
        accelerator.print(f"stopped by optim.time_limit_s={cfg.optim.time_limit_s:g} at step {step} of {cfg.optim.steps}, "
                          f"before the schedule ends: no {out_dir / 'final'} written; rerun the same command to continue")
        return {"steps": step, "complete": False, "train_seconds": train_seconds()}
    if not metrics:
        metrics = evaluate()
    result = {**metrics, "steps": step, "complete": True, "mixed_precision": precision,
              "train_seconds": train_seconds(), "load_seconds": load_s,
              "eval_split": cfg.data.eval_split, "eval_images": len(eval_pixels), "history": history}
    if accelerator.is_main_process:
        core.save_pretrained(out_dir / "final")
        (out_dir / "final" / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    accelerator.print(json.dumps({k: v for k, v in result.items() if k != "history"}))
    return result


command = ConfigCommand(main, VQGANTrainConfig)  # `talk2face train-vqgan`


if __name__ == "__main__":  # a user's mistake prints one line and exits 2, never a traceback
    sys.exit(run_standalone(command, "python -m talk2face_train.vqgan"))
