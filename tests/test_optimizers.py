"""The decoder's optimisers: Muon takes exactly the layers' matrices, AdamW everything else, once."""

import pytest
import torch
from accelerate.utils import DistributedType

from talk2face.errors import UserError
from talk2face.modeling import build_model
from talk2face_train.optimizers import build_optimizers, check_sharding


@pytest.fixture
def decoder():
    return build_model("mini", vocab_size=300, max_length=32, pad_id=0, bos_id=1, eos_id=2)


def owned(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def test_muon_takes_the_layer_matrices_and_adamw_the_rest_once_each(decoder):
    muon, adamw = build_optimizers(decoder, "muon", lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in decoder.named_parameters()}
    by_muon = {names[id(p)] for p in owned(muon)}
    by_adamw = {names[id(p)] for p in owned(adamw)}
    assert not by_muon & by_adamw and by_muon | by_adamw == set(names.values())
    assert by_muon == {n for n in names.values() if n.startswith("model.layers.") and n.endswith("proj.weight")}
    assert "model.embed_tokens.weight" in by_adamw  # tied to the output projection: not a hidden matrix
    decays = {names[id(p)]: g["weight_decay"] for g in adamw.param_groups for p in g["params"]}
    assert decays["model.embed_tokens.weight"] == 0.1 and decays["model.norm.weight"] == 0.0


def test_adamw_alone_decays_matrices_only(decoder):
    (adamw,) = build_optimizers(decoder, "adamw", lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    assert sum(len(g["params"]) for g in adamw.param_groups) == len(list(decoder.parameters()))
    assert all((p.ndim >= 2) == (g["weight_decay"] > 0) for g in adamw.param_groups for p in g["params"])


def test_an_unknown_optimizer_is_refused(decoder):
    with pytest.raises(ValueError, match="'sgd' is not one of"):
        build_optimizers(decoder, "sgd", lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))


def test_muon_is_refused_where_matrices_are_sharded():
    check_sharding("muon", DistributedType.MULTI_CPU)  # DDP: every process holds whole matrices
    check_sharding("adamw", DistributedType.FSDP)
    with pytest.raises(UserError, match="optim.name=muon under FSDP"):
        check_sharding("muon", DistributedType.FSDP)
