"""The training loop: a complete checkpoint folder, exact resume, NaN stop, clear config errors."""

import json
import shutil
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from conftest import tiny_train_args
from talk2face.config import ConfigError
from talk2face.errors import UserError
from talk2face_train.checkpoints import find_checkpoint
from talk2face_train.train import load_config, main, TrainConfig


def test_training_writes_a_folder_hf_loads_without_project_code(tiny_world, tmp_path):
    result = main(tiny_train_args(tiny_world, tmp_path / "run"))
    assert result.losses[-1] < result.losses[0]  # it learns
    final = result.final_dir
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(final)
    assert model.config.vocab_size == len(tokenizer)
    assert (final / "vqgan" / "config.json").exists() and (final / "templates" / "age.yaml").exists()
    assert "<img_63>" in tokenizer.get_vocab()


@pytest.mark.slow
def test_a_compiled_step_trains_the_same_model(tiny_world, tmp_path):
    plain = main(tiny_train_args(tiny_world, tmp_path / "plain", "--optim.max_steps=4", "--mixed_precision=no"))
    compiled = main(tiny_train_args(tiny_world, tmp_path / "compiled", "--optim.max_steps=4", "--mixed_precision=no",
                                    "--compile=true"))
    assert compiled.losses == pytest.approx(plain.losses, rel=1e-3)
    a = load_file(str(plain.final_dir / "model.safetensors"))
    b = load_file(str(compiled.final_dir / "model.safetensors"))  # the plain module's names, no _orig_mod
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


# muon: two optimisers and two schedulers resume; streaming: the streams seek the resumed item
@pytest.mark.parametrize("optimizer, streaming", [("adamw", False), ("muon", False), ("adamw", True)])
def test_resume_continues_with_the_same_losses(tiny_world, tmp_path, optimizer, streaming):
    args = ["--optim.max_steps=10", "--save_every=5", f"--optim.name={optimizer}",
            f"--data.streaming={str(streaming).lower()}", "--data.streaming_block=16"]
    full = main(tiny_train_args(tiny_world, tmp_path / "full", *args))
    checkpoint = tmp_path / "full" / "checkpoints" / "step_00000005"
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 5
    # a crashed run: only the step-5 checkpoint survived; resuming must replay steps 6..10 exactly
    crashed = tmp_path / "crashed"
    (crashed / "checkpoints").mkdir(parents=True)
    shutil.copytree(checkpoint, crashed / "checkpoints" / checkpoint.name)
    resumed = main(tiny_train_args(tiny_world, crashed, *args, "--resume=latest"))
    assert len(resumed.losses) == 5
    assert resumed.losses == pytest.approx(full.losses[5:], rel=1e-5)


def test_half_written_checkpoint_is_never_resumed(tmp_path, capsys):
    cfg = TrainConfig(output_dir=str(tmp_path), resume="latest")
    (tmp_path / "checkpoints" / "step_00000005").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_00000005" / "trainer_state.json").write_text('{"step": 5}')
    (tmp_path / "checkpoints" / "step_00000008").mkdir()  # damaged: no trainer_state.json
    (tmp_path / "checkpoints" / "step_00000010.tmp").mkdir()
    assert find_checkpoint(cfg.output_dir, cfg.resume).name == "step_00000005"
    assert "skipping " in (err := capsys.readouterr().err) and "step_00000008: no trainer_state.json" in err


def test_nan_loss_stops_before_the_update_and_no_checkpoint_is_poisoned(tiny_world, tmp_path):
    from safetensors.torch import load_file

    with pytest.raises(RuntimeError, match=r"at step \d+: stopped before the update"):
        main(tiny_train_args(tiny_world, tmp_path / "nan", "--optim.lr=1e12", "--optim.clip=1e30",
                             "--optim.warmup_steps=0", "--save_every=1", "--keep_checkpoints=100"))
    saved = sorted((tmp_path / "nan" / "checkpoints").glob("step_*[0-9]"))
    assert saved  # it trained a few steps before blowing up
    for checkpoint in saved:
        weights = load_file(str(checkpoint / "model.safetensors"))
        assert all(torch.isfinite(w).all() for w in weights.values()), checkpoint


