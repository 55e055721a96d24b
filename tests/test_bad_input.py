"""A user's mistakes, through the command line as a user types them: each case exits 2 with one
line that names the file, key or value at fault, prints no traceback and changes no file."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import tiny_train_args
from talk2face import cli


def damaged(model: Path, tmp: Path, name: str, content: Callable[[bytes], bytes]) -> Path:
    """A copy of the model folder with file `name` rewritten by `content`."""
    copy = tmp / "model"
    shutil.copytree(model, copy)
    (copy / name).write_bytes(content((copy / name).read_bytes()))
    return copy


def not_utf8_source(tmp: Path) -> Path:
    root = tmp / "latin1"
    (root / "train").mkdir(parents=True)
    (root / "train" / "metadata.jsonl").write_bytes(b'{"file_name": "a.png"}\n{"file_name": "caf\xe9.png"}\n')
    return root


# id -> (argv builder (world, model, face, tmp) -> argv, what the message must contain)
def generate_with(*flags: str) -> Callable[..., list[str]]:
    """argv of `talk2face generate` on the tiny model with these extra flags."""
    return lambda w, m, f, t: ["generate", "a face", "--out", str(t / "a.png"), "--model", str(m), *flags]


CASES: dict[str, tuple[Callable[..., list[str]], str]] = {
    "truncated model.safetensors": (lambda w, m, f, t: ["caption", f, "--model", str(
        damaged(m, t, "model.safetensors", lambda b: b[: len(b) // 2]))], "model.safetensors"),
    "bad config.json": (lambda w, m, f, t: ["caption", f, "--model", str(
        damaged(m, t, "config.json", lambda b: b[:-5]))], "config.json: not valid JSON"),
    "bad talk2face.json": (lambda w, m, f, t: ["caption", f, "--model", str(
        damaged(m, t, "talk2face.json", lambda b: b"{}"))], "talk2face.json: missing key(s) ['attributes', 'max_length']"),
    "bad tokenizer.json": (lambda w, m, f, t: ["caption", f, "--model", str(
        damaged(m, t, "tokenizer.json", lambda b: b"{\"version\": 1"))], "tokenizer.json: not a tokenizers JSON file"),
    "device tpu": (lambda w, m, f, t: ["age", f, "--model", str(m), "--device", "tpu"], "--device 'tpu'"),
    "cfg-scale nan": (generate_with("--cfg-scale", "nan"), "cfg_scale=nan"),
    "cfg-scale -5": (generate_with("--cfg-scale", "-5"), "cfg_scale=-5.0"),
    "temperature -1": (generate_with("--temperature", "-1"), "temperature=-1.0"),
    "top-p 2": (generate_with("--top-p", "2"), "top_p=2.0"),
    "top-k -5": (generate_with("--top-k", "-5"), "top_k=-5"),
    "rerank 0": (generate_with("--rerank", "0"), "rerank=0"),
    "empty prompt": (lambda w, m, f, t: ["generate", "  ", "--out", str(t / "a.png"), "--model", str(m)],
                     "the description is empty"),
    "empty instruction": (lambda w, m, f, t: ["edit", f, "", "--out", str(t / "e.png"), "--model", str(m)],
                          "the instruction is empty"),
    "eval samples-per-prompt 0": (lambda w, m, f, t: ["eval", "--model", str(m), "--data", str(w["synface"]),
                                                      "--out", str(t / "ev"), "--samples-per-prompt", "0"],
                                  "--samples-per-prompt 0"),
    "eval limit -3": (lambda w, m, f, t: ["eval", "--model", str(m), "--data", str(w["synface"]),
                                          "--out", str(t / "ev"), "--limit", "-3"], "--limit -3"),
    "eval rerank 0": (lambda w, m, f, t: ["eval", "--model", str(m), "--data", str(w["synface"]),
                                          "--out", str(t / "ev"), "--rerank", "0"], "--rerank 0"),
    "eval out is a file": (lambda w, m, f, t: ["eval", "--model", str(m), "--data", str(w["synface"]),
                                               "--out", f], "is a file: the report is a folder"),
    "inspect limit -3": (lambda w, m, f, t: ["data", "inspect", str(w["synface"]), "--limit", "-3"], "--limit -3"),
    "label file not UTF-8": (lambda w, m, f, t: ["data", "inspect", str(not_utf8_source(t))],
                             "metadata.jsonl:2: not UTF-8 text (byte 0xe9"),
    "tokenize device tpu": (lambda w, m, f, t: ["tokenize", "--vqgan", str(w["vqgan"]), "--data", str(w["synface"]),
                                                "--out", str(t / "codes"), "--device", "tpu"], "--device 'tpu'"),
}

# argv of `python -m talk2face_train.train` (after the config) -> what the message must contain
TRAIN_CASES: dict[str, tuple[list[str], str]] = {
    "batch_size 0": (["--batch_size=0"], "batch_size=0"),
    "save_every 0": (["--save_every=0"], "save_every=0"),
    "mixed_precision fp7": (["--mixed_precision=fp7"], "mixed_precision='fp7'"),
    "lr -1": (["--optim.lr=-1"], "optim.lr=-1.0"),
    "max_steps true": (["--optim.max_steps=true"], "optim.max_steps: expected int, got the boolean True"),
    "missing text tokenizer": (["--data.text_tokenizer=nowhere/tokenizer.json"], "nowhere/tokenizer.json"),
}


def file_hashes(*roots: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for root in roots for p in sorted(Path(root).rglob("*"))
            if p.is_file()}


def assert_one_line_error(capsys, code: int, expected: str) -> None:
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert code == 2, out.err
    assert "Traceback" not in out.err + out.out
    assert lines and expected in lines[-1], lines
    assert sum(": error: " in line for line in lines) == 1


@pytest.fixture(scope="module")
def face(tiny_world) -> str:
    return str(sorted((tiny_world["synface"] / "test").glob("*.png"))[0])


@pytest.mark.parametrize("case", list(CASES))
def test_cli_mistake_is_one_line_and_changes_nothing(case, tiny_world, tiny_model, face, tmp_path, capsys):
    argv = CASES[case][0](tiny_world, tiny_model, face, tmp_path)
    before = file_hashes(tmp_path, tiny_model, tiny_world["synface"], tiny_world["vqgan"])
    assert_one_line_error(capsys, cli.main(argv), CASES[case][1])
    assert file_hashes(tmp_path, tiny_model, tiny_world["synface"], tiny_world["vqgan"]) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu(tiny_model, face, capsys):
    assert_one_line_error(capsys, cli.main(["age", face, "--model", str(tiny_model), "--device", "cuda"]),
                          "--device 'cuda': not available on this machine")


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_mistake_is_one_line_before_any_work(case, tiny_world, tmp_path, capsys):
    extra, expected = TRAIN_CASES[case]
    assert_one_line_error(capsys, cli.main(["train", *tiny_train_args(tiny_world, tmp_path / "run", *extra)]), expected)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("entry, expected", [
    ("weight: 0", ".weight: expected a positive number, got 0"),
    ("tasks: [age, age]", ".tasks: a task is listed twice"),
    ("tasks: [height]", ".tasks: unknown task(s) ['height']"),
])
def test_a_bad_training_source_is_refused_as_a_mixture_entry_is(entry, expected, tiny_world, tmp_path, capsys):
    source = f"--data.sources=[{{tokenized: {tiny_world['tokenized']}, {entry}}}]"
    assert_one_line_error(capsys, cli.main(["train", *tiny_train_args(tiny_world, tmp_path / "run", source)]),
                          f"data.sources[{tiny_world['tokenized']}]{expected}")
    assert not (tmp_path / "run").exists()


def test_train_rerun_into_a_finished_run_needs_resume(tiny_world, tiny_model, capsys):
    run = tiny_model.parent
    before = file_hashes(run)
    assert_one_line_error(capsys, cli.main(["train", *tiny_train_args(tiny_world, run)]),
                          f"output_dir={run} already holds a run (final")
    assert file_hashes(run) == before
