"""The VQGAN: API, save/load, parity with taming's own modules on official-format checkpoints, training."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageDraw
from safetensors.torch import load_file
from taming.modules.diffusionmodules.model import Decoder, Encoder
from taming.modules.vqvae.quantize import VectorQuantizer2

import benchmarks.vqgan as bench
import talk2face_train.vqgan as vqtrain
from talk2face.errors import UserError
from talk2face.vqgan import VQGAN, VQGAN_PRESETS, VQGANConfig

ROOT = Path(__file__).resolve().parents[1]
TINY_DD = dict(double_z=False, z_channels=8, resolution=16, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 2],
               num_res_blocks=1, attn_resolutions=[8], dropout=0.0)


class FakeModelCheckpoint:
    """Stands for a Lightning callback class that official checkpoints pickle by reference."""


def tiny_vqgan(**changes) -> VQGAN:
    torch.manual_seed(0)
    cfg = VQGANConfig(image_size=16, ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], z_channels=8,
                      n_codes=16, embed_dim=4, **changes)
    vq = VQGAN(cfg).eval()
    with torch.no_grad():  # spread the codes so that encodings are not all one index
        vq.quantize.embedding.weight.normal_()
    return vq


def images(n: int, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_reconstruct_is_decode_of_encode_in_batches():
    vq, x = tiny_vqgan(), images(5)
    # batching changes only float rounding (conv kernels differ by batch size), never a code
    assert torch.allclose(vq.reconstruct(x, batch_size=2), vq.decode(vq.encode(x)), atol=1e-5)


def test_encode_decode_shapes_and_save_load(tmp_path):
    vq = tiny_vqgan()
    x = images(3)
    codes = vq.encode(x)
    assert codes.shape == (3, 64) and codes.dtype == torch.long and vq.grid_size == (8, 8)
    assert 0 <= int(codes.min()) and int(codes.max()) < vq.n_codes
    out = vq.decode(codes)
    assert out.shape == (3, 3, 16, 16) and out.min() >= -1 and out.max() <= 1
    vq.save_pretrained(tmp_path / "vq")
    assert json.loads((tmp_path / "vq" / "config.json").read_text())["n_codes"] == 16
    again = VQGAN.from_pretrained(tmp_path / "vq")
    assert torch.equal(again.encode(x), codes)
    assert torch.allclose(again.decode(codes), out)


def test_patch_size_runs_taming_modules_on_space_to_depth_patches():
    vq = tiny_vqgan(patch_size=2)  # 16x16 images -> 8x8 patches of 12 channels -> 4x4 codes
    assert vq.grid_size == (4, 4)
    x = images(2)
    dd = {**TINY_DD, "resolution": 8, "in_channels": 12, "out_ch": 12}
    encoder, decoder = Encoder(**dd).eval(), Decoder(**dd).eval()
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in vq.state_dict().items() if k.startswith("encoder.")})
    decoder.load_state_dict({k[len("decoder."):]: v for k, v in vq.state_dict().items() if k.startswith("decoder.")})
    with torch.no_grad():
        z = vq.quant_conv(encoder(torch.nn.functional.pixel_unshuffle(x, 2)))  # (2, 4, 4, 4)
        _, _, (_, _, idx) = vq.quantize(z)
        codes = vq.encode(x)
        assert torch.equal(codes, idx.view(2, 16))
        z_q = vq.quantize.get_codebook_entry(codes.reshape(-1), (2, 4, 4, 4))
        expected = torch.nn.functional.pixel_shuffle(decoder(vq.post_quant_conv(z_q)), 2).clamp(-1, 1)
        assert torch.allclose(vq.decode(codes), expected, atol=1e-6)
    with pytest.raises(UserError, match="patch_size 3"):
        tiny_vqgan(patch_size=3)


def test_presets():
    for name in ("synface-64", "synface-64-wide"):
        assert VQGAN_PRESETS[name].grid_size == (8, 8)  # <= 64 codes per SynFace face
    taming = VQGAN_PRESETS["taming-f16-1024"]
    assert taming.grid_size == (16, 16) and taming.n_codes == 1024 and taming.image_size == 256


@pytest.mark.parametrize("name", ["vqgan-synface.yaml", "vqgan-synface-gpu.yaml", "vqgan-tiny.yaml"])
def test_shipped_configs_load(name):
    cfg = vqtrain.load_config(vqtrain.VQGANTrainConfig, str(ROOT / "experiments" / name), [])
    assert vqtrain.model_config(cfg).grid_size[0] * vqtrain.model_config(cfg).grid_size[1] <= 64


def test_bad_inputs(tmp_path):
    vq = tiny_vqgan()
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\).*load_images"):
        vq.encode(images(2, size=32))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        vq.decode(torch.full((1, 64), 16))
    with pytest.raises(UserError, match="config.json is missing"):
        VQGAN.from_pretrained(tmp_path)
    with pytest.raises(UserError, match="multiples of 32"):
        VQGAN(VQGANConfig(ch=48))


# ---- official taming checkpoints ----------------------------------------------------------------

def taming_reference(state: dict, n_embed: int = 16, embed_dim: int = 4):
    """taming's own modules, built and loaded the way taming's VQModel does it."""
    enc, dec = Encoder(**TINY_DD), Decoder(**TINY_DD)
    quant_conv = torch.nn.Conv2d(TINY_DD["z_channels"], embed_dim, 1)
    post = torch.nn.Conv2d(embed_dim, TINY_DD["z_channels"], 1)
    quantize = VectorQuantizer2(n_embed, embed_dim, beta=0.25)
    for name, module in [("encoder", enc), ("decoder", dec), ("quant_conv", quant_conv),
                         ("post_quant_conv", post), ("quantize", quantize)]:
        module.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})
    return enc, dec, quant_conv, post, quantize


def official_state() -> dict:
    """A state dict as taming's VQModel holds it: our model's tensors plus `loss.*`."""
    state = tiny_vqgan(legacy=True).state_dict()
    state["loss.discriminator.main.0.weight"] = torch.randn(8, 3, 4, 4)
    state["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    return state


def write_official(tmp_path: Path, state: dict, net2net: bool) -> tuple[Path, Path]:
    """A Lightning-style .ckpt and its project yaml, in taming's formats."""
    vqmodel = {"target": "taming.models.vqgan.VQModel",
               "params": {"embed_dim": 4, "n_embed": 16, "ddconfig": TINY_DD,
                          "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                                         "params": {"disc_start": 10000}}}}
    if net2net:
        state = {**{f"first_stage_model.{k}": v for k, v in state.items()},
                 "transformer.tok_emb.weight": torch.randn(16, 8),
                 "cond_stage_model.encoder.conv_in.weight": torch.randn(4, 3, 3, 3)}
        doc = {"model": {"target": "taming.models.cond_transformer.Net2NetTransformer",
                         "params": {"first_stage_config": vqmodel, "transformer_config": {"target": "x.GPT"}}}}
    else:
        doc = {"model": vqmodel}
    ckpt = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "global_step": 1000, "state_dict": state,
                "callbacks": {FakeModelCheckpoint: {"best_model_score": torch.tensor(0.1)}}}, ckpt)
    (tmp_path / "project.yaml").write_text(yaml.safe_dump(doc))
    return ckpt, tmp_path / "project.yaml"