def test_resume_checks_the_vqgan_the_codes_were_made_with(tiny_world, tmp_path):
    from talk2face.vqgan import VQGAN

    run = tmp_path / "run"
    main(tiny_train_args(tiny_world, run, "--optim.max_steps=4", "--save_every=2"))
    other = tmp_path / "other_vqgan"  # same architecture and n_codes, other weights
    torch.manual_seed(1)
    VQGAN(VQGAN.from_pretrained(tiny_world["vqgan"]).config).save_pretrained(other)
    with pytest.raises(UserError, match=r"was tokenized by the VQGAN .* but data.vqgan is .*other_vqgan"):
        main(tiny_train_args(tiny_world, run, "--optim.max_steps=4", "--resume=latest", f"--data.vqgan={other}"))


def test_unknown_config_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="lrr"):
        load_config(TrainConfig, None, ["--optim.lrr=1"])


def test_unknown_optimizer_is_one_line_before_any_work(tiny_world, tmp_path):
    with pytest.raises(UserError, match=r"optim.name='sgd' is not one of \['adamw', 'muon'\]"):
        main(tiny_train_args(tiny_world, tmp_path / "run", "--optim.name=sgd"))
    assert not (tmp_path / "run").exists()


def test_image_embeddings_start_from_the_vqgan_codebook(tiny_world, tmp_path):
    from talk2face.vocab import Vocab
    from talk2face.vqgan import VQGAN

    def similarity_correlation(folder) -> float:
        weight = AutoModelForCausalLM.from_pretrained(folder).get_input_embeddings().weight.detach()
        start = Vocab.from_pretrained(folder).image_token_range.start
        codes = torch.nn.functional.normalize(VQGAN.from_pretrained(tiny_world["vqgan"]).quantize.embedding.weight.detach(), dim=1)
        rows = torch.nn.functional.normalize(weight[start : start + len(codes)], dim=1)
        upper = torch.triu_indices(len(codes), len(codes), offset=1)
        pairs = torch.stack([(codes @ codes.T)[upper[0], upper[1]], (rows @ rows.T)[upper[0], upper[1]]])
        return float(torch.corrcoef(pairs)[0, 1])

    args = ("--optim.max_steps=1", "--optim.lr=1e-6")
    projected = main(tiny_train_args(tiny_world, tmp_path / "on", *args)).final_dir
    random = main(tiny_train_args(tiny_world, tmp_path / "off", *args, "--data.codebook_embeddings=false")).final_dir
    assert similarity_correlation(projected) > 0.5 > abs(similarity_correlation(random))


def test_auto_precision_is_recorded_and_evaluable_folders_are_kept(tiny_world, tmp_path):
    from talk2face.checkpoint import check_checkpoint_folder

    out = tmp_path / "run"
    main(tiny_train_args(tiny_world, out, "--mixed_precision=auto", "--optim.max_steps=6", "--evaluable_every=3"))
    record = json.loads((out / "precision.json").read_text())
    assert record["mixed_precision"] in ("no", "bf16") and set(record["steps_per_s"]) == {"no", "bf16"}
    cards = [json.loads((check_checkpoint_folder(out / "evaluable" / f"step_{s:08d}") / "talk2face.json").read_text())
             for s in (3, 6)]
    assert [c["step"] for c in cards] == [3, 6] and 0 < cards[0]["trained_tokens"] < cards[1]["trained_tokens"]


