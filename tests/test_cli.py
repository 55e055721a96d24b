"""Command-line conventions: defaults and config keys in --help, one JSON object with --json."""

import dataclasses
import json

import pytest

from talk2face.cli import main, run_standalone


def help_of(capsys, run, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        run(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def keys(config: object, prefix: str = "") -> list[str]:
    """Every dotted key of a config instance."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out += keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return out


def test_train_help_lists_every_config_key_with_default_and_comment(capsys):
    from talk2face_train import train

    for out in (help_of(capsys, main, ["train", "--help"]),
                help_of(capsys, lambda argv: run_standalone(train.command, "python -m talk2face_train.train", argv), ["--help"])):
        assert "  optim.max_steps = 1000  # optimizer steps\n" in out  # a trailing comment
        assert "  data.prompt_face_loss = 0.0  # weight of the mean loss on the codes of prompt faces" in out  # lines above
        assert "  data.sources[].tokenized (required)  # a pre-tokenized Arrow folder" in out  # a list of sections
        assert all(f"  {key} =" in out for key in keys(train.TrainConfig()))


@pytest.mark.parametrize("command, key", [("train-vqgan", "loss.disc_layers = 2  # discriminator depth"),
                                          ("train-evaluator", "model.max_age = 100  # age bins")])
def test_every_trainer_lists_its_keys(capsys, command, key):
    assert key in help_of(capsys, main, [command, "--help"])


def test_subcommand_help_shows_defaults(capsys):
    out = help_of(capsys, main, ["synth", "--help"])
    assert "number of images (default: 20000)" in out
    assert "(default: None)" not in out and "(default: False)" not in out  # unset options and flags: nothing to say
    assert "(default: 500)" in help_of(capsys, main, ["eval", "--help"])


def json_out(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one object on one line, nothing else on stdout
    return json.loads(out)


def test_synth_json(tmp_path, capsys):
    out = json_out(capsys, ["synth", "--n", "4", "--size", "32", "--out", str(tmp_path / "faces"), "--workers", "1"])
    assert out["images"] == sum(out["splits"].values()) == 4 and out["out"] == str(tmp_path / "faces")


def test_tokenize_json(tiny_world, tmp_path, capsys):
    out = json_out(capsys, ["tokenize", "--vqgan", str(tiny_world["vqgan"]), "--data", str(tiny_world["synface"]),
                            "--out", str(tmp_path / "codes"), "--device", "cpu"])
    meta = json.loads((tiny_world["tokenized"] / "tokenize.json").read_text())
    assert out["counts"] == meta["counts"] and out["out"] == str(tmp_path / "codes")


def test_eval_json(tiny_model, tiny_world, tiny_evaluator, tmp_path, capsys):
    out = json_out(capsys, ["eval", "--model", str(tiny_model), "--data", str(tiny_world["synface"]),
                            "--evaluator", str(tiny_evaluator), "--out", str(tmp_path / "eval"), "--fast", "--tasks", "age"])
    assert out["report"] == str(tmp_path / "eval" / "report.md")
    assert out["results"] == json.loads((tmp_path / "eval" / "report.json").read_text())
    assert "mean age (baseline)" in out["results"]["age"]["metrics"]
