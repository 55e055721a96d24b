"""The decoder's optimisers: AdamW on every weight, or Muon on the hidden matrices beside AdamW.

Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-Schulz") replaces each
update of a weight matrix by the nearest semi-orthogonal matrix of its momentum, so every
direction of the matrix learns at the same rate; it trains the hidden layers of small
Transformers in fewer steps than AdamW (the NanoGPT speedruns). It is meant for the matrices
inside the layers only: the embeddings (tied to the output projection here), norms and biases
stay with AdamW. `torch.optim.Muon` with `adjust_lr_fn="match_rms_adamw"` (Liu et al. 2025,
"Muon is Scalable for LLM Training") scales its update to AdamW's RMS, so both take the same
learning rate and weight decay.
"""

from __future__ import annotations

import torch
from accelerate.utils import DistributedType

from talk2face.errors import UserError

OPTIMIZERS = ("adamw", "muon")
# where each process holds a slice of every matrix: Muon would orthogonalise slices, not matrices
SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)


def param_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Decay matrices (incl. embeddings); never norms or biases."""
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of the model's Linear layers, the output projection (the tied embeddings) excepted."""
    output = model.get_output_embeddings()
    return [m.weight for m in model.modules()
            if isinstance(m, torch.nn.Linear) and m is not output and m.weight.requires_grad]


def build_optimizers(model: torch.nn.Module, name: str, lr: float, weight_decay: float,
                     betas: tuple[float, float]) -> list[torch.optim.Optimizer]:
    """The optimisers that together update every trainable weight of `model`, once each.

    Args:
        name: "adamw" (one AdamW) or "muon" (Muon on `hidden_matrices`, AdamW on the rest).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {OPTIMIZERS}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if name == "adamw":
        return [torch.optim.AdamW(param_groups(trainable, weight_decay), lr=lr, betas=betas)]
    matrices = hidden_matrices(model)
    by_muon = {id(p) for p in matrices}
    rest = [p for p in trainable if id(p) not in by_muon]
    return [torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"),
            torch.optim.AdamW(param_groups(rest, weight_decay), lr=lr, betas=betas)]


def check_sharding(name: str, distributed: DistributedType) -> None:
    """Refuse Muon where the weights are sharded over processes (FSDP, DeepSpeed, Megatron)."""
    if name == "muon" and distributed in SHARDED:
        raise UserError(f"optim.name=muon under {distributed.value}: each process holds a shard of every matrix, and "
                        "Muon must orthogonalise whole matrices; use optim.name=adamw, or data parallelism (DDP)")