def test_age_sigma_scores_a_near_age_better_than_a_far_one():
    from talk2face_train.train import TrainingLoss

    numbers = torch.arange(10, 131)  # toy vocabulary of 140 ids: "0".."120" are ids 10..130
    labels = torch.tensor([[0, 10 + 35]])  # the answer token: age 35
    batch = {"input_ids": torch.zeros(1, 2, dtype=torch.long), "attention_mask": torch.ones(1, 2, dtype=torch.long),
             "labels": labels, "answer_weights": torch.tensor([[0.0, 1.0]])}

    def loss(age_sigma: float, predicted_age: int) -> float:
        logits = torch.zeros(1, 2, 140)
        logits[0, 0, 10 + predicted_age] = 8.0  # position 0 predicts the answer token
        model = lambda **_: SimpleNamespace(logits=logits)  # noqa: E731
        return TrainingLoss(age_sigma=age_sigma, number_ids=numbers)(model, batch).item()

    assert loss(0.0, 34) == pytest.approx(loss(0.0, 60))  # plain cross-entropy: any wrong age is as wrong
    assert loss(3.0, 34) < loss(3.0, 40) < loss(3.0, 60)  # against a Gaussian: nearer is better
    assert loss(3.0, 35) < loss(3.0, 34)


def test_every_process_gathers_the_weights_and_only_the_main_one_writes(tmp_path):
    """Under FSDP the full state dict is a collective: a rank that skipped it would hang the others."""
    from unittest.mock import Mock

    from talk2face_train.train import save_model_folder

    model = torch.nn.Linear(2, 2)
    for prepared in (model, torch.compile(model)):  # gathered from the module itself, not its compiled wrapper
        accelerator = Mock(is_main_process=False)
        save_model_folder(accelerator, prepared, tmp_path / "folder", None, TrainConfig(), {}, share_vqgan=False)
        accelerator.get_state_dict.assert_called_once_with(model)
        accelerator.unwrap_model.assert_not_called()
    assert not any(tmp_path.iterdir())


def test_dataloader_workers_start_under_spawn(tiny_world, tmp_path):
    """macOS, Windows and Python 3.14 do not fork: the dataset and collate must pickle."""
    import multiprocessing

    steps = ["--optim.max_steps=3", "--save_every=100", "--eval_every=100"]
    in_process = main(tiny_train_args(tiny_world, tmp_path / "a", *steps)).losses
    default = multiprocessing.get_start_method()
    multiprocessing.set_start_method("spawn", force=True)
    try:
        spawned = main(tiny_train_args(tiny_world, tmp_path / "b", *steps, "--num_workers=1")).losses
    finally:
        multiprocessing.set_start_method(default, force=True)
    assert spawned == in_process


def test_log_with_takes_one_tracker_or_a_list(tmp_path):
    from talk2face_train.train import trackers

    config = tmp_path / "c.yaml"
    config.write_text("log_with: [tensorboard, wandb]\nproject: faces\n")
    cfg = load_config(TrainConfig, config)
    assert trackers(cfg.log_with) == ["tensorboard", "wandb"] and cfg.project == "faces"
    assert trackers(load_config(TrainConfig, config, ["--log_with=[wandb]"]).log_with) == ["wandb"]
    assert trackers(TrainConfig().log_with) == ["tensorboard"] and trackers("none") == []
    with pytest.raises(UserError, match=r"unknown tracker\(s\) \['tensorbord'\]"):
        trackers(["tensorbord"])


def test_a_missing_tracker_is_one_warning_and_training_goes_on(tiny_world, tmp_path, monkeypatch, caplog):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    result = main(tiny_train_args(tiny_world, tmp_path / "run", "--optim.max_steps=2", "--log_with=tensorboard"))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "log_with" in r.getMessage()]
    assert len(warned) == 1 and "tensorboard not installed" in warned[0]
    assert (result.final_dir / "model.safetensors").is_file()


def test_the_whole_config_is_logged_as_flat_hyperparameters(tiny_world, tmp_path, monkeypatch):
    from accelerate import Accelerator

    logged = {}
    monkeypatch.setattr(Accelerator, "init_trackers", lambda self, project, config=None, **_: logged.update(
        project=project, config=config))
    main(tiny_train_args(tiny_world, tmp_path / "run", "--optim.max_steps=2", "--log_with=[tensorboard]",
                         "--project=faces", "--optim.lr=0.002"))
    assert logged["project"] == "faces" and logged["config"]["optim.lr"] == 0.002
    assert logged["config"]["data.sources.0.tokenized"] == str(tiny_world["tokenized"])
    assert all(v is None or isinstance(v, (bool, int, float, str)) for v in logged["config"].values())