@pytest.mark.parametrize("net2net", [False, True])
@pytest.mark.parametrize("with_yaml", [True, False])
def test_official_checkpoint_codes_match_taming(tmp_path, net2net, with_yaml):
    state = official_state()
    ckpt, yml = write_official(tmp_path, state, net2net)
    vq = VQGAN.from_taming(ckpt, yml) if with_yaml else VQGAN.from_taming(ckpt, image_size=16)
    assert vq.config.legacy and vq.grid_size == (8, 8) and vq.n_codes == 16
    enc, dec, quant_conv, post, quantize = taming_reference(state)
    x = images(4)
    with torch.no_grad():
        z_q, _, (_, _, idx) = quantize(quant_conv(enc(x)))
        expected_codes = idx.view(4, -1)
        expected_images = dec(post(z_q)).clamp(-1, 1)
    assert len(expected_codes.unique()) > 1  # a real comparison, not all-one-code
    assert torch.equal(vq.encode(x), expected_codes)
    assert torch.allclose(vq.decode(expected_codes), expected_images, atol=1e-5)


def test_official_checkpoint_mismatch_is_named(tmp_path):
    state = official_state()
    state["quantize.embedding.weight"] = torch.randn(32, 4)  # yaml says n_embed 16
    del state["decoder.conv_out.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    ckpt, yml = write_official(tmp_path, state, net2net=False)
    with pytest.raises(UserError) as err:
        VQGAN.from_taming(ckpt, yml)
    message = str(err.value)
    assert "decoder.conv_out.bias" in message and "encoder.extra.weight" in message
    assert "quantize.embedding.weight: file (32, 4) vs model (16, 4)" in message


def test_a_legacy_format_checkpoint_loads_and_what_weights_only_refuses_is_named(tmp_path):
    from talk2face.vqgan.taming_checkpoint import read_checkpoint

    legacy = tmp_path / "legacy.ckpt"  # torch < 1.6 format: Lightning's callback class in it too
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callbacks": {FakeModelCheckpoint: {}}}, legacy,
               _use_new_zipfile_serialization=False)
    assert torch.equal(read_checkpoint(legacy)["state_dict"]["w"], torch.zeros(2))
    old_pickle = tmp_path / "protocol0.ckpt"  # an opcode the weights-only unpickler does not run
    torch.save({"state_dict": {}, "hparams": FakeModelCheckpoint()}, old_pickle, pickle_protocol=0,
               _use_new_zipfile_serialization=False)
    with pytest.raises(UserError, match=r"protocol0.ckpt: not a readable PyTorch checkpoint \(torch.load weights_only=True\): Unsupported operand"):
        read_checkpoint(old_pickle)


