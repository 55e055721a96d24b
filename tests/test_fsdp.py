"""A model folder saved from a sharded decoder: FSDP2 (torch's fully_shard) on 2 CPU processes over gloo.

accelerate 1.15 shards with FSDP only on accelerators (its MULTI_CPU state never becomes FSDP), so
this runs the trainer's save path (train.save_model_folder) on torch's own FSDP2, with an accelerator
stand-in whose get_state_dict is accelerate's FSDP2 one. The file is also the ranks' script:

    python -m torch.distributed.run --nproc_per_node 2 tests/test_fsdp.py MODEL_DIR OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file

from conftest import torchrun


class FSDP2Accelerator:
    """What save_model_folder asks of an accelerate.Accelerator, as accelerate 1.15 does it under FSDP2."""

    def __init__(self) -> None:
        self.is_main_process = dist.get_rank() == 0

    def get_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, cpu_offload=True)
        return get_model_state_dict(model, options=options)  # a collective; the full weights on rank 0 only

    def unwrap_model(self, model: torch.nn.Module, keep_torch_compile: bool = True) -> torch.nn.Module:
        return model  # FSDP2 shards the module in place: there is no wrapper


def shard_and_save(model_dir: Path, out: Path) -> None:
    """On each rank: the decoder of `model_dir`, sharded over the ranks, saved into `out`."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from talk2face.checkpoint import CARD_FILE, load_decoder
    from talk2face.vocab import Vocab
    from talk2face_train.train import DataConfig, TrainConfig, save_model_folder

    dist.init_process_group("gloo")
    model = load_decoder(model_dir)
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    assert all(isinstance(p, DTensor) for p in model.parameters())
    cfg = TrainConfig(data=DataConfig(vqgan=str(model_dir / "vqgan"), templates=str(model_dir / "templates")))
    card = json.loads((model_dir / CARD_FILE).read_text())
    save_model_folder(FSDP2Accelerator(), model, out, Vocab.from_pretrained(model_dir), cfg, card, share_vqgan=False)
    dist.destroy_process_group()


def test_a_sharded_decoder_saves_the_whole_model(tiny_model, tmp_path):
    out = tmp_path / "saved"
    done = torchrun(2, __file__, str(tiny_model), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    whole, saved = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert whole.keys() == saved.keys() and all(torch.equal(whole[k], saved[k]) for k in whole)
    assert (out / "config.json").read_text() == (tiny_model / "config.json").read_text()  # LlamaForCausalLM, float32


if __name__ == "__main__":
    shard_and_save(Path(sys.argv[1]), Path(sys.argv[2]))