def test_not_a_taming_checkpoint(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        VQGAN.from_taming(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"model.layer.weight": torch.zeros(2)}}, other)
    with pytest.raises(UserError, match="no encoder"):
        VQGAN.from_taming(other)
    torch.save({"weights": {}}, other)
    with pytest.raises(UserError, match="no 'state_dict'"):
        VQGAN.from_taming(other)
    ckpt, yml = write_official(tmp_path, official_state(), net2net=False)
    doc = yaml.safe_load(yml.read_text())
    doc["model"]["target"] = "taming.models.vqgan.GumbelVQ"
    yml.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="GumbelVQ"):
        VQGAN.from_taming(ckpt, yml)
    del doc["model"]["params"]["n_embed"]
    doc["model"]["target"] = "taming.models.vqgan.VQModel"
    yml.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="n_embed"):
        VQGAN.from_taming(ckpt, yml)


# ---- training -----------------------------------------------------------------------------------

def make_faces(root: Path, n_train: int = 24, n_test: int = 8) -> Path:
    """An imagefolder of coloured ellipses (a stand-in face), 40x40 so that resizing is exercised."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        lines = []
        for i in range(n):
            im = Image.new("RGB", (40, 40), tuple(int(c) for c in rng.integers(0, 256, 3)))
            x, y = rng.integers(12, 28, 2)
            ImageDraw.Draw(im).ellipse([x - 9, y - 11, x + 9, y + 11], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
            im.save(root / split / f"{i}.png")
            lines.append(json.dumps({"file_name": f"{i}.png", "id": f"{split}{i}", "split": split}))
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def tiny_args(tmp_path: Path, data: Path, *extra: str) -> list[str]:
    return [str(ROOT / "experiments" / "vqgan-tiny.yaml"), f"--data.path={data}",
            f"--output_dir={tmp_path / 'run'}", *extra]


def test_training_runs_saves_and_loads(tmp_path):
    data = make_faces(tmp_path / "faces")
    result = vqtrain.main(tiny_args(tmp_path, data, "--loss.disc_weight=0.5", "--loss.disc_start=4"))
    assert result["steps"] == 6 and 0 < result["usage"] <= 1 and np.isfinite(result["psnr"])
    assert [h["step"] for h in result["history"]] == [3, 6]
    vq = VQGAN.from_pretrained(tmp_path / "run" / "final")
    assert vq.image_size == 16 and vq.config.l2_codes
    checkpoint = tmp_path / "run" / "checkpoints" / "step_00000006"
    assert (checkpoint / "model_1.safetensors").exists()  # the discriminator is in the checkpoint too
    weight = vq.quantize.embedding.weight
    assert torch.allclose(weight.norm(dim=1), torch.ones(len(weight)), atol=1e-5)  # codes stay on the sphere


def test_training_resumes_exactly(tmp_path, monkeypatch):
    data = make_faces(tmp_path / "faces")
    extra = ["--restart_every=0", "--eval_every=100"]
    vqtrain.main(tiny_args(tmp_path / "straight", data, *extra))
    calls = {"n": 0}
    real_psnr = vqtrain.psnr

    def crash_at_step_5(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_psnr(*args)

    monkeypatch.setattr(vqtrain, "psnr", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        vqtrain.main(tiny_args(tmp_path / "resumed", data, *extra))
    assert json.loads((tmp_path / "resumed" / "run" / "checkpoints" / "step_00000003" / "trainer_state.json").read_text())["step"] == 3
    monkeypatch.setattr(vqtrain, "psnr", real_psnr)
    vqtrain.main(tiny_args(tmp_path / "resumed", data, *extra))
    a = load_file(str(tmp_path / "straight" / "run" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "run" / "final" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_model(tmp_path):
    data = make_faces(tmp_path / "faces", n_train=8, n_test=2)
    vqtrain.main(tiny_args(tmp_path, data, "--optim.steps=3"))
    shutil.rmtree(tmp_path / "run" / "final")
    with pytest.raises(UserError, match="another model config"):
        vqtrain.main(tiny_args(tmp_path, data, "--model.n_codes=64"))


def test_dead_code_restart_moves_unused_codes():
    vq = tiny_vqgan(l2_codes=True)
    optimizer = torch.optim.Adam(vq.parameters())
    vq(images(2))[1].backward()
    optimizer.step()
    before = vq.quantize.embedding.weight.detach().clone()
    counts = torch.zeros(16, dtype=torch.long)
    counts[:10] = 1
    recent = torch.nn.functional.normalize(torch.randn(50, 4), dim=1)
    n = vqtrain.restart_dead_codes(vq, optimizer, counts, recent, torch.Generator().manual_seed(0))
    after = vq.quantize.embedding.weight.detach()
    assert n == 6 and torch.equal(after[:10], before[:10]) and not torch.equal(after[10:], before[10:])
    assert torch.allclose(after[10:].norm(dim=1), torch.ones(6))
    moments = optimizer.state[vq.quantize.embedding.weight]
    assert moments["exp_avg"][10:].abs().sum() == 0 and moments["exp_avg"][:10].abs().sum() > 0


def test_batch_order_covers_each_image_once_per_epoch():
    seen = torch.cat([vqtrain.batch_indices(s, 10, 4, seed=0) for s in range(5)])  # 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert torch.equal(vqtrain.batch_indices(3, 10, 4, seed=0), seen[12:16])


def test_same_weights_on_an_idle_and_a_loaded_machine(tmp_path, monkeypatch):
    """The schedule counts steps: a clock that runs 1000x faster (a loaded machine) changes nothing."""
    data = make_faces(tmp_path / "faces", n_train=8, n_test=2)
    idle = vqtrain.main(tiny_args(tmp_path / "idle", data, "--mixed_precision=no"))
    real = time.perf_counter
    start = real()
    monkeypatch.setattr(vqtrain.time, "perf_counter", lambda: start + 1000 * (real() - start))
    loaded = vqtrain.main(tiny_args(tmp_path / "loaded", data, "--mixed_precision=no"))
    assert idle["steps"] == loaded["steps"] == 6 and loaded["train_seconds"] > 10 * idle["train_seconds"]
    a = load_file(str(tmp_path / "idle" / "run" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "loaded" / "run" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_time_limit_stops_early_resumably_and_says_so(tmp_path, capsys):
    data = make_faces(tmp_path / "faces", n_train=8, n_test=2)
    early = vqtrain.main(tiny_args(tmp_path, data, "--optim.steps=100000", "--optim.time_limit_s=0.3", "--save_every=100000"))
    assert not early["complete"] and 0 < early["steps"] < 100000
    assert "stopped by optim.time_limit_s=0.3" in capsys.readouterr().out
    assert not (tmp_path / "run" / "final").exists()
    state = json.loads(next((tmp_path / "run" / "checkpoints").glob("step_*[0-9]")).joinpath("trainer_state.json").read_text())
    assert state["step"] == early["steps"]  # the rerun continues from here


def test_learning_rate_is_a_function_of_the_step():
    optim = vqtrain.OptimConfig(steps=110, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert vqtrain.lr_at(4, optim) == 0.5  # warm-up: (4 + 1) / 10
    assert vqtrain.lr_at(10, optim) == 1.0 and vqtrain.lr_at(60, optim) == pytest.approx(0.55)
    assert vqtrain.lr_at(110, optim) == pytest.approx(0.1) and vqtrain.lr_at(500, optim) == pytest.approx(0.1)


def test_bench_prints_figures(tmp_path, capsys):
    data = make_faces(tmp_path / "faces", n_train=2, n_test=6)
    tiny_vqgan().save_pretrained(tmp_path / "vq")
    figures = bench.main(["--vqgan", str(tmp_path / "vq"), "--data", str(data), "--n", "6", "--batches", "2",
                          "--train-batch", "2", "--json", str(tmp_path / "bench.json")])
    assert 0 < figures["codebook_usage"] <= 1 and figures["codes_per_face"] == 64 and figures["speedup_read_vs_on_the_fly"] > 0
    assert figures["tokenize_images_per_s"] > 0 and "codebook usage" in capsys.readouterr().out
    assert json.loads((tmp_path / "bench.json").read_text()) == figures


class LosslessTokenizer:
    """A tokenizer whose reconstructions are the very images."""

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return images


class BlankTokenizer:
    """Reconstructs every face as a grey square: every attribute erased."""

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(images)


def test_attribute_retention_judges_reconstructions_against_labels(tiny_world, tiny_evaluator):
    from talk2face.vqgan.metrics import load_split_pixels

    pixels = load_split_pixels(str(tiny_world["synface"]), "train", 32)
    lossless = bench.attribute_retention(LosslessTokenizer(), str(tiny_evaluator), str(tiny_world["synface"]), "train", pixels)
    assert lossless["reconstructed"] == lossless["real"]
    blank = bench.attribute_retention(BlankTokenizer(), str(tiny_evaluator), str(tiny_world["synface"]), "train", pixels)
    assert blank["real"] == lossless["real"]
    assert blank["reconstructed"]["balanced_accuracy"] == pytest.approx(0.5)  # one verdict for every face
